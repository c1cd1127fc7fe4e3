"""Every query of the analytics domain: one SQL aggregate per block (attendees, votes, messages) of an event.

These read the tables of the attendees, voting, messaging and artists domains; they only count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Integer, String, and_, case, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.artists.models import Artist
from stagevote.attendees.models import Attendee
from stagevote.core.repository import epoch_bucket
from stagevote.messaging.models import Message
from stagevote.voting.models import Vote

MINUTE = 60


@dataclass(frozen=True)
class AttendeeCounts:
    joined: int
    confirmed: int
    opted_out: int


@dataclass
class VoteCounts:
    by_round: dict[int, int] = field(default_factory=dict)
    by_artist: dict[int, int] = field(default_factory=dict)
    by_round_artist: dict[tuple[int, int], int] = field(default_factory=dict)
    per_minute: dict[int, int] = field(default_factory=dict)  # minute since 1970 (UTC) → votes
    artist_names: dict[int, str] = field(default_factory=dict)
    voters: int = 0  # attendees who cast at least one vote

    @property
    def total(self) -> int:
        return sum(self.by_round.values())


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def attendee_counts(self, event_id: int) -> AttendeeCounts:
        """Attendees of the event (pre-registered numbers included), those confirmed, those opted out."""
        statement = select(
            func.count(),
            func.count(Attendee.confirmed_at),
            func.coalesce(func.sum(case((Attendee.opted_out.is_(True), 1), else_=0)), 0),
        ).where(Attendee.event_id == event_id)
        row = (await self.session.execute(statement)).one()
        return AttendeeCounts(joined=int(row[0]), confirmed=int(row[1]), opted_out=int(row[2]))

    async def vote_counts(self, event_id: int) -> VoteCounts:
        """Votes by round, by artist, by round and artist, per minute, and the voters, in one statement."""
        dialect = self.session.get_bind().dialect.name
        minute = epoch_bucket(dialect, Vote.created_at, MINUTE)
        of_event = and_(Vote.event_id == event_id, Vote.voided_at.is_(None))  # voided votes are not counted
        no_name = null().cast(String)
        no_key = null().cast(Integer)
        by_round = select(literal("round"), Vote.round, no_key, no_name, func.count()).where(of_event)
        by_artist = (
            select(literal("artist"), Vote.artist_id, no_key, func.max(Artist.name), func.count())
            .join(Artist, Artist.id == Vote.artist_id)
            .where(of_event)
            .group_by(Vote.artist_id)
        )
        by_round_artist = select(literal("round_artist"), Vote.round, Vote.artist_id, no_name, func.count()).where(
            of_event
        )
        per_minute = select(literal("minute"), minute, no_key, no_name, func.count()).where(of_event)
        voters = select(literal("voters"), no_key, no_key, no_name, func.count(Vote.attendee_id.distinct())).where(
            of_event
        )
        statement = union_all(
            voters,
            by_round.group_by(Vote.round),
            by_artist,
            by_round_artist.group_by(Vote.round, Vote.artist_id),
            per_minute.group_by(minute),
        )
        counts = VoteCounts()
        for kind, key, second, name, n in await self.session.execute(statement):
            if kind == "round":
                counts.by_round[int(key)] = int(n)
            elif kind == "artist":
                counts.by_artist[int(key)] = int(n)
                counts.artist_names[int(key)] = str(name)
            elif kind == "voters":
                counts.voters = int(n)
            elif kind == "round_artist":
                counts.by_round_artist[(int(key), int(second))] = int(n)
            else:
                counts.per_minute[int(key)] = int(n)
        return counts

    async def message_counts(self, event_id: int) -> dict[tuple[str, str], int]:
        """The event's messages by (channel, status)."""
        statement = (
            select(Message.channel, Message.status, func.count())
            .where(Message.event_id == event_id)
            .group_by(Message.channel, Message.status)
        )
        return {(str(c), str(s)): int(n) for c, s, n in await self.session.execute(statement)}
