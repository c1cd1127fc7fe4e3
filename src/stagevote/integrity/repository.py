"""Every query of the integrity domain: one read of the attendees, votes or rounds tables per kind of flag.

These read the tables of the attendees, voting, events and artists domains; they only read. Groups are
narrowed in SQL (`HAVING count(*) >= n`), so only the members of a group big enough to matter come back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import InstrumentedAttribute

from stagevote.artists.models import Artist
from stagevote.attendees.models import Attendee
from stagevote.core.repository import epoch_bucket
from stagevote.events.models import Round
from stagevote.voting.models import Vote

MINUTE = 60
CHUNK = 500  # values per IN (...): far below the bound parameters either database takes


@dataclass(frozen=True)
class Member:
    """An attendee of a group that shares a key (a block of numbers, an address), with when they joined."""

    attendee_id: int
    key: str
    joined_at: dt.datetime


@dataclass(frozen=True)
class Number:
    attendee_id: int
    phone_number: str
    joined_at: dt.datetime


@dataclass(frozen=True)
class LateVote:
    """A vote in a timed round by an attendee who joined shortly before the round's planned close."""

    attendee_id: int
    joined_at: dt.datetime
    round: int
    closes_at: dt.datetime
    vote_id: int


@dataclass(frozen=True)
class ArtistMinute:
    artist_id: int
    name: str
    minute: int  # minutes since 1970 (UTC)
    votes: int


class IntegrityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _walk_ins(self, event_id: int) -> ColumnElement[bool]:
        """Attendees of the event who joined by themselves (not pre-registered by the organizer), not erased."""
        return and_(Attendee.event_id == event_id, Attendee.pre_registered.is_(False), Attendee.erased_at.is_(None))

    async def _members_of_big_groups(
        self, event_id: int, key: ColumnElement[Any] | InstrumentedAttribute[Any], min_size: int
    ) -> list[Member]:
        of_event = and_(self._walk_ins(event_id), key.is_not(None))
        big = select(key).where(of_event).group_by(key).having(func.count() >= min_size)
        statement = (
            select(Attendee.id, key, Attendee.joined_at)
            .where(of_event, key.in_(big.scalar_subquery()))
            .order_by(key, Attendee.joined_at, Attendee.id)
        )
        return [Member(int(i), str(k), at) for i, k, at in await self.session.execute(statement)]

    async def members_of_busy_blocks(self, event_id: int, *, digits: int, min_size: int) -> list[Member]:
        """Walk-ins whose number shares all but its last `digits` digits with at least `min_size - 1` other
        walk-ins of the event; the key is that common prefix (the block)."""
        return await self._members_of_big_groups(event_id, self._range(digits), min_size)

    async def members_of_busy_addresses(self, event_id: int, *, min_size: int) -> list[Member]:
        """Walk-ins whose web join came from an address (IPv4, or IPv6 /64) at least `min_size` of them share."""
        return await self._members_of_big_groups(event_id, Attendee.join_address, min_size)

    @staticmethod
    def _range(digits: int) -> ColumnElement[Any]:
        """A number without its last `digits` digits: the range it was allocated from."""
        return func.substr(Attendee.phone_number, 1, func.length(Attendee.phone_number) - digits)

    async def number_ranges(self, event_id: int, *, digits: int) -> list[tuple[str, int]]:
        """The walk-ins' numbers grouped by range (all but the last `digits` digits) and length: one number of
        each group, and its length (what kind of line a number is, only the phonenumbers library can tell, and
        a range is one kind of line)."""
        of_event = and_(self._walk_ins(event_id), Attendee.phone_number.is_not(None))
        length = func.length(Attendee.phone_number)
        statement = (
            select(func.min(Attendee.phone_number), length).where(of_event).group_by(self._range(digits), length)
        )
        return [(str(p), int(n)) for p, n in await self.session.execute(statement)]

    async def numbers_in_ranges(self, event_id: int, samples: Sequence[str], *, digits: int) -> list[Number]:
        """The walk-ins whose number is in the range (and of the length) of one of `samples`, a chunk of ranges
        per statement."""
        wanted = {(p[:-digits], len(p)) for p in samples}
        prefixes = sorted({prefix for prefix, _ in wanted})
        found: list[Number] = []
        for start in range(0, len(prefixes), CHUNK):
            statement = select(Attendee.id, Attendee.phone_number, Attendee.joined_at).where(
                self._walk_ins(event_id), self._range(digits).in_(prefixes[start : start + CHUNK])
            )
            for i, p, at in await self.session.execute(statement):
                if (str(p)[:-digits], len(str(p))) in wanted:
                    found.append(Number(int(i), str(p), at))
        return sorted(found, key=lambda n: n.attendee_id)

    async def late_votes(self, event_id: int, *, seconds: int) -> list[LateVote]:
        """Votes in a timed round cast by attendees who joined at most `seconds` before its `closesAt`."""
        joined = epoch_bucket(self._dialect, Attendee.joined_at, 1)
        closes = epoch_bucket(self._dialect, Round.closes_at, 1)
        statement = (
            select(Attendee.id, Attendee.joined_at, Round.number, Round.closes_at, Vote.id)
            .join(Round, and_(Round.event_id == Attendee.event_id, Round.closes_at.is_not(None)))
            .join(Vote, and_(Vote.attendee_id == Attendee.id, Vote.round == Round.number, Vote.voided_at.is_(None)))
            .where(Attendee.event_id == event_id, (closes - joined).between(0, seconds))
            .order_by(Attendee.id, Round.number, Vote.id)
        )
        return [
            LateVote(int(a), at, int(r), closes_at, int(v))
            for a, at, r, closes_at, v in await self.session.execute(statement)
            if closes_at is not None  # always, by the join; for the type checker
        ]

    async def votes_per_artist_minute(self, event_id: int) -> list[ArtistMinute]:
        """The event's votes counted per artist and minute (only the minutes with votes)."""
        minute = epoch_bucket(self._dialect, Vote.created_at, MINUTE)
        statement = (
            select(Vote.artist_id, func.max(Artist.name), minute, func.count())
            .join(Artist, Artist.id == Vote.artist_id)
            .where(Vote.event_id == event_id, Vote.voided_at.is_(None))  # a voided vote is dealt with
            .group_by(Vote.artist_id, minute)
        )
        return [ArtistMinute(int(a), str(n), int(m), int(c)) for a, n, m, c in await self.session.execute(statement)]

    async def vote_ids_in_minutes(
        self, event_id: int, minutes: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], list[int]]:
        """The ids of the event's votes for each (artist, minute since 1970) asked, in order."""
        if not minutes:
            return {}
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        spans = {
            (artist, minute): (epoch + dt.timedelta(minutes=minute), epoch + dt.timedelta(minutes=minute + 1))
            for artist, minute in minutes
        }
        statement = (
            select(Vote.id, Vote.artist_id, Vote.created_at)
            .where(
                Vote.event_id == event_id,
                Vote.voided_at.is_(None),
                or_(
                    *(
                        and_(Vote.artist_id == artist, Vote.created_at >= start, Vote.created_at < end)
                        for (artist, _), (start, end) in spans.items()
                    )
                ),
            )
            .order_by(Vote.id)
        )
        found: dict[tuple[int, int], list[int]] = {key: [] for key in spans}
        for vote_id, artist, created_at in await self.session.execute(statement):
            minute = int((created_at - epoch).total_seconds()) // MINUTE
            if (artist, minute) in found:
                found[(artist, minute)].append(int(vote_id))
        return found
