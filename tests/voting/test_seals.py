"""Round seals: a round is sealed when it closes (by hand, by the clock, with the event), once; the seal is
public, 409 while the round is open or pending, 404 for what does not exist."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg
import pytest
import time_machine
from httpx import AsyncClient

from stagevote.config import Settings
from stagevote.core import merkle
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.events.clock import RoundClock
from stagevote.voting import seals
from stagevote.voting.context import _key as context_key
from stagevote.voting.writer import asyncpg_dsn
from tests.conftest import Actor
from tests.factories import Stage, build_stage
from tests.http import ok, problem
from tests.voting.test_timed_rounds import round_status, timed_stage


async def asyncpg_connect(settings: Settings) -> asyncpg.Connection:
    """A connection of the test's own, beside the app's (the vote writer's DSN)."""
    return await asyncpg.connect(asyncpg_dsn(settings.database_url.get_secret_value()))


async def until_waiting_for_a_lock(connection: asyncpg.Connection, task: asyncio.Task[Any]) -> None:
    """Until a session of this database waits for a lock (the task's, as nothing else runs here), or the task ends."""
    for _ in range(1000):
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting or task.done():
            return
        await asyncio.sleep(0.01)


async def seal_of(stage: Stage, number: int) -> dict[str, object]:
    return ok(await stage.client.get(f"/events/{stage.event_id}/rounds/{number}/seal"))  # type: ignore[no-any-return]


async def test_a_round_is_sealed_when_it_closes_and_not_before(stage: Stage) -> None:
    receipts = [ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"] for _ in range(3)]
    open_ = problem(await stage.client.get(f"/events/{stage.event_id}/rounds/1/seal"), 409)
    assert open_["type"].endswith("round-not-sealed")
    problem(await stage.client.get(f"/events/{stage.event_id}/rounds/2/seal"), 409)  # pending
    problem(await stage.client.get(f"/events/{stage.event_id}/rounds/9/seal"), 404)
    problem(await stage.client.get("/events/999999/rounds/1/seal"), 404)

    await stage.admin_post("/rounds/1/close")
    seal = await seal_of(stage, 1)
    assert set(seal) == {"eventId", "round", "root", "votes", "sealedAt"}
    assert (seal["eventId"], seal["round"], seal["votes"]) == (stage.event_id, 1, 3)
    assert seal["root"] == merkle.root_of(receipts)
    # a round without a vote is sealed too: the root of nothing
    await stage.admin_post("/rounds/2/open")
    await stage.admin_post("/rounds/2/close")
    empty = await seal_of(stage, 2)
    assert (empty["votes"], empty["root"]) == (0, merkle.EMPTY_ROOT)
    assert await seal_of(stage, 1) == seal  # sealed once: later closes leave it alone


async def test_closing_the_event_seals_its_open_round(stage: Stage) -> None:
    receipt = ok(await stage.vote(await stage.ballot(), "Foxes"), 201)["receipt"]
    await stage.admin_post("/close")
    seal = await seal_of(stage, 1)
    assert seal["votes"] == 1 and seal["root"] == merkle.root_of([receipt])
    problem(await stage.client.get(f"/events/{stage.event_id}/rounds/2/seal"), 409)  # never opened


async def test_the_clock_seals_a_timed_round(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=4)
    clock = RoundClock(runtime)
    await clock.tick()
    receipt = ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"]
    problem(await client.get(f"/events/{stage.event_id}/rounds/1/seal"), 409)
    for _ in range(60):  # until the round's time is up
        await asyncio.sleep(0.1)
        await clock.tick()
        if (await client.get(f"/events/{stage.event_id}/rounds/1/seal")).status_code == 200:
            break
    seal = await seal_of(stage, 1)
    assert seal["votes"] == 1 and seal["root"] == merkle.root_of([receipt])


async def test_closing_the_event_seals_a_timed_round_the_clock_has_not_opened_yet(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=600)  # open by its time, pending in the table
    receipt = ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"]
    await stage.admin_post("/close")
    seal = await seal_of(stage, 1)
    assert seal["votes"] == 1 and seal["root"] == merkle.root_of([receipt])


@pytest.fixture(params=["by hand", "timed, closed by hand before its time"])
async def any_stage(request: pytest.FixtureRequest, client: AsyncClient, runtime: Runtime, admin: Actor) -> Stage:
    if request.param == "by hand":
        return await build_stage(client, runtime, admin)
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=600)
    await RoundClock(runtime).tick()  # open in the table too, so that it can be closed by hand
    stage.artists["Foxes"] = stage.artists["Owls"]
    return stage


async def test_a_vote_on_a_copy_that_missed_the_close_is_refused_and_the_seal_holds(
    any_stage: Stage, runtime: Runtime
) -> None:
    """Another instance's copy of the event says round 1 is open for a moment after the close: the table decides."""
    stage = any_stage
    receipt = ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"]
    late = await stage.ballot()
    stale = runtime.memo.get(context_key(stage.event_id))
    assert stale is not None
    await stage.admin_post("/rounds/1/close")
    runtime.memo.put(context_key(stage.event_id), stale)

    refused = problem(await stage.vote(late, "Foxes"), 409)
    assert refused["type"].endswith("round-not-open")
    seal = await seal_of(stage, 1)
    assert seal["votes"] == 1 and seal["root"] == merkle.root_of([receipt])
    async with unit_of_work(runtime.sessionmaker) as session:
        report = await seals.verify_event(
            session=session, secret_key=runtime.secret_key.get_secret_value(), event_id=stage.event_id
        )
    assert report.holds, [check.problems for check in report.seals]
    counted = ok(await stage.board(1))
    assert sum(s["votes"] for s in counted["standings"]) == 1


@pytest.mark.postgresql
async def test_a_vote_during_a_close_waits_for_it_and_is_refused(stage: Stage, settings: Settings) -> None:
    """The close's transaction holds the round row: a vote that comes meanwhile (by the group commit here)
    waits on it, then finds the round closed; it never lands beside a seal that does not hold it."""
    ok(await stage.vote(await stage.ballot(), "Owls"), 201)  # the copy of the event, loaded while open
    late = await stage.ballot()
    closing = await asyncpg_connect(settings)
    try:
        transaction = closing.transaction()
        await transaction.start()
        await closing.execute(
            "UPDATE rounds SET status = 'closed', closed_at = now() WHERE event_id = $1 AND number = 1", stage.event_id
        )
        vote = asyncio.create_task(stage.vote(late, "Foxes"))
        await until_waiting_for_a_lock(closing, vote)
        assert not vote.done(), "the vote did not wait for the round's close"
        await transaction.commit()
        assert problem(await vote, 409)["type"].endswith("round-not-open")
        count = await closing.fetchval("SELECT count(*) FROM votes WHERE event_id = $1", stage.event_id)
        assert count == 1
    finally:
        await closing.close()


@pytest.mark.postgresql
async def test_the_clock_closes_a_round_that_a_vote_holds_once_the_vote_commits(
    client: AsyncClient, runtime: Runtime, admin: Actor, settings: Settings
) -> None:
    """Under steady voting some vote always holds the round's row: the clock waits for it, never skips it."""
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=30)
    clock = RoundClock(runtime)
    await clock.tick()
    voting = await asyncpg_connect(settings)
    try:
        transaction = voting.transaction()
        await transaction.start()
        await voting.execute(
            "SELECT 1 FROM rounds WHERE event_id = $1 AND number = 1 FOR SHARE", stage.event_id
        )  # as a vote's insert holds it until its commit
        with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31), tick=True):
            tick = asyncio.create_task(clock.tick())
            await until_waiting_for_a_lock(voting, tick)
            await transaction.commit()
            await tick
            assert await round_status(stage) == "closed"
        assert (await seal_of(stage, 1))["votes"] == 0
    finally:
        await voting.close()
