"""Every query of the voting domain: the one-statement vote insert, idempotency look-ups, tallies, seals, voids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import String, cast, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from stagevote.core.db import UTCDateTime
from stagevote.core.repository import Repository
from stagevote.voting.models import RoundSeal, Vote, VoteToken

# The group commit's one statement (PostgreSQL, asyncpg, prepared once per writer connection): many
# attendees' votes from arrays, each inserted only if the attendee may vote (the join, with the
# event's rule passed per row) and a slot under the quota is free. The next free slot is read per
# row; ON CONFLICT DO NOTHING covers a slot or a token taken meanwhile, and a token a vote change
# replaced (`vote_tokens`, almost always empty) is never taken again. The round must be open in the
# table at the vote's time, as `events.service.effective_round_status` reads it, and its row is held
# FOR SHARE until the commit (`held`: once per round of the batch, in the order the round clock locks
# them, so the two never deadlock): a round's close (an UPDATE of that row) waits for the batch, and
# a batch after the close sees it closed, so the seal made in the close's transaction holds every
# vote the round took. Each attendee is read by its primary key
# whatever the planner thinks of the table's size (OFFSET 0 keeps that subquery as written: at
# doors-open the statistics lag, and a plan that scans the event's attendees per vote is ruinous). For
# the same reason the next free slot is looked up by attendee and round only (an attendee votes in one
# event: the join checks it): with the event in that condition too, a planner that thinks the table
# empty may take the (event, round, artist) index and read every vote of the round for each vote.
# A row it does not return goes back to the one-by-one path, which answers why.
BATCH_INSERT_SQL = """
WITH ballot AS (
    SELECT * FROM unnest(
        $1::int[], $2::int[], $3::int[], $4::int[], $5::text[], $6::text[], $7::int[],
        $8::bool[], $9::bool[], $10::bool[], $11::timestamptz[]
    ) AS b(attendee_id, event_id, artist_id, round, token, channel, quota,
           registered_only, confirm_registered, confirm_walk_in, created_at)
), held AS (
    SELECT r.event_id, r.number, r.status, r.opens_at, r.closes_at FROM rounds r
    WHERE (r.event_id, r.number) IN (SELECT b.event_id, b.round FROM ballot b)
    ORDER BY r.event_id, r.number
    FOR SHARE
), eligible AS (
    SELECT b.*, (
        SELECT coalesce(max(v.slot), 0) + 1 FROM votes v WHERE v.attendee_id = b.attendee_id AND v.round = b.round
    ) AS slot
    FROM ballot b
    JOIN held r ON r.event_id = b.event_id AND r.number = b.round
    CROSS JOIN LATERAL (
        SELECT event_id, pre_registered, confirmed_at, erased_at, voided_at, opted_out
        FROM attendees WHERE id = b.attendee_id OFFSET 0
    ) a
    WHERE a.event_id = b.event_id AND a.erased_at IS NULL AND a.voided_at IS NULL AND NOT a.opted_out
      AND r.status <> 'closed' AND (r.closes_at IS NULL OR b.created_at < r.closes_at)
      AND (r.status = 'open' OR (r.opens_at IS NOT NULL AND b.created_at >= r.opens_at))
      AND NOT EXISTS (SELECT 1 FROM vote_tokens t WHERE t.token = b.token)
      AND (a.pre_registered OR NOT b.registered_only)
      AND (a.confirmed_at IS NOT NULL
           OR NOT CASE WHEN a.pre_registered THEN b.confirm_registered ELSE b.confirm_walk_in END)
)
INSERT INTO votes (attendee_id, event_id, artist_id, round, slot, token, channel, created_at)
SELECT attendee_id, event_id, artist_id, round, slot, token, channel, created_at
FROM eligible WHERE slot <= quota
ON CONFLICT DO NOTHING
RETURNING id, token, attendee_id
"""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ sets each field the slow way
class PendingVote:
    """One row of a batch: the vote, and the event's rule for who may cast it."""

    attendee_id: int
    event_id: int
    artist_id: int
    round: int
    token: str
    channel: str
    quota: int
    registered_only: bool  # only pre-registered attendees vote (a private event)
    confirm_registered: bool  # a pre-registered attendee must have confirmed the phone
    confirm_walk_in: bool  # an attendee who was not pre-registered must have confirmed the phone
    created_at: dt.datetime


