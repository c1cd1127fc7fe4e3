"""Integrity test helpers: attendees and votes written as rows at chosen times (the API cannot fake a time
of joining or voting), numbers that share no block, and the flags an admin reads."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient
from sqlalchemy import update

from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.events.models import Round
from stagevote.voting.models import Vote
from tests.conftest import Actor
from tests.http import ok

T0 = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)

# +1 202 NXX-XXXX with a new exchange each call: no two share a block of 100 (nor of 10,000). Area 202 is the
# one tests write by hand; exchange 555 (our own number) and the N11 service codes are left out.
_EXCHANGES = [e for e in range(201, 1000) if e != 555 and e % 100 != 11]
_spread = itertools.count()


def spread_phone() -> str:
    """A valid US number whose block no other call of this process shares."""
    n = next(_spread)
    return f"+1202{_EXCHANGES[n % len(_EXCHANGES)]:03d}{(n * 7919 + n // len(_EXCHANGES)) % 10000:04d}"


@dataclass
class Join:
    at: dt.datetime
    phone: str | None = None  # a spread number when left out
    address: str | None = None
    pre_registered: bool = False


async def seed_joins(runtime: Runtime, event_id: int, joins: Sequence[Join]) -> list[int]:
    """Attendee rows as joins at the given times would leave them; their ids, in order."""
    async with unit_of_work(runtime.sessionmaker) as session:
        rows = [
            Attendee(
                event_id=event_id,
                phone_number=j.phone or spread_phone(),
                joined_at=j.at,
                confirmed_at=j.at,
                join_address=j.address,
                pre_registered=j.pre_registered,
            )
            for j in joins
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


@dataclass
class Cast:
    attendee_id: int
    artist_id: int
    at: dt.datetime
    round: int = 1


async def seed_votes(runtime: Runtime, event_id: int, votes: Sequence[Cast]) -> list[int]:
    """Vote rows cast at the given times; their ids, in order."""
    async with unit_of_work(runtime.sessionmaker) as session:
        rows = [
            Vote(
                attendee_id=v.attendee_id,
                event_id=event_id,
                artist_id=v.artist_id,
                round=v.round,
                token=f"seed-{uuid.uuid4().hex}",
                created_at=v.at,
            )
            for v in votes
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def voters_at(runtime: Runtime, event_id: int, artist_id: int, times: Sequence[dt.datetime]) -> list[int]:
    """One fan per time (joined an hour before, from a number of its own) who voted for the artist then."""
    attendees = await seed_joins(runtime, event_id, [Join(T0 - dt.timedelta(hours=2)) for _ in times])
    return await seed_votes(runtime, event_id, [Cast(a, artist_id, at) for a, at in zip(attendees, times, strict=True)])


async def set_closes_at(runtime: Runtime, event_id: int, number: int, closes_at: dt.datetime) -> None:
    async with unit_of_work(runtime.sessionmaker) as session:
        await session.execute(
            update(Round).where(Round.event_id == event_id, Round.number == number).values(closes_at=closes_at)
        )


async def flags(client: AsyncClient, admin: Actor, event_id: int, **params: Any) -> list[dict[str, Any]]:
    """Every flag of the event, read page by page as an admin."""
    found: list[dict[str, Any]] = []
    while True:
        page = ok(
            await client.get(
                f"/events/{event_id}/integrity",
                params={"limit": 50, "offset": len(found), **params},
                headers=admin.headers,
            )
        )
        found += page["items"]
        if len(found) >= page["total"] or not page["items"]:
            assert len(found) == page["total"]
            return found
