"""The leaderboard cannot stay short: a vote that lands while its tally is seeded counts, and a lost
increment is repaired by the reconciler (periodically, and as soon as the tally's store answers again),
without fighting the votes that land during the repair. Each race is made to happen, not hoped for."""

from __future__ import annotations

import time

import pytest
import redis.exceptions
from fastapi import FastAPI

from stagevote.core.runtime import Runtime
from stagevote.core.tally import Window
from stagevote.voting.reconciler import TallyReconciler
from tests.factories import Stage


def counts(board: dict[str, object]) -> dict[str, int]:
    return {s["name"]: s["votes"] for s in board["standings"]}  # type: ignore[attr-defined]


@pytest.fixture
async def reconciler(app: FastAPI) -> TallyReconciler:
    """The app's reconciler, its background loop stopped: the test ticks it."""
    value: TallyReconciler = app.state.reconciler
    await value.stop()
    return value


async def admin_board(stage: Stage) -> dict[str, object]:
    """The standings read as an admin: no one-second copy, the tally itself."""
    r = await stage.board(headers=stage.admin.headers)
    assert r.status_code == 200, r.text
    board: dict[str, object] = r.json()
    return board


async def lose_the_next_increment(stage: Stage, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, artist: str) -> None:
    """A vote that commits and answers 201, whose tally increment fails (Redis went away for a moment)."""

    async def fail(*_: object, **__: object) -> bool:
        raise redis.exceptions.ConnectionError("Redis went away")

    with monkeypatch.context() as patch:
        patch.setattr(runtime.tally, "increment", fail)
        patch.setattr(runtime.tally, "increment_many", fail)
        assert (await stage.vote(await stage.ballot(), artist)).status_code == 201
        await runtime.deferred.settle(within=2)


@pytest.mark.postgresql
async def test_a_vote_committed_after_the_seed_counted_still_counts(
    stage: Stage, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed race, made to happen: the seed has counted, then a vote commits and its increment
    reaches the missing key before the seed is written. It used to be dropped for good.
    (PostgreSQL: on SQLite the seeding read holds the write lock, so no vote can commit meanwhile.)"""
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    assert (await admin_board(stage))["totalVotes"] == 1
    await runtime.tally.drop(f"leaderboard:{stage.event_id}:1")
    real_seed = runtime.tally.seed
    landed: list[int] = []

    async def vote_first(window: Window, counted: dict[str, int], *, counted_markers: list[str]) -> None:
        if not landed:
            assert sum(counted.values()) == 1  # the count is taken: the next vote is not in it
            landed.append((await stage.vote(await stage.ballot(), "Foxes")).status_code)
            await runtime.deferred.settle(within=2)  # its increment has reached the (missing) key
        await real_seed(window, counted, counted_markers=counted_markers)

    monkeypatch.setattr(runtime.tally, "seed", vote_first)
    assert (await admin_board(stage))["totalVotes"] == 1  # what the seed counted
    monkeypatch.setattr(runtime.tally, "seed", real_seed)
    assert landed == [201]
    board = await admin_board(stage)
    assert board["totalVotes"] == 2
    assert counts(board) == {"Owls": 1, "Foxes": 1, "Bears": 0}


async def test_a_lost_increment_is_repaired_by_the_periodic_pass(
    stage: Stage, runtime: Runtime, reconciler: TallyReconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    for artist in ("Owls", "Foxes"):
        assert (await stage.vote(await stage.ballot(), artist)).status_code == 201
    assert (await admin_board(stage))["totalVotes"] == 2
    await lose_the_next_increment(stage, runtime, monkeypatch, "Bears")
    assert (await admin_board(stage))["totalVotes"] == 2  # short, and nothing else would mend it
    assert await reconciler.reconcile(since=time.time() - 60) == 1
    board = await admin_board(stage)
    assert board["totalVotes"] == 3
    assert counts(board) == {"Owls": 1, "Foxes": 1, "Bears": 1}
    assert await reconciler.reconcile(since=time.time() - 60) == 0  # exact now: nothing to write


async def test_a_repair_keeps_the_votes_that_land_during_it(
    stage: Stage, runtime: Runtime, reconciler: TallyReconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repair has counted; then a vote commits and its increment lands on the tally before the
    repair is written. The repair neither loses it nor counts it twice."""
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    assert (await admin_board(stage))["totalVotes"] == 1
    await lose_the_next_increment(stage, runtime, monkeypatch, "Owls")
    real_repair = runtime.tally.repair

    async def vote_first(window: Window, counted: dict[str, int], *, counted_markers: list[str]) -> int:
        assert sum(counted.values()) == 2
        assert (await stage.vote(await stage.ballot(), "Foxes")).status_code == 201
        await runtime.deferred.settle(within=2)  # its increment has landed, live
        return await real_repair(window, counted, counted_markers=counted_markers)

    monkeypatch.setattr(runtime.tally, "repair", vote_first)
    assert await reconciler.reconcile(since=time.time() - 60) == 1  # Owls was one short
    monkeypatch.undo()
    board = await admin_board(stage)
    assert counts(board) == {"Owls": 2, "Foxes": 1, "Bears": 0}


async def test_the_store_answering_again_starts_a_pass_at_once(
    stage: Stage, runtime: Runtime, reconciler: TallyReconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    assert (await admin_board(stage))["totalVotes"] == 1
    await reconciler.tick()  # whatever periodic pass was due has run: the next is 30 s away

    async def down() -> None:
        raise redis.exceptions.ConnectionError("Redis went away")

    with monkeypatch.context() as patch:
        patch.setattr(runtime.tally, "ping", down)
        assert await reconciler.tick() == 0  # down: noted
    await lose_the_next_increment(stage, runtime, monkeypatch, "Bears")
    assert (await admin_board(stage))["totalVotes"] == 1
    assert await reconciler.tick() == 1  # back: repaired now, not at the next periodic pass
    assert counts(await admin_board(stage)) == {"Owls": 1, "Foxes": 0, "Bears": 1}
    assert await reconciler.tick() == 0


async def test_one_process_of_the_deployment_makes_each_periodic_pass(
    stage: Stage, runtime: Runtime, reconciler: TallyReconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes (reconcilers sharing the cache, as processes share Redis) tick in the same period:
    one recounts, the other leaves it; the next period is claimed afresh."""
    other = TallyReconciler(runtime, every_seconds=30)
    passes: list[str] = []
    for name, process in (("first", reconciler), ("second", other)):

        async def record(*, since: float, name: str = name) -> int:
            passes.append(name)
            return 0

        monkeypatch.setattr(process, "reconcile", record)
    clock = [(time.time() // 30 + 10) * 30 + 5]  # 5 s into a period well after every tick so far
    monkeypatch.setattr(time, "time", lambda: clock[0])
    await reconciler.tick()
    await other.tick()
    assert passes == ["first"]
    clock[0] += 30  # the next period: whoever ticks first makes it
    await other.tick()
    await reconciler.tick()
    assert passes == ["first", "second"]
