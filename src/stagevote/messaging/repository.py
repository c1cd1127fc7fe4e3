"""Every query of the messaging domain: message rows, claimed for delivery with a conditional update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import update

from stagevote.core.repository import Repository
from stagevote.messaging.models import Message


class MessageRepository(Repository[Message]):
    model = Message

    async def claim(self, message_id: int, *, status: str, claimed: str) -> Message | None:
        """Move the message from `status` to `claimed` and count an attempt; None when it was not in `status`.

        One conditional update, so of two deliveries of the same message only one gets it.
        """
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.status == status)
            .values(status=claimed, attempts=Message.attempts + 1)
            .returning(Message)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def finish(
        self,
        message_id: int,
        *,
        claimed: str,
        status: str,
        provider_message_id: str | None,
        error: str | None,
        sent_at: dt.datetime | None,
    ) -> None:
        """Record how a delivery went, unless something moved the message on meanwhile."""
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == claimed)
            .values(status=status, provider_message_id=provider_message_id, error=error, sent_at=sent_at)
        )

    async def advance(self, provider_message_id: str, *, status: str, from_statuses: Collection[str]) -> int:
        """Move the provider's message to `status` if it is in one of `from_statuses`; how many rows moved."""
        result = await self.session.execute(
            update(Message)
            .where(Message.provider_message_id == provider_message_id, Message.status.in_(list(from_statuses)))
            .values(status=status)
        )
        return int(getattr(result, "rowcount", 0) or 0)
