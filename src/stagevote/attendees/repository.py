"""Every query of the attendees domain: attendees by event and phone, bulk pre-registration, opt-outs, consents,
erasure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from stagevote.attendees.models import Attendee, Consent, PhoneOptOut, PhoneOptOutDigest
from stagevote.core.repository import Repository
from stagevote.events.models import Event, EventStatus
from stagevote.voting.models import Vote

# rows per INSERT or IN (...) statement: far below SQLite's limit of bound parameters
CHUNK = 500


# what the vote path reads of an attendee (`service.ensure_may_vote`, `language_of`, `needs_confirmation`)
VOTER_COLUMNS = (
    "id", "event_id", "phone_number", "language_pref", "opted_out", "pre_registered", "confirmed_at", "erased_at",
    "voided_at",
)  # fmt: skip
_LIVE_VOTER = (
    select(
        *(getattr(Attendee, name) for name in VOTER_COLUMNS),
        (
            exists().where(PhoneOptOut.phone_number == bindparam("phone"))
            | exists().where(PhoneOptOutDigest.digest == bindparam("digest"))
        ).label("opted_out_anywhere"),
    )
    .join(Event, Event.id == Attendee.event_id)
    .where(Attendee.phone_number == bindparam("phone"), Event.status == EventStatus.LIVE.value)
    .order_by(Attendee.joined_at.desc(), Attendee.id.desc())  # as `_of_phone`
    .limit(1)
)


class AttendeeRepository(Repository[Attendee]):
    model = Attendee

    def _insert(self) -> Any:
        """The INSERT construct of this session's dialect (both know ON CONFLICT DO NOTHING)."""
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Attendee)

    async def get_for_update(self, attendee_id: int) -> Attendee | None:
        """The attendee, freshly read and locked for the rest of the unit of work (PostgreSQL)."""
        statement = (
            select(Attendee)
            .where(Attendee.id == attendee_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def get_by_phone_for_update(self, event_id: int, phone_number: str) -> Attendee | None:
        statement = (
            select(Attendee)
            .where(Attendee.event_id == event_id, Attendee.phone_number == phone_number)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def insert_if_new(self, values: dict[str, Any]) -> int | None:
        """Insert one attendee unless the event already has that phone number; the new id, or None.

        Race-safe: of two concurrent inserts of one (event, phone), one inserts and the other gets None.
        """
        statement = (
            self._insert()
            .values(**values)
            .on_conflict_do_nothing(index_elements=["event_id", "phone_number"])
            .returning(Attendee.id)
        )
        new_id = await self.session.scalar(statement)
        return int(new_id) if new_id is not None else None

    async def insert_many_if_new(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert the rows whose (event, phone) is not taken yet; how many were inserted."""
        created = 0
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            statement = (
                self._insert()
                .values(list(chunk))
                .on_conflict_do_nothing(index_elements=["event_id", "phone_number"])
                .returning(Attendee.id)
            )
            created += len((await self.session.scalars(statement)).all())
        return created

    async def page_for_event(
        self, event_id: int, *, confirmed: bool | None, opted_out: bool | None, limit: int, offset: int
    ) -> tuple[Sequence[Attendee], int]:
        statement: Select[Attendee] = select(Attendee).where(Attendee.event_id == event_id)
        if confirmed is not None:
            statement = statement.where(
                Attendee.confirmed_at.is_not(None) if confirmed else Attendee.confirmed_at.is_(None)
            )
        if opted_out is not None:
            statement = statement.where(Attendee.opted_out.is_(opted_out))
        return await self.page(statement.order_by(Attendee.joined_at, Attendee.id), limit=limit, offset=offset)

    async def set_opted_out(self, phone_number: str, opted_out: bool) -> None:
        """Mark every attendee row of the number, across events."""
        await self.session.execute(
            update(Attendee)
            .where(Attendee.phone_number == phone_number, Attendee.opted_out != opted_out)
            .values(opted_out=opted_out)
            .execution_options(synchronize_session="fetch")
        )

    def _of_phone(self, phone_number: str, statuses: Collection[EventStatus] | None) -> Select[Attendee, Event]:
        statement = (
            select(Attendee, Event)
            .join(Event, Event.id == Attendee.event_id)
            .where(Attendee.phone_number == phone_number)
            .order_by(Attendee.joined_at.desc(), Attendee.id.desc())
        )
        if statuses is not None:
            statement = statement.where(Event.status.in_([s.value for s in statuses]))
        return statement

    async def latest_of_phone(
        self, phone_number: str, *, statuses: Collection[EventStatus] | None = None
    ) -> tuple[Attendee, Event] | None:
        """The number's most recently joined attendee row (of an event in one of `statuses`), with its event."""
        row = (await self.session.execute(self._of_phone(phone_number, statuses).limit(1))).first()
        return (row[0], row[1]) if row is not None else None

    async def latest_live_of_phone_with_opt_out(self, phone_number: str, digest: str) -> dict[str, Any] | None:
        """The vote columns (`VOTER_COLUMNS`) of the number's most recently joined attendee row of a live event,
        and `opted_out_anywhere`: whether the number opted out (as `PhoneOptOutRepository.is_opted_out` reads it);
        None without such a row. One statement, built once: an SMS vote's look-up."""
        row = (await self.session.execute(_LIVE_VOTER, {"phone": phone_number, "digest": digest})).mappings().first()
        return dict(row) if row is not None else None

    async def with_code_of_phone(
        self, phone_number: str, *, statuses: Collection[EventStatus]
    ) -> Sequence[tuple[Attendee, Event]]:
        """The number's attendee rows that were sent a confirmation code, most recent first, locked."""
        statement = (
            self._of_phone(phone_number, statuses)
            .where(Attendee.confirmation_code_hash.is_not(None))
            .with_for_update(of=Attendee)
            .execution_options(populate_existing=True)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def reachable_of_event(
        self, event_id: int, *, round_number: int | None = None, voted: bool | None = None
    ) -> Sequence[Attendee]:
        """The event's attendees whose data is not erased, in id order; with `round_number` and `voted`,
        only those who cast a vote in that round (True) or none (False)."""
        statement = select(Attendee).where(Attendee.event_id == event_id, Attendee.erased_at.is_(None))
        if round_number is not None and voted is not None:
            has_voted = exists().where(
                Vote.attendee_id == Attendee.id, Vote.event_id == event_id, Vote.round == round_number
            )
            statement = statement.where(has_voted if voted else ~has_voted)
        return (await self.session.scalars(statement.order_by(Attendee.id))).all()

    async def votes_of(self, attendee_id: int) -> Sequence[Vote]:
        """The attendee's votes, oldest first (a read of the voting domain's table, for the attendee's export)."""
        statement = select(Vote).where(Vote.attendee_id == attendee_id).order_by(Vote.created_at, Vote.id)
        return (await self.session.scalars(statement)).all()

    async def others_hold_phone(self, phone_number: str, *, except_attendee_id: int) -> bool:
        """Whether another attendee row (of any event) still holds the number in clear."""
        statement = select(exists().where(Attendee.phone_number == phone_number, Attendee.id != except_attendee_id))
        return bool(await self.session.scalar(statement))


class PhoneOptOutRepository(Repository[PhoneOptOut]):
    model = PhoneOptOut

    def _insert(self) -> Any:
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PhoneOptOut)

    async def is_opted_out(self, phone_number: str, digest: str) -> bool:
        """Whether the number opted out: kept in clear, or as the `digest` of an erased attendee's number."""
        in_clear = exists().where(PhoneOptOut.phone_number == phone_number)
        as_digest = exists().where(PhoneOptOutDigest.digest == digest)
        return bool(await self.session.scalar(select(in_clear | as_digest)))

    async def opted_out_among(self, digests: dict[str, str]) -> set[str]:
        """The numbers among `digests` (number → its digest) that opted out, in clear or as a digest."""
        numbers = list(digests)
        found: set[str] = set()
        for start in range(0, len(numbers), CHUNK):
            chunk = numbers[start : start + CHUNK]
            rows = await self.session.scalars(
                select(PhoneOptOut.phone_number).where(PhoneOptOut.phone_number.in_(chunk))
            )
            found.update(rows)
            by_digest = {digests[number]: number for number in chunk}
            kept = await self.session.scalars(
                select(PhoneOptOutDigest.digest).where(PhoneOptOutDigest.digest.in_(list(by_digest)))
            )
            found.update(by_digest[digest] for digest in kept)
        return found

    async def has_digest(self, digest: str) -> bool:
        return await self.session.get(PhoneOptOutDigest, digest) is not None

    async def opted_out_at(self, phone_number: str) -> dt.datetime | None:
        return await self.session.scalar(
            select(PhoneOptOut.opted_out_at).where(PhoneOptOut.phone_number == phone_number)
        )

    async def keep_as_digest(self, phone_number: str, digest: str) -> None:
        """Keep the number's opt-out as its digest (race-safe), keeping the time it opted out."""
        since = await self.opted_out_at(phone_number)
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values: dict[str, Any] = {"digest": digest}
        if since is not None:
            values["opted_out_at"] = since
        await self.session.execute(insert(PhoneOptOutDigest).values(**values).on_conflict_do_nothing())

    async def forget_in_clear(self, phone_number: str) -> None:
        await self.session.execute(delete(PhoneOptOut).where(PhoneOptOut.phone_number == phone_number))

    async def remove_digest(self, digest: str) -> bool:
        result = await self.session.execute(delete(PhoneOptOutDigest).where(PhoneOptOutDigest.digest == digest))
        return bool(getattr(result, "rowcount", 0))

    async def add_if_new(self, phone_number: str) -> bool:
        """Record the opt-out; False when the number had already opted out (race-safe)."""
        statement = (
            self._insert()
            .values(phone_number=phone_number)
            .on_conflict_do_nothing(index_elements=["phone_number"])
            .returning(PhoneOptOut.phone_number)
        )
        return await self.session.scalar(statement) is not None

    async def remove(self, phone_number: str) -> bool:
        """Forget the opt-out; False when there was none."""
        found = await self.session.get(PhoneOptOut, phone_number)
        if found is None:
            return False
        await self.session.delete(found)
        await self.session.flush()
        return True


class ConsentRepository(Repository[Consent]):
    model = Consent

    async def add_for_phone(
        self, phone_number: str, *, kind: str, channel: str, words: str | None, at: dt.datetime
    ) -> int:
        """One consent row for each attendee row the number has (an opt-out holds across events), or one for
        the number alone when it has none; how many rows."""
        holders = (
            await self.session.execute(
                select(Attendee.id, Attendee.event_id).where(Attendee.phone_number == phone_number)
            )
        ).all()
        targets: list[tuple[int | None, int | None]] = [(int(a), int(e)) for a, e in holders] or [(None, None)]
        for attendee_id, event_id in targets:
            self.session.add(
                Consent(
                    attendee_id=attendee_id, event_id=event_id, phone_number=phone_number, kind=kind,
                    channel=channel, words=words, at=at,
                )
            )  # fmt: skip
        await self.session.flush()
        return len(targets)

    async def of_attendee(self, attendee_id: int) -> Sequence[Consent]:
        """The attendee's consents, oldest first."""
        statement = select(Consent).where(Consent.attendee_id == attendee_id).order_by(Consent.id)
        return (await self.session.scalars(statement)).all()

    async def erase(self, *, attendee_id: int, phone_number: str | None) -> None:
        """Blank the number and the words of the attendee's consents (and, given `phone_number`, of the
        number's consents that name no attendee); kind, channel, terms version and time stay."""
        whose = Consent.attendee_id == attendee_id
        if phone_number:
            whose = whose | ((Consent.attendee_id.is_(None)) & (Consent.phone_number == phone_number))
        await self.session.execute(
            update(Consent)
            .where(whose)
            .values(phone_number=None, words=None)
            .execution_options(synchronize_session=False)
        )
