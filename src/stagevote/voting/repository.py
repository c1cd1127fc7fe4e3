"""Every query of the voting domain: the one-statement vote insert, idempotency look-ups, tallies."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from stagevote.core.db import UTCDateTime
from stagevote.core.repository import Repository
from stagevote.voting.models import Vote

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

        Nothing is inserted when the quota is used, when the token exists, or when a concurrent
        vote took the same slot first (ON CONFLICT DO NOTHING covers the slot and the token).
        """
        next_slot = (
            select(func.coalesce(func.max(Vote.slot), 0) + 1)
            .where(Vote.attendee_id == attendee_id, Vote.event_id == event_id, Vote.round == round_number)
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
        ).where(next_slot <= quota)
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Vote).from_select(VOTE_COLUMNS, source).on_conflict_do_nothing().returning(Vote)
        return await self.session.scalar(statement)

    async def get_by_token(self, token: str) -> Vote | None:
        return await self.session.scalar(select(Vote).where(Vote.token == token))

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
    ) -> tuple[dict[int, int], list[tuple[int, int]]]:
        """Votes per artist in a round, and the (vote id, artist) of votes cast since `recent_since`.

        One statement, so both halves come from the same snapshot of the table.
        """
        in_round = (Vote.event_id == event_id, Vote.round == round_number)
        totals = select(Vote.artist_id, func.count().label("n"), literal(None).label("vote_id")).where(*in_round)
        recent = select(Vote.artist_id, literal(None), Vote.id).where(*in_round, Vote.created_at >= recent_since)
        statement = totals.group_by(Vote.artist_id).union_all(recent)
        counts: dict[int, int] = {}
        markers: list[tuple[int, int]] = []
        for artist_id, n, vote_id in await self.session.execute(statement):
            if vote_id is None:
                counts[artist_id] = int(n)
            else:
                markers.append((int(vote_id), artist_id))
        return counts, markers
