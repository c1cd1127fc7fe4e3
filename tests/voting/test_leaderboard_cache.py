"""GET /leaderboard for polling phones: a short public copy with an ETag, never an admin's view."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import event

from stagevote.core.runtime import Runtime
from stagevote.voting import board_cache
from tests.conftest import Actor
from tests.factories import Stage, build_stage


async def test_the_public_board_is_cacheable_and_answers_304_while_the_standings_stand(stage: Stage) -> None:
    first = await stage.board()
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=1"
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    again = await stage.client.get(f"/events/{stage.event_id}/leaderboard", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=1"
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    moved = await stage.client.get(f"/events/{stage.event_id}/leaderboard", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.json()["totalVotes"] == 1
    assert moved.headers["etag"] != etag


async def test_polls_are_served_from_the_copy_until_a_vote_lands(
    stage: Stage, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board_cache, "TTL_SECONDS", 60.0)
    assert (await stage.board()).json()["totalVotes"] == 0
    # the tally moves behind the copy's back (nothing announced): polls keep the copy
    await runtime.tally.increment(f"leaderboard:{stage.event_id}:1", {str(stage.artists["Bears"]): 5}, marker="x:1")
    assert (await stage.board()).json()["totalVotes"] == 0
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201  # a vote drops the copy
    assert (await stage.board()).json()["totalVotes"] == 6


async def test_an_admins_view_is_never_publicly_cached(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    hidden = await build_stage(client, runtime, admin, leaderboardVisibility="hidden")
    seen = await hidden.board(headers=admin.headers)
    assert seen.status_code == 200
    assert seen.headers["cache-control"] == "private, no-store" and "etag" not in seen.headers
    refused = await hidden.board()  # not served from the admin's copy
    assert refused.status_code == 403 and "public" not in refused.headers.get("cache-control", "")


async def test_polls_served_from_the_copy_take_no_database_connection(stage: Stage, runtime: Runtime) -> None:
    assert (await stage.board()).status_code == 200
    checkouts = 0

    def on_checkout(*_: object) -> None:
        nonlocal checkouts
        checkouts += 1

    pool = runtime.engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        for _ in range(20):
            assert (await stage.board()).status_code == 200
    finally:
        event.remove(pool, "checkout", on_checkout)
    assert checkouts == 0
