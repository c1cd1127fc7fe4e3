"""The leaderboard: exact standings with shared ranks, visibility rules, and a cache that heals itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import redis.asyncio as redis
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from stagevote.core.tally import Change
from tests.conftest import Actor
from tests.factories import Stage, build_stage, event_body


async def test_standings_rank_and_ties_share_a_rank(stage: Stage) -> None:
    for artist in ("Owls", "Owls", "Foxes", "Foxes", "Bears"):
        assert (await stage.vote(await stage.ballot(), artist)).status_code == 201
    board = (await stage.board()).json()
    assert board["eventId"] == stage.event_id and board["round"] == 1 and board["totalVotes"] == 5
    assert [(s["name"], s["votes"], s["rank"]) for s in board["standings"]] == [
        ("Foxes", 2, 1),
        ("Owls", 2, 1),
        ("Bears", 1, 3),
    ]
    assert board["updatedAt"]


async def test_the_default_round_follows_the_event(stage: Stage) -> None:
    assert (await stage.board()).json()["round"] == 1
    await stage.admin_post("/rounds/1/close")
    assert (await stage.board()).json()["round"] == 1  # the last round that ran
    await stage.admin_post("/rounds/2/open")
    assert (await stage.board()).json()["round"] == 2
    assert (await stage.board(1)).json()["round"] == 1
    assert (await stage.board(9)).status_code == 422


async def test_visibility_after_close_and_hidden(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    after = await build_stage(client, runtime, admin, leaderboardVisibility="after_close")
    assert (await after.board()).status_code == 403
    assert (await after.board(headers=admin.headers)).status_code == 200
    await after.admin_post("/rounds/1/close")
    assert (await after.board(1)).status_code == 200

    hidden = await build_stage(client, runtime, admin, leaderboardVisibility="hidden")
    assert (await hidden.board()).status_code == 403
    await hidden.admin_post("/close")
    assert (await hidden.board()).status_code == 403
    assert (await hidden.board(headers=admin.headers)).status_code == 200


async def test_a_draft_has_no_public_leaderboard(client: AsyncClient, admin: Actor) -> None:
    event = (await client.post("/events", json=event_body(), headers=admin.headers)).json()
    assert (await client.get(f"/events/{event['id']}/leaderboard")).status_code == 404
    assert (await client.get("/events/999999/leaderboard")).status_code == 404


async def test_declining_mid_event_updates_the_line_up_at_once(stage: Stage, client: AsyncClient, admin: Actor) -> None:
    await stage.board()  # warms the vote context cache
    r = await client.post(f"/events/{stage.event_id}/artists/{stage.artists['Bears']}/decline", headers=admin.headers)
    assert r.status_code == 200
    names = [s["name"] for s in (await stage.board()).json()["standings"]]
    assert "Bears" not in names
    assert (await stage.vote(await stage.ballot(), "Bears")).status_code == 422


async def test_a_lost_tally_is_rebuilt_exactly(stage: Stage, runtime: Runtime) -> None:
    for artist in ("Owls", "Foxes", "Owls"):
        await stage.vote(await stage.ballot(), artist)
    assert (await stage.board()).json()["totalVotes"] == 3
    await runtime.tally.drop(f"leaderboard:{stage.event_id}:1")
    await stage.vote(await stage.ballot(), "Bears")  # lands while the tally is missing
    board = (await stage.board()).json()
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 2, "Foxes": 1, "Bears": 1}
    await stage.vote(await stage.ballot(), "Bears")
    assert (await stage.board()).json()["totalVotes"] == 5


@pytest.mark.postgresql
async def test_flushing_redis_mid_voting_keeps_the_next_read_exact(stage: Stage, runtime: Runtime) -> None:
    assert runtime.settings.redis_url is not None
    client = redis.Redis.from_url(runtime.settings.redis_url.get_secret_value())
    for i in range(12):
        await stage.vote(await stage.ballot(), ("Owls", "Foxes", "Bears")[i % 3])
        if i in (4, 9):
            assert (await stage.board()).json()["totalVotes"] == i + 1  # the tally lives in Redis now
            keys = [k async for k in client.scan_iter(match=f"{runtime.settings.redis_key_prefix}*")]
            assert any(b"tally:leaderboard" in k for k in keys)
            await client.delete(*keys)  # as if Redis restarted empty
    await client.aclose()
    board = (await stage.board()).json()
    assert board["totalVotes"] == 12
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 4, "Foxes": 4, "Bears": 4}


async def test_a_rebuild_between_a_commit_and_its_increment_counts_the_vote_once(
    stage: Stage, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst interleaving, made to happen: the tally is rebuilt after the vote committed (so the
    rebuild counts it) and before the vote's own increment reaches the tally."""
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    assert (await stage.board()).json()["totalVotes"] == 1
    real_increment = runtime.tally.increment

    async def rebuild_first(key: str, changes: dict[str, int], *, marker: str) -> bool:
        await runtime.tally.drop(key)
        # the rebuild sees the committed vote (read as an admin: the public's one-second copy would not rebuild)
        assert (await stage.board(headers=stage.admin.headers)).json()["totalVotes"] == 2
        return await real_increment(key, changes, marker=marker)

    monkeypatch.setattr(runtime.tally, "increment", rebuild_first)
    assert (await stage.vote(await stage.ballot(), "Foxes")).status_code == 201
    monkeypatch.setattr(runtime.tally, "increment", real_increment)
    board = (await stage.board()).json()
    assert board["totalVotes"] == 2
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 1, "Foxes": 1, "Bears": 0}


