"""The vote path's group commit (PostgreSQL): many attendees' votes in one statement, each answered as alone.

A batch is made to gather on purpose: the writer gets one connection, and a test connection holds a
lock that the first batch's insert waits for (the foreign key's share lock on the event row), so
every vote sent meanwhile queues for the next batch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.engine import make_url

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.errors import ProblemError
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.voting.repository import PendingVote
from stagevote.voting.writer import VoteWriter
from tests.conftest import Actor
from tests.factories import event_body
from tests.voting.conftest import Stage, build_stage

pytestmark = pytest.mark.postgresql

_phones = itertools.count(7_000_000)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One writer connection: while its batch waits, every other vote queues for the next one."""
    return settings.model_copy(update={"vote_writer_connections": 1})


def _batches(runtime: Runtime) -> tuple[float, float]:
    """(number of batches written, votes in them) so far."""
    registry = runtime.metrics.registry
    count = registry.get_sample_value("stagevote_vote_batch_size_count") or 0.0
    total = registry.get_sample_value("stagevote_vote_batch_size_sum") or 0.0
    return count, total


async def _until(predicate: Any, what: str, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def _connect(settings: Settings) -> asyncpg.Connection:
    url = make_url(settings.database_url.get_secret_value())
    return await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )


async def test_one_batch_of_many_attendees_answers_each_vote_as_alone(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor, settings: Settings
) -> None:
    writer: VoteWriter = app.state.vote_writer
    assert writer is not None and writer.ready
    stage = await build_stage(client, runtime, admin)  # votesPerRound 1
    changing = await build_stage(client, runtime, admin, allowVoteChange=True)

    eligible = [await stage.ballot() for _ in range(6)]
    over_quota, repeating, stranger, twin_a, twin_b, twice = [await stage.ballot() for _ in range(6)]
    opted_out = await stage.ballot(opted_out=True)
    unconfirmed = await stage.ballot(confirmed=False)
    changer = await changing.ballot()
    blocker = await stage.ballot()

    # what the batch will meet: a quota already used, a token already used (by the same attendee and another)
    assert (await stage.vote(over_quota, "Owls", token="earlier-over-quota")).status_code == 201
    first = await stage.vote(repeating, "Foxes", token="repeated-token-1")
    assert first.status_code == 201
    assert (await changing.vote(changer, "Owls", token="change-me-1")).status_code == 201
    before = _batches(runtime)

    lock = await _connect(settings)
    try:
        transaction = lock.transaction()
        await transaction.start()
        await lock.execute(
            "SELECT 1 FROM events WHERE id = ANY($1::int[]) FOR UPDATE", [stage.event_id, changing.event_id]
        )
        held = asyncio.ensure_future(stage.vote(blocker, "Bears", token="blocker-vote-1"))
        await _until(lambda: writer.writing == 1 and writer.pending == 0, "the first batch")

        sends: dict[str, Any] = {
            **{f"eligible-{i}": stage.vote(b, "Owls", token=f"eligible-token-{i}") for i, b in enumerate(eligible)},
            "over_quota": stage.vote(over_quota, "Bears", token="over-quota-2"),
            "repeating": stage.vote(repeating, "Foxes", token="repeated-token-1"),
            "stranger": stage.vote(stranger, "Owls", token="repeated-token-1"),
            "twin_a": stage.vote(twin_a, "Owls", token="twin-token-1"),
            "twin_b": stage.vote(twin_b, "Foxes", token="twin-token-1"),
            "twice_1": stage.vote(twice, "Owls", token="twice-token-1"),
            "twice_2": stage.vote(twice, "Foxes", token="twice-token-2"),
            "opted_out": stage.vote(opted_out, "Owls", token="opted-out-1"),
            "unconfirmed": stage.vote(unconfirmed, "Owls", token="unconfirmed-1"),
            "changer": changing.vote(changer, "Foxes", token="change-me-2"),
        }
        tasks = {name: asyncio.ensure_future(send) for name, send in sends.items()}
        await _until(lambda: writer.pending == len(tasks), "every vote to queue")
        await transaction.rollback()
    finally:
        await lock.close()
    answers = {name: await task for name, task in tasks.items()}
    assert (await held).status_code == 201

    # one batch took every attendee's first vote; the second vote of `twice` waited for a batch of its own
    count, total = _batches(runtime)
    assert count - before[0] == 3, (count, before)
    assert total - before[1] == 1 + (len(tasks) - 1) + 1

    def problem(name: str) -> tuple[int, str]:
        r = answers[name]
        return r.status_code, r.json().get("type", "").rsplit(":", 1)[-1]

    for i in range(len(eligible)):
        r = answers[f"eligible-{i}"]
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["token"] == f"eligible-token-{i}" and body["artistId"] == stage.artists["Owls"]
        assert body["eventId"] == stage.event_id and body["round"] == 1
        assert set(body) == {"id", "eventId", "round", "artistId", "token", "createdAt", "receipt"}
    assert problem("over_quota") == (409, "quota-used")
    assert answers["repeating"].status_code == 200
    assert answers["repeating"].json() == first.json()
    assert problem("stranger") == (409, "token-used")
    assert sorted([answers["twin_a"].status_code, answers["twin_b"].status_code]) == [201, 409]
    assert sorted([answers["twice_1"].status_code, answers["twice_2"].status_code]) == [201, 409]
    assert problem("opted_out") == (403, "opted-out")
    assert problem("unconfirmed") == (403, "not-confirmed")
    assert answers["changer"].status_code == 201
    assert answers["changer"].json()["artistId"] == changing.artists["Foxes"]

    # the rows: one per 201 (the changed vote moved, not added), and the leaderboard says the same
    connection = await _connect(settings)
    try:
        rows = await connection.fetch(
            "SELECT attendee_id, event_id, artist_id, token FROM votes ORDER BY attendee_id, slot"
        )
    finally:
        await connection.close()
    by_attendee: dict[int, list[str]] = {}
    for row in rows:
        by_attendee.setdefault(row["attendee_id"], []).append(row["token"])
    for i, ballot in enumerate(eligible):
        assert by_attendee[ballot.attendee_id] == [f"eligible-token-{i}"]
    assert by_attendee[over_quota.attendee_id] == ["earlier-over-quota"]
    assert by_attendee[repeating.attendee_id] == ["repeated-token-1"]
    assert stranger.attendee_id not in by_attendee
    assert [t for b in (twin_a, twin_b) for t in by_attendee.get(b.attendee_id, [])] == ["twin-token-1"]
    assert len(by_attendee[twice.attendee_id]) == 1
    assert opted_out.attendee_id not in by_attendee and unconfirmed.attendee_id not in by_attendee
    assert by_attendee[changer.attendee_id] == ["change-me-2"]
    in_stage = sum(1 for row in rows if row["event_id"] == stage.event_id)
    assert in_stage == len(eligible) + 2 + 1 + 1 + 1  # + over_quota, repeating, a twin, twice, the blocker
    board = (await stage.board()).json()
    assert board["totalVotes"] == in_stage
    standings = {s["name"]: s["votes"] for s in (await changing.board()).json()["standings"]}
    assert standings == {"Owls": 0, "Foxes": 1, "Bears": 0}