MAX_VOTE_ID = 2**31 - 1  # `votes.id` is a 32-bit integer


class CountedVote(NamedTuple):
    """A vote's facts as a seal reads them (voting/receipts.py's `VoteFacts`)."""

    id: int
    event_id: int
    round: int
    attendee_id: int
    artist_id: int
    token: str
    created_at: dt.datetime
    receipt_version: int


class VoteBatchStatement:
    """The batch insert, prepared on one asyncpg connection that the caller owns (autocommit)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._statement: Any = None

    async def prepare(self) -> None:
        self._statement = await self._connection.prepare(BATCH_INSERT_SQL)

    async def insert(self, rows: Sequence[PendingVote]) -> dict[tuple[str, int], int]:
        """Insert what may be inserted, committed when this returns: (token, attendee id) → new vote id."""
        columns = (
            [r.attendee_id for r in rows],
            [r.event_id for r in rows],
            [r.artist_id for r in rows],
            [r.round for r in rows],
            [r.token for r in rows],
            [r.channel for r in rows],
            [r.quota for r in rows],
            [r.registered_only for r in rows],
            [r.confirm_registered for r in rows],
            [r.confirm_walk_in for r in rows],
            [r.created_at for r in rows],
        )
        records = await self._statement.fetch(*columns)
        return {(record[1], record[2]): record[0] for record in records}


# the receipt is derived from the row and its id when answered (voting/receipts.py), never written
VOTE_COLUMNS = ["attendee_id", "event_id", "artist_id", "round", "slot", "token", "channel", "created_at"]


class VoteRepository(Repository[Vote]):
    model = Vote

    async def insert_in_free_slot(
        self,
        *,
        attendee_id: int,
        event_id: int,
        round_number: int,
        artist_id: int,
        token: str,
        channel: str,
        quota: int,
        now: dt.datetime,
    ) -> Vote | None:
        """Take the attendee's next free slot in the round, in one statement; None if nothing was inserted.

        Nothing is inserted when the quota is used, when the token exists (or a vote change replaced
        it), or when a concurrent vote took the same slot first (ON CONFLICT DO NOTHING covers the
        slot and the token).
        """
        next_slot = (  # by attendee and round, as BATCH_INSERT_SQL says why (the attendee is of this event)
            select(func.coalesce(func.max(Vote.slot), 0) + 1)
            .where(Vote.attendee_id == attendee_id, Vote.round == round_number)
            .scalar_subquery()
        )
        source = select(
            literal(attendee_id),
            literal(event_id),
            literal(artist_id),
            literal(round_number),
            next_slot,
            literal(token),
            literal(channel),
            literal(now, UTCDateTime()),
        ).where(next_slot <= quota, ~exists().where(VoteToken.token == token))
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Vote).from_select(VOTE_COLUMNS, source).on_conflict_do_nothing().returning(Vote)
        return await self.session.scalar(statement)

    async def get_by_token(self, token: str) -> Vote | None:
        return await self.session.scalar(select(Vote).where(Vote.token == token))

    async def get_by_replaced_token(self, token: str) -> tuple[VoteToken, Vote] | None:
        """A token a vote change replaced, with the vote it made."""
        row = (
            await self.session.execute(
                select(VoteToken, Vote).join(Vote, Vote.id == VoteToken.vote_id).where(VoteToken.token == token)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def remember_replaced_token(self, vote: Vote) -> None:
        """Keep the vote's token, artist and time as they are now, before a vote change overwrites them."""
        self.session.add(
            VoteToken(
                token=vote.token,
                vote_id=vote.id,
                attendee_id=vote.attendee_id,
                artist_id=vote.artist_id,
                created_at=vote.created_at,
            )
        )

    async def count_for_attendee(self, *, attendee_id: int, event_id: int, round_number: int) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(
                    Vote.attendee_id == attendee_id, Vote.event_id == event_id, Vote.round == round_number
                )
            )
            or 0
        )

    async def oldest_in_round_for_update(self, *, attendee_id: int, event_id: int, round_number: int) -> Vote | None:
        return await self.session.scalar(
            select(Vote)
            .where(Vote.attendee_id == attendee_id, Vote.event_id == event_id, Vote.round == round_number)
            .order_by(Vote.created_at, Vote.slot)
            .limit(1)
            .with_for_update()
        )

    async def counts(
        self, *, event_id: int, round_number: int, recent_since: dt.datetime
    ) -> tuple[dict[int, int], list[str]]:
        """Votes per artist in a round, and the tally markers (`{vote id}:{artist id}`, as
        `voting.service._marker` writes them) of votes cast since `recent_since`.

        One statement and one pass over the round's rows, so both halves come from the same snapshot.
        The markers come back as a text per artist that the database joined: at thousands of votes a
        second the recent ones are a hundred thousand, and a row each through the driver held the
        event loop for a large part of a second.
        """
        in_round = (Vote.event_id == event_id, Vote.round == round_number, Vote.voided_at.is_(None))
        marker = cast(Vote.id, String) + ":" + cast(Vote.artist_id, String)
        dialect = self.session.get_bind().dialect.name
        joined = func.string_agg(marker, ",") if dialect == "postgresql" else func.group_concat(marker, ",")
        recent = joined.filter(Vote.created_at >= recent_since)  # one pass over the round's rows for both
        statement = select(Vote.artist_id, func.count(), recent).where(*in_round).group_by(Vote.artist_id)
        counts: dict[int, int] = {}
        texts: list[str] = []
        for artist_id, n, text in await self.session.execute(statement):
            counts[artist_id] = int(n)
            if text:
                texts.append(text)
        markers = ",".join(texts).split(",") if texts else []
        return counts, markers

    async def get_by_stored_receipt(self, event_id: int, receipt: str) -> Vote | None:
        """The vote with this version 1 receipt (stored; a version 2 receipt is read back to its vote's id)."""
        return await self.session.scalar(select(Vote).where(Vote.receipt == receipt, Vote.event_id == event_id))

    async def get_in_event(self, vote_id: int, event_id: int) -> Vote | None:
        if not 0 < vote_id <= MAX_VOTE_ID:  # read back from a code that is no receipt: no such row
            return None
        return await self.session.scalar(select(Vote).where(Vote.id == vote_id, Vote.event_id == event_id))

    async def get_in_event_for_update(self, vote_id: int, event_id: int) -> Vote | None:
        return await self.session.scalar(
            select(Vote).where(Vote.id == vote_id, Vote.event_id == event_id).with_for_update()
        )

    async def counted_facts(self, event_id: int, round_number: int) -> list[CountedVote]:
        """What each receipt of a round's votes that are not voided is derived from, as plain rows (a round
        may hold a hundred thousand votes)."""
        statement = select(
            Vote.id,
            Vote.event_id,
            Vote.round,
            Vote.attendee_id,
            Vote.artist_id,
            Vote.token,
            Vote.created_at,
            Vote.receipt_version,
        ).where(Vote.event_id == event_id, Vote.round == round_number, Vote.voided_at.is_(None))
        return [CountedVote(*row) for row in await self.session.execute(statement)]

    async def of_event(self, event_id: int) -> Sequence[Vote]:
        statement = select(Vote).where(Vote.event_id == event_id).order_by(Vote.id)
        return (await self.session.scalars(statement)).all()

    async def void_of_attendee(
        self, attendee_id: int, *, reason: str, note: str | None, by: int | None, at: dt.datetime
    ) -> list[tuple[int, int]]:
        """Void every vote of the attendee not voided yet; the (event, round) of each vote voided."""
        statement = (
            update(Vote)
            .where(Vote.attendee_id == attendee_id, Vote.voided_at.is_(None))
            .values(voided_at=at, void_reason=reason, void_note=note, voided_by=by)
            .returning(Vote.event_id, Vote.round)
            .execution_options(synchronize_session=False)
        )
        return [(int(e), int(r)) for e, r in await self.session.execute(statement)]


class SealRepository(Repository[RoundSeal]):
    model = RoundSeal

    async def of_round(self, event_id: int, round_number: int) -> RoundSeal | None:
        return await self.session.scalar(
            select(RoundSeal).where(RoundSeal.event_id == event_id, RoundSeal.round == round_number)
        )

    async def of_event(self, event_id: int) -> Sequence[RoundSeal]:
        statement = select(RoundSeal).where(RoundSeal.event_id == event_id).order_by(RoundSeal.round)
        return (await self.session.scalars(statement)).all()
