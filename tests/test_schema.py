"""The database itself: migrations match the models, and the constraints hold without the code in front."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError, SAWarning

from stagevote.artists.models import Artist
from stagevote.attendees.models import Attendee
from stagevote.auth.models import User
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event, Round
from stagevote.migrations import alembic_config, upgrade
from stagevote.voting.models import Vote

SEED_COLUMNS = {
    "users": {"id", "email", "password_hash", "role", "language_pref", "created_at"},
    "events": {"id", "title", "start_date", "end_date", "venue", "access_type", "vote_config", "status",
               "created_by", "created_at", "updated_at"},
    "artists": {"id", "name", "bio", "social_links", "claimed_by_user_id", "status", "created_at"},
    "event_artists": {"event_id", "artist_id", "invite_status", "joined_at"},
    "attendees": {"id", "event_id", "phone_number", "email", "joined_at", "opted_out"},
    "votes": {"id", "attendee_id", "event_id", "artist_id", "round", "token", "created_at"},
    "messages": {"id", "attendee_id", "event_id", "channel", "message_type", "status", "sent_at"},
}  # fmt: skip


async def test_migrations_match_the_models(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLite cannot reflect expression indexes
            await connection.run_sync(lambda sync: command.check(alembic_config(sync)))


async def test_every_seed_column_exists(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {t: {c["name"] for c in inspect(sync).get_columns(t)} for t in SEED_COLUMNS}
        )
    for table, expected in SEED_COLUMNS.items():
        assert expected <= columns[table], (table, expected - columns[table])


def _event(keyword: str, status: str = "draft") -> Event:
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    return Event(
        title="t",
        start_date=start,
        end_date=start + dt.timedelta(hours=1),
        access_type="public",
        keyword=keyword,
        vote_config={},
        status=status,
    )


async def _violates(runtime: Runtime, *rows: object) -> bool:
    try:
        async with unit_of_work(runtime.sessionmaker) as session:
            for row in rows:
                session.add(row)
                await session.flush()
    except IntegrityError:
        return True
    return False


async def test_keyword_unique_case_insensitive_among_events_not_archived(runtime: Runtime) -> None:
    assert not await _violates(runtime, _event("ROCK"))
    assert await _violates(runtime, _event("rock"))
    assert not await _violates(runtime, _event("rock", status="archived"))


async def test_one_open_round_per_event_and_dates_in_order(runtime: Runtime) -> None:
    event = _event("ROUNDS")
    assert not await _violates(runtime, event)
    assert not await _violates(runtime, Round(event_id=event.id, number=1, name="a", status="open"))
    assert await _violates(runtime, Round(event_id=event.id, number=2, name="b", status="open"))
    bad = _event("BACKWARDS")
    bad.end_date = bad.start_date - dt.timedelta(hours=1)
    assert await _violates(runtime, bad)


@pytest.mark.parametrize("column", ["status", "access_type"])
async def test_check_constraints_refuse_unknown_states(runtime: Runtime, column: str) -> None:
    event = _event("CHECKS")
    setattr(event, column, "nonsense")
    assert await _violates(runtime, event)


async def test_one_vote_per_slot_and_unique_tokens(runtime: Runtime) -> None:
    event = _event("VOTES")
    artist = Artist(name="The Band", status="invited")
    assert not await _violates(runtime, event, artist)
    attendee = Attendee(event_id=event.id, phone_number="+15551234567")
    assert not await _violates(runtime, attendee)

    def vote(token: str, slot: int = 1, round_: int = 1) -> Vote:
        return Vote(
            attendee_id=attendee.id, event_id=event.id, artist_id=artist.id, round=round_, slot=slot, token=token
        )

    assert not await _violates(runtime, vote("t1"))
    assert await _violates(runtime, vote("t2"))  # same slot
    assert await _violates(runtime, vote("t1", slot=2))  # same token
    assert not await _violates(runtime, vote("t3", slot=2))
    assert not await _violates(runtime, vote("t4", round_=2))
    assert await _violates(runtime, Attendee(event_id=event.id, phone_number="+15551234567"))


async def test_users_role_is_checked(runtime: Runtime) -> None:
    assert await _violates(runtime, User(email="x@example.com", password_hash="h", role="emperor"))


async def test_a_fresh_sqlite_database_migrates_without_a_warning(tmp_path: Path) -> None:
    """`make run`'s first migrate prints that the database is up to date, and no SQLAlchemy warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SAWarning)
        await upgrade(f"sqlite:///{tmp_path / 'fresh.db'}")