async def _stage_with_access(client: AsyncClient, runtime: Runtime, admin: Actor, access: str, require: bool) -> Stage:
    rounds = [{"number": 1, "name": "Heats"}]
    body = event_body(accessType=access, voteConfig={"rounds": rounds, "requireConfirmation": require})
    created = await client.post("/events", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    stage = Stage(client, runtime, admin, created.json()["id"])
    invited = (
        await client.post(f"/events/{stage.event_id}/artists", json={"name": "Owls"}, headers=admin.headers)
    ).json()
    stage.artists["Owls"] = invited["artistId"]
    await client.post(f"/events/{stage.event_id}/artists/{invited['artistId']}/accept", headers=admin.headers)
    for action in ("/publish", "/start", "/rounds/1/open"):
        await stage.admin_post(action)
    return stage


async def test_the_batch_lets_vote_exactly_whom_ensure_may_vote_lets_vote(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    """Every access type, with and without required confirmation, every kind of attendee: the batch
    statement's join inserts a vote exactly when the rule of the attendees domain says yes."""
    writer: VoteWriter = app.state.vote_writer
    cases: list[tuple[str, bool, Attendee, bool, PendingVote]] = []
    for access, require in itertools.product(("public", "private", "hybrid"), (True, False)):
        stage = await _stage_with_access(client, runtime, admin, access, require)
        async with unit_of_work(runtime.sessionmaker) as session:
            event = await events_service.get_event_unchecked(session=session, event_id=stage.event_id)
            assert event is not None
            config = events_service.vote_config_of(event)
            rule = attendees_service.ballot_rule(event=event, config=config)
            flags = itertools.product((False, True), repeat=4)
            attendees = [
                Attendee(
                    event_id=stage.event_id,
                    phone_number=f"+1202{next(_phones):07d}",
                    pre_registered=pre_registered,
                    confirmed_at=utcnow() if confirmed else None,
                    opted_out=opted_out,
                    erased_at=utcnow() if erased else None,
                )
                for pre_registered, confirmed, opted_out, erased in flags
            ]
            session.add_all(attendees)
            await session.flush()
        for attendee in attendees:
            try:
                attendees_service.ensure_may_vote(attendee=attendee, event=event, config=config)
                allowed = True
            except ProblemError:
                allowed = False
            vote = PendingVote(
                attendee_id=attendee.id,
                event_id=stage.event_id,
                artist_id=stage.artists["Owls"],
                round=1,
                token=f"rule-{attendee.id}",
                channel="web",
                quota=1,
                registered_only=rule.registered_only,
                confirm_registered=rule.confirm_registered,
                confirm_walk_in=rule.confirm_walk_in,
                created_at=utcnow(),
            )
            cases.append((access, require, attendee, allowed, vote))
    futures = [writer.submit(vote) for *_, vote in cases]
    results = await asyncio.gather(*(f for f in futures if f is not None))
    assert len(results) == len(cases) == 96
    assert any(allowed for *_, allowed, _ in cases) and not all(allowed for *_, allowed, _ in cases)
    for (access, require, attendee, allowed, _), vote_id in zip(cases, results, strict=True):
        what = (access, require, attendee.pre_registered, attendee.confirmed_at is not None, attendee.opted_out)
        assert (vote_id is not None) == allowed, (*what, attendee.erased_at is not None)


SIZES: list[int] = []


@pytest.fixture
async def quiet_writer(settings: Settings, runtime: Runtime) -> AsyncIterator[VoteWriter]:
    """A writer of the test's own, whose commits are handed on to nobody; it records its batch sizes."""
    SIZES.clear()
    writer = VoteWriter(
        database_url=settings.database_url.get_secret_value(),
        connections=1,
        max_batch=8,
        on_commit=lambda committed: None,
        on_batch=lambda size, _seconds: SIZES.append(size),
    )
    await writer.start()
    yield writer
    await writer.stop()


async def test_a_batch_holds_at_most_one_vote_per_attendee_and_max_batch_votes(
    quiet_writer: VoteWriter, client: AsyncClient, runtime: Runtime, admin: Actor, settings: Settings
) -> None:
    stage = await build_stage(client, runtime, admin, votesPerRound=3)
    ballots = [await stage.ballot() for _ in range(20)]
    now = utcnow()

    def pending(attendee_id: int, token: str) -> PendingVote:
        return PendingVote(
            attendee_id=attendee_id,
            event_id=stage.event_id,
            artist_id=stage.artists["Owls"],
            round=1,
            token=token,
            channel="web",
            quota=3,
            registered_only=False,
            confirm_registered=True,
            confirm_walk_in=True,
            created_at=now + dt.timedelta(microseconds=len(token)),
        )

    # three votes of one attendee: each batch takes one, so each finds the slot the last one left
    same = [quiet_writer.submit(pending(ballots[0].attendee_id, f"same-{i}")) for i in range(4)]
    others = [quiet_writer.submit(pending(b.attendee_id, f"other-{b.attendee_id}")) for b in ballots[1:]]
    results = await asyncio.gather(*(f for f in [*same, *others] if f is not None))
    assert len(results) == 4 + 19
    assert [r is not None for r in results[:4]] == [True, True, True, False]  # the quota is 3
    assert all(r is not None for r in results[4:])
    assert max(SIZES) == 8 and sum(SIZES) == 4 + 19
    connection = await _connect(settings)
    try:
        slots = await connection.fetch(
            "SELECT slot FROM votes WHERE attendee_id = $1 ORDER BY slot", ballots[0].attendee_id
        )
        assert [row["slot"] for row in slots] == [1, 2, 3]
        assert await connection.fetchval("SELECT count(*) FROM votes WHERE event_id = $1", stage.event_id) == 3 + 19
    finally:
        await connection.close()
