"""Every query of the messaging domain: message rows, claimed for delivery with a conditional update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from stagevote.core.repository import Repository
from stagevote.events.models import Event, EventStatus, Round, RoundStatus
from stagevote.messaging.models import Message

# rows per multi-row INSERT: 12 bound parameters each, far below the limits of SQLite and asyncpg (32,766)
BULK_CHUNK = 1000


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
        """`queued` → `sending`, counting the attempt; None when another run has it (or had it).

        Whether a retry is due is the sweeper's business (it enqueues only due rows); a task that
        runs anyway (a duplicate) sends what is queued.
        """
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

    async def add_many_unless_duplicate(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert many rows, a multi-row INSERT per `BULK_CHUNK`; the ids of those inserted.

        A row whose `dedupe_key` is taken is left out by the database (`ON CONFLICT DO NOTHING`), so a
        concurrent writer of the same keys (another instance, a retried request) inserts each once.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        ids: list[int] = []
        for start in range(0, len(rows), BULK_CHUNK):
            statement = (
                insert(Message)
                .values(list(rows[start : start + BULK_CHUNK]))
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(Message.id)
            )
            ids.extend(int(i) for i in (await self.session.scalars(statement)).all())
        return sorted(ids)

    async def page_for_event(
        self,
        event_id: int,
        *,
        message_type: str | None,
        status: str | None,
        channel: str | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Message], int]:
        """The event's messages, newest first, filtered by type, status and channel."""
        statement: Select[Message] = select(Message).where(Message.event_id == event_id)
        if message_type is not None:
            statement = statement.where(Message.message_type == message_type)
        if status is not None:
            statement = statement.where(Message.status == status)
        if channel is not None:
            statement = statement.where(Message.channel == channel)
        return await self.page(statement.order_by(Message.id.desc()), limit=limit, offset=offset)

    async def of_attendee(self, attendee_id: int) -> Sequence[Message]:
        """The attendee's messages, oldest first."""
        statement = select(Message).where(Message.attendee_id == attendee_id).order_by(Message.id)
        return (await self.session.scalars(statement)).all()

    async def erase(self, *, attendee_id: int, recipients: Collection[str]) -> int:
        """Blank what the attendee's messages say and where they went (and of the replies sent to one of
        `recipients` for no attendee); how many rows. Type, channel, status and times stay, for the counts."""
        whose = Message.attendee_id == attendee_id
        if recipients:
            whose = or_(whose, and_(Message.attendee_id.is_(None), Message.recipient.in_(list(recipients))))
        result = await self.session.execute(
            update(Message)
            .where(whose)
            .values(body="", subject=None, recipient=None, error=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def counts_by_status(self, event_id: int) -> dict[tuple[str, str], int]:
        """How many of the event's messages are in each (channel, status)."""
        statement = (
            select(Message.channel, Message.status, func.count())
            .where(Message.event_id == event_id)
            .group_by(Message.channel, Message.status)
        )
        return {(channel, status): int(n) for channel, status, n in await self.session.execute(statement)}

    async def open_rounds_closing(self, *, after: dt.datetime, until: dt.datetime) -> Sequence[tuple[Round, Event]]:
        """Open timed rounds of live events that close in (`after`, `until`], with their events.

        A read of the events domain's tables for the fan journey's closing nudge: the events service
        has no such query, and the journey must not make one per event every second.
        """
        statement = (
            select(Round, Event)
            .join(Event, Event.id == Round.event_id)
            .where(
                Event.status == EventStatus.LIVE.value,
                Round.status == RoundStatus.OPEN.value,
                Round.closes_at > after,
                Round.closes_at <= until,
            )
            .order_by(Round.event_id, Round.number)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]
