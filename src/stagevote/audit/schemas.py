"""Wire models of the audit domain: one recorded action as `GET /audit` lists it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from stagevote.core.schemas import Schema


class AuditEntryRead(Schema):
    id: int
    actor_id: int | None = Field(description="The user who acted (an API key's owner); null for the system")
    action: str = Field(description="What was done, e.g. `event.published`, `round.opened`, `user.role_changed`")
    target: str = Field(description="What it was done to, as `kind:id`, e.g. `event:12`, `round:12/2`")
    event_id: int | None = Field(description="The event the action concerns, if any (what `?eventId=` filters)")
    changes: dict[str, Any] = Field(description="What changed: ids, field names, non-personal values")
    address: str | None = Field(description="The client's address (behind trusted proxies: the real client)")
    at: dt.datetime
