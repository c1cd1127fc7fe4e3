"""Every query of the messaging domain: message rows, claimed for delivery with a conditional update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

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

    async def add_unless_duplicate(self, message: Message) -> Message | None:
        """Insert the row; None when its `dedupe_key` is taken (the message exists already)."""
        if message.dedupe_key is None:
            return await self.add(message)
        if await self.session.scalar(select(Message.id).where(Message.dedupe_key == message.dedupe_key)):
            return None
        try:
            async with self.session.begin_nested():
                return await self.add(message)
        except IntegrityError:  # a concurrent writer took the key between the check and the insert
            return None

    async def claim_for_delivery(self, message_id: int, *, now: dt.datetime) -> Message | None:
        """`queued` → `sending`, counting the attempt; None when another run has it (or had it)."""
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.status == "queued")
            .values(status="sending", attempts=Message.attempts + 1, next_attempt_at=None, updated_at=now)
            .returning(Message)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def finish_sending(
        self,
        message_id: int,
        *,
        status: str,
        provider_message_id: str | None,
        error: str | None,
        at: dt.datetime | None,
    ) -> None:
        """`sending` → `sent` or `failed`, unless a status report moved the message on meanwhile."""
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "sending")
            .values(status=status, provider_message_id=provider_message_id, error=error, sent_at=at)
        )

    async def retry_later(self, message_id: int, *, error: str, at: dt.datetime) -> None:
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "sending")
            .values(status="queued", error=error, next_attempt_at=at)
        )

    async def lease_due(
        self,
        *,
        now: dt.datetime,
        lost_before: dt.datetime,
        stuck_before: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
    ) -> list[int]:
        """Ids of rows to enqueue again (due retries, lost tasks, stuck sends), leased so others skip them."""
        due = or_(
            and_(Message.status == "queued", Message.next_attempt_at <= now),
            and_(Message.status == "queued", Message.next_attempt_at.is_(None), Message.updated_at < lost_before),
            and_(Message.status == "sending", Message.updated_at < stuck_before),
        )
        rows = (
            await self.session.scalars(
                select(Message).where(due).order_by(Message.id).limit(limit).with_for_update(skip_locked=True)
            )
        ).all()
        for message in rows:
            # queued, and leased: the next sweeps leave it alone until the lease ends (if its task is
            # lost too, it is due again then)
            message.status = "queued"
            message.next_attempt_at = lease_until
            message.updated_at = now
        await self.session.flush()
        return [m.id for m in rows]