@pytest.mark.postgresql
async def test_a_rebuild_between_a_batch_commit_and_its_increments_counts_the_votes_once(
    stage: Stage, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same interleaving on the group commit's path: the rebuild (a seed with the counted markers the
    database joined) lands between the batch's commit and its one tally call."""
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    assert (await stage.board()).json()["totalVotes"] == 1
    real_increment_many = runtime.tally.increment_many
    rebuilt: list[int] = []
    done = asyncio.Event()

    async def rebuild_first(changes: Sequence[Change]) -> None:
        for key in {key for key, _, _ in changes}:
            await runtime.tally.drop(key)
        rebuilt.append((await stage.board(headers=stage.admin.headers)).json()["totalVotes"])
        await real_increment_many(changes)
        done.set()

    monkeypatch.setattr(runtime.tally, "increment_many", rebuild_first)
    assert (await stage.vote(await stage.ballot(), "Foxes")).status_code == 201
    # the rebuild's read first waits (up to a second) for this process's votes under way: this one
    async with asyncio.timeout(10):
        await done.wait()  # and the batch's increments landed after it
    monkeypatch.setattr(runtime.tally, "increment_many", real_increment_many)
    assert rebuilt == [2]  # the rebuild counted the committed vote
    board = (await stage.board()).json()
    assert board["totalVotes"] == 2
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 1, "Foxes": 1, "Bears": 0}


@pytest.mark.postgresql
async def test_the_tally_stays_exact_when_it_is_rebuilt_during_a_burst(stage: Stage, runtime: Runtime) -> None:
    ballots = [await stage.ballot() for _ in range(60)]
    key = f"leaderboard:{stage.event_id}:1"

    async def rebuild_again_and_again() -> None:
        for _ in range(15):
            await runtime.tally.drop(key)
            await stage.board(headers=stage.admin.headers)  # seeds from the votes table while votes are landing
            await asyncio.sleep(0.005)

    artists = ("Owls", "Foxes", "Bears")
    votes = asyncio.gather(*(stage.vote(b, artists[i % 3]) for i, b in enumerate(ballots)))
    answers, _ = await asyncio.gather(votes, rebuild_again_and_again())
    assert all(r.status_code == 201 for r in answers)
    await asyncio.sleep(0.2)  # every after-commit increment has landed
    board = (await stage.board()).json()
    assert board["totalVotes"] == 60
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 20, "Foxes": 20, "Bears": 20}
