"""The rules of the audit log: every admin action writes one row in the unit of work of the action itself.

`record` adds the row to the caller's session, so the action and its record commit together or not at
all: an action refused (4xx) or rolled back leaves no record, and no action commits without one. Other
domains call this service, never the repository. There is no update or delete path in the app, and the
database refuses both (triggers of migration 0009).

What a row holds: the acting user's id (an API key acts as its owner), the client's address (behind
`TRUSTED_PROXIES`, the real client: `core.network`), a dotted action in the product's words
(`event.published`, `round.opened`, `message.broadcast`, `user.role_changed`, `api_key.created`,
`attendee.erased` ...), its target as `kind:id`, and `changes`: ids, field names and non-personal values.
Never a phone number, an e-mail, a message body, a code or a secret: the log may outlive the data it
speaks of (an erased attendee is erased everywhere else; their audit rows name only their id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.audit.models import AuditEntry
from stagevote.audit.repository import AuditRepository
from stagevote.core.db import utcnow
from stagevote.core.network import ClientAddress


@dataclass(frozen=True)
class Caller:
    """Who acts and from where: the user (an API key's owner) and the client's address (None when unknown)."""

    user_id: int | None
    address: str | None

    @classmethod
    def of(cls, user_id: int, client: ClientAddress) -> Caller:
        """The caller of a request: `user_id` calling from `client` (`core.network.ClientAddressDep`)."""
        return cls(user_id, str(client.address) if client.address is not None else None)


async def record(
    session: AsyncSession,
    *,
    actor: int | None,
    action: str,
    target: str,
    changes: Mapping[str, Any] | None = None,
    address: str | None,
    event_id: int | None = None,
) -> AuditEntry:
    """Append one row to the log in `session`'s unit of work: it commits with the action, or not at all.

    `actor`: the acting user's id (None: the system). `changes` must be JSON and hold no personal data."""
    entry = AuditEntry(
        actor_id=actor,
        action=action,
        target=target,
        changes=dict(changes or {}),
        address=address,
        event_id=event_id,
        at=utcnow(),
    )
    return await AuditRepository(session).add(entry)


async def record_by(
    session: AsyncSession,
    caller: Caller,
    *,
    action: str,
    target: str,
    changes: Mapping[str, Any] | None = None,
    event_id: int | None = None,
) -> AuditEntry:
    """`record` for a `Caller`: its user is the actor, its address the address."""
    return await record(
        session,
        actor=caller.user_id,
        action=action,
        target=target,
        changes=changes,
        address=caller.address,
        event_id=event_id,
    )


async def list_entries(
    *,
    session: AsyncSession,
    event_id: int | None,
    actor_id: int | None,
    action: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[AuditEntry], int]:
    """A page of the log, newest first, filtered by event, actor and action."""
    return await AuditRepository(session).page_filtered(
        event_id=event_id, actor_id=actor_id, action=action, limit=limit, offset=offset
    )
