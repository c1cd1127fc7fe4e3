"""Every query of the reports domain: an event's vote, attendee and consent rows in chunks, and their aggregates.

These read the tables of the voting, attendees and artists domains. Rows come in chunks: on PostgreSQL
from one server-side cursor (`stream` with `yield_per`), on SQLite by key ranges, each chunk its own short
transaction (a SQLite transaction here holds the write lock, which a slow download must not keep).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Row, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.artists.models import Artist, EventArtist
from stagevote.attendees.models import Attendee, Consent
from stagevote.core.repository import epoch_bucket, iso_utc
from stagevote.voting.models import Vote

HOUR = 3600
DAY = 86400
Rows = Select[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def artists_of_event(self, event_id: int) -> dict[int, tuple[str, str]]:
        """Every artist invited to the event (whatever became of the invitation): id → (name, vote code)."""
        statement = (
            select(Artist.id, Artist.name, EventArtist.vote_code)
            .join(EventArtist, EventArtist.artist_id == Artist.id)
            .where(EventArtist.event_id == event_id)
        )
        return {int(a): (str(name), str(code)) for a, name, code in await self.session.execute(statement)}

    def votes_statement(self, event_id: int) -> Rows:
        """id, attendee id, round, artist id, channel, time cast (ISO 8601 text), in id order."""
        return (
            select(
                Vote.id,
                Vote.attendee_id,
                Vote.round,
                Vote.artist_id,
                Vote.channel,
                iso_utc(self.dialect, Vote.created_at),
            )
            .where(Vote.event_id == event_id, Vote.voided_at.is_(None))  # voided votes are not counted
            .order_by(Vote.id)
        )

    def attendees_statement(self, event_id: int) -> Rows:
        """id, phone, e-mail, joined, confirmed (ISO 8601 text), opted out, erased, votes cast, in id order."""
        cast_votes = (
            select(Vote.attendee_id, func.count().label("n"))
            .where(Vote.event_id == event_id, Vote.voided_at.is_(None))  # voided votes are not counted
            .group_by(Vote.attendee_id)
            .subquery()
        )
        return (
            select(
                Attendee.id,
                Attendee.phone_number,
                Attendee.email,
                iso_utc(self.dialect, Attendee.joined_at),
                iso_utc(self.dialect, Attendee.confirmed_at),
                Attendee.opted_out,
                Attendee.erased_at.is_not(None),
                func.coalesce(cast_votes.c.n, 0),
            )
            .outerjoin(cast_votes, cast_votes.c.attendee_id == Attendee.id)
            .where(Attendee.event_id == event_id)
            .order_by(Attendee.id)
        )

    def consents_statement(self, event_id: int) -> Rows:
        """id, attendee id, phone, kind, channel, words, terms version, time (ISO 8601 text), in id order."""
        return (
            select(
                Consent.id,
                Consent.attendee_id,
                Consent.phone_number,
                Consent.kind,
                Consent.channel,
                Consent.words,
                Consent.terms_version,
                iso_utc(self.dialect, Consent.at),
            )
            .where(Consent.event_id == event_id)
            .order_by(Consent.id)
        )

    async def stream(self, statement: Rows, *, chunk: int) -> AsyncIterator[Sequence[AnyRow]]:
        """The statement's rows, `chunk` at a time, from a server-side cursor (on the session's connection, at the
        Core level: these are plain rows, which need none of the ORM's per-row work)."""
        connection = await self.session.connection()
        result = await connection.stream(statement.execution_options(yield_per=chunk))
        async for partition in result.partitions(chunk):
            yield partition

    async def chunk_after(self, statement: Rows, *, key: Any, after: int, chunk: int) -> Sequence[AnyRow]:
        """The next `chunk` rows of a statement in `key` order, after the key value `after`."""
        rows: Sequence[AnyRow] = (await self.session.execute(statement.where(key > after).limit(chunk))).all()
        return rows

    async def votes_by_round_artist_hour(self, event_id: int) -> list[tuple[int, int, int, int]]:
        """(round, artist id, hour since 1970 UTC, votes) of every group that has a vote."""
        hour = epoch_bucket(self.dialect, Vote.created_at, HOUR)
        statement = (
            select(Vote.round, Vote.artist_id, hour, func.count())
            .where(Vote.event_id == event_id, Vote.voided_at.is_(None))  # voided votes are not counted
            .group_by(Vote.round, Vote.artist_id, hour)
            .order_by(Vote.round, Vote.artist_id, hour)
        )
        return [(int(r), int(a), int(h), int(n)) for r, a, h, n in await self.session.execute(statement)]

    async def votes_by_round_artist(self, event_id: int) -> dict[tuple[int, int], int]:
        statement = (
            select(Vote.round, Vote.artist_id, func.count())
            .where(Vote.event_id == event_id, Vote.voided_at.is_(None))  # voided votes are not counted
            .group_by(Vote.round, Vote.artist_id)
        )
        return {(int(r), int(a)): int(n) for r, a, n in await self.session.execute(statement)}

    async def attendees_by_day_status(self, event_id: int) -> list[tuple[int, str, int]]:
        """(day since 1970 UTC of joining, status, attendees): status is the first that holds of erased,
        opted_out, confirmed, unconfirmed."""
        day = epoch_bucket(self.dialect, Attendee.joined_at, DAY)
        status = case(
            (Attendee.erased_at.is_not(None), "erased"),
            (Attendee.opted_out.is_(True), "opted_out"),
            (Attendee.confirmed_at.is_not(None), "confirmed"),
            else_="unconfirmed",
        )
        statement = (
            select(day, status, func.count())
            .where(Attendee.event_id == event_id)
            .group_by(day, status)
            .order_by(day, status)
        )
        return [(int(d), str(s), int(n)) for d, s, n in await self.session.execute(statement)]
