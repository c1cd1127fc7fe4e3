"""Every query of the messaging domain: message rows, claimed for delivery with a conditional update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from stagevote.attendees.models import Attendee, PhoneOptOut
from stagevote.core.repository import Repository
from stagevote.events.models import Event, EventStatus, Round, RoundStatus
from stagevote.messaging.models import Message

# rows per multi-row INSERT: 12 bound parameters each, far below the limits of SQLite and asyncpg (32,766)
BULK_CHUNK = 1000
# messages to many (broadcasts, the fan journey): handed out after the transactional ones (codes, replies)
BULK_TYPES = ("NUDGE", "RESULTS", "RECAP", "CUSTOM")


REPLY_COLUMNS = (
    "attendee_id", "event_id", "channel", "message_type", "status", "recipient", "body", "sealed_body", "sent_at",
)  # fmt: skip
_ADD_REPLY = insert(cast(Table, Message.__table__)).values({name: bindparam(name) for name in REPLY_COLUMNS})


class MessageRepository(Repository[Message]):
    model = Message

    async def add_reply(self, **values: Any) -> None:
        """Insert an inline reply's row (`REPLY_COLUMNS`; the other columns take their defaults), read back by
        nobody here: one Core INSERT built once, none of the ORM's flush (every inbound text writes one)."""
        await self.session.execute(_ADD_REPLY, values)

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

    # --- the outbox's queries: lease what is due, claim it, record how it went ---------------------------

    async def lease_due(
        self,
        *,
        channel: str,
        now: dt.datetime,
        stuck_before: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
    ) -> tuple[list[int], int]:
        """Lease up to `limit` rows of `channel` that are due, transactional messages first, oldest first.

        Due: `queued` and past any back-off, or `sending` and past its check time (a worker died, or the
        provider's answer was lost); in both cases not under a lease, or under one that ran out (its task
        was lost). Rows locked by another transaction are skipped (SKIP LOCKED), so two dispatchers lease
        different rows. Returns the ids, and how many of them had a lease that ran out.
        """
        free = or_(Message.leased_until.is_(None), Message.leased_until <= now)
        due = or_(
            and_(Message.status == "queued", or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now)),
            and_(
                Message.status == "sending",
                or_(
                    and_(Message.next_attempt_at.is_(None), Message.updated_at < stuck_before),
                    Message.next_attempt_at <= now,
                ),
            ),
        )
        bulk = case((Message.message_type.in_(BULK_TYPES), 1), else_=0)
        rows = (
            await self.session.execute(
                select(Message.id, Message.leased_until)
                .where(Message.channel == channel, free, due)
                .order_by(bulk, Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        ids = [int(row[0]) for row in rows]
        if ids:
            await self.session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(leased_until=lease_until, updated_at=Message.updated_at)  # keeps a send's start time
            )
        return ids, sum(1 for row in rows if row[1] is not None)

    async def leased_count(self, *, channel: str, now: dt.datetime) -> int:
        """Rows of `channel` handed to deliveries that have not claimed them yet (their lease still runs)."""
        statement = select(func.count()).where(
            Message.channel == channel, Message.status.in_(["queued", "sending"]), Message.leased_until > now
        )
        return int(await self.session.scalar(statement) or 0)

    async def claim_for_delivery(self, message_id: int, *, now: dt.datetime) -> Message | None:
        """A leased `queued` row → `sending`, counting the attempt; None when it is not (or no longer) that.

        Only a row handed out by a dispatcher (leased, with its rate permit) is claimed: a stray duplicate
        of an old task cannot send a row early, past its back-off or the rate limit. Two runs of one task
        race on this update, and one wins.
        """
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.status == "queued", Message.leased_until.is_not(None))
            .values(status="sending", attempts=Message.attempts + 1, next_attempt_at=None, leased_until=None,
                    updated_at=now)
            .returning(Message)
            .execution_options(populate_existing=True)
        )  # fmt: skip
        return await self.session.scalar(statement)

    async def claim_for_recovery(self, message_id: int, *, check_by: dt.datetime) -> Message | None:
        """A leased `sending` row (its send may or may not have reached the provider) taken by this task.

        The row stays `sending`, with the time its send began (`updated_at`), and is due again at `check_by`
        should this task die too.
        """
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.status == "sending", Message.leased_until.is_not(None))
            .values(leased_until=None, next_attempt_at=check_by, updated_at=Message.updated_at)
            .returning(Message)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def send_again(self, message_id: int, *, now: dt.datetime) -> bool:
        """A `sending` row the provider does not have: a new attempt starts now."""
        result = await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "sending")
            .values(attempts=Message.attempts + 1, next_attempt_at=None, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def unreachable(self, message_id: int) -> bool:
        """Whether the message's recipient may no longer be sent anything: its attendee opted out or was
        erased, or (an SMS) its number texted STOP, which reaches attendees who joined in the same breath.

        A read of the attendees domain's tables in the claim's transaction: its service has no such check,
        and a delivery must not make three round trips for it.
        """
        statement = (
            select(Message.id)
            .outerjoin(Attendee, Attendee.id == Message.attendee_id)
            .outerjoin(PhoneOptOut, and_(Message.channel == "sms", PhoneOptOut.phone_number == Message.recipient))
            .where(
                Message.id == message_id,
                or_(
                    Attendee.opted_out.is_(True),
                    Attendee.erased_at.is_not(None),
                    PhoneOptOut.phone_number.is_not(None),
                ),
            )
        )
        return await self.session.scalar(statement) is not None

    async def provider_ids_taken(self, provider_message_ids: Collection[str]) -> set[str]:
        """Which of these provider ids are recorded on a message already."""
        ids = list(provider_message_ids)
        if not ids:
            return set()
        found = await self.session.scalars(
            select(Message.provider_message_id).where(Message.provider_message_id.in_(ids))
        )
        return {str(i) for i in found}

    async def finish_sending(
        self,
        message_id: int,
        *,
        status: str,
        provider_message_id: str | None,
        error: str | None,
        at: dt.datetime | None,
        stored: tuple[str, str | None] | None = None,
    ) -> None:
        """`sending` → `sent` or `failed`, unless a status report moved the message on meanwhile.

        `stored` (body, sealed body) replaces what the row keeps, for a row written before texts were sealed.
        """
        values: dict[str, Any] = {
            "status": status, "provider_message_id": provider_message_id, "error": error, "sent_at": at,
            "next_attempt_at": None, "leased_until": None,
        }  # fmt: skip
        if stored is not None:
            values["body"], values["sealed_body"] = stored
        await self.session.execute(
            update(Message).where(Message.id == message_id, Message.status == "sending").values(**values)
        )

    async def retry_later(self, message_id: int, *, error: str, at: dt.datetime) -> None:
        """`sending` → `queued`, due at `at` (the provider refused it for now, or could not be reached)."""
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "sending")
            .values(status="queued", error=error, next_attempt_at=at, leased_until=None)
        )

    async def check_later(self, message_id: int, *, error: str, at: dt.datetime, count_attempt: bool = False) -> None:
        """The row stays `sending` (the provider may have it), and is due at `at`, when the provider is asked."""
        attempts = Message.attempts + 1 if count_attempt else Message.attempts
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "sending")
            .values(
                error=error, next_attempt_at=at, leased_until=None, attempts=attempts, updated_at=Message.updated_at
            )
        )

    async def marketing_since(
        self, *, event_ids: Collection[int], channel: str, since: dt.datetime
    ) -> dict[int, list[str | None]]:
        """The dedupe keys of the marketing messages written to each attendee of these events on `channel`
        since `since` (what the daily cap counts)."""
        statement = select(Message.attendee_id, Message.dedupe_key).where(
            Message.event_id.in_(list(event_ids)),
            Message.channel == channel,
            Message.marketing.is_(True),
            Message.created_at >= since,
            Message.attendee_id.is_not(None),
        )
        found: dict[int, list[str | None]] = {}
        for attendee_id, key in await self.session.execute(statement):
            if attendee_id is not None:
                found.setdefault(attendee_id, []).append(key)
        return found

    async def defer(self, message_id: int, *, until: dt.datetime) -> None:
        """A claimed row that may not go now (quiet hours): back to `queued`, due at `until`, the attempt
        not counted."""
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "sending")
            .values(status="queued", attempts=Message.attempts - 1, next_attempt_at=until, leased_until=None)
        )

    async def add_many_unless_duplicate(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert many rows, `BULK_CHUNK` a statement; the ids of those inserted.

        A row whose `dedupe_key` is taken is left out by the database (`ON CONFLICT DO NOTHING`), so a
        concurrent writer of the same keys (another instance, a retried request) inserts each once.
        One statement executed with many parameter sets (SQLAlchemy's "insertmanyvalues": multi-row
        INSERTs from one cached compilation), not a statement compiled afresh around each chunk's values:
        a 20,000-row broadcast costs the event loop a fraction of the time.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Message).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Message.id)
        ids: list[int] = []
        for start in range(0, len(rows), BULK_CHUNK):
            result = await self.session.execute(statement, list(rows[start : start + BULK_CHUNK]))
            ids.extend(int(i) for i in result.scalars().all())
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
            .values(body="", sealed_body=None, subject=None, recipient=None, error=None)
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
