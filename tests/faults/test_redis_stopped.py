"""Redis goes away while fans vote: votes are still taken (the database is the record), /ready says Redis is down,
and once Redis is back the leaderboard equals the votes table again, with no restart of the server.

Three ways: a Redis stopped that comes back empty (no persistence: the tally is seeded again from the database), one
that comes back with the data it saved at shutdown (a Redis with persistence: its tally misses every vote taken
while it was away, and must be put right), and one that hangs (SIGSTOP: connections open, no answer) and resumes."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.factories import Stage
from tests.faults.conftest import (
    PrivateRedis,
    Server,
    VoteLoad,
    ballots,
    database_rows,
    live_stage,
    stored_tokens,
    until,
)
from tests.proof.figures import Figures

pytestmark = [pytest.mark.postgresql, pytest.mark.proof]


@pytest.fixture
def server_environment() -> dict[str, str]:
    """The tally is checked against the votes table every second (the default is slower; a setting the server
    ignores when it has no reconciler)."""
    return {"STAGEVOTE_TALLY_RECONCILE_SECONDS": "1"}


async def _board(api: httpx.AsyncClient, stage: Stage) -> dict[int, int]:
    r = await api.get(f"/events/{stage.event_id}/leaderboard", params={"round": 1})
    assert r.status_code == 200, r.text
    return {s["artistId"]: s["votes"] for s in r.json()["standings"] if s["votes"]}


async def _counted(url: str, stage: Stage) -> dict[int, int]:
    query = "SELECT artist_id, count(*) AS n FROM votes WHERE event_id = $1 AND round = 1 GROUP BY artist_id"
    return {r["artist_id"]: r["n"] for r in await database_rows(url, query, stage.event_id)}


def _away(redis_server: PrivateRedis, how: str) -> None:
    if how == "hangs":
        redis_server.pause()
    else:
        redis_server.stop(keep_data=how == "comes-back-with-its-data")


def _back(redis_server: PrivateRedis, how: str) -> None:
    if how == "hangs":
        redis_server.resume()
    else:
        redis_server.start()  # on the same port


@pytest.mark.parametrize("how", ["comes-back-empty", "comes-back-with-its-data", "hangs"])
async def test_votes_are_taken_while_redis_is_away_and_the_leaderboard_is_exact_once_it_is_back(
    server: Server,
    runtime_of: Runtime,
    fault_settings: Settings,
    private_redis: PrivateRedis,
    figures: Figures,
    how: str,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        stage = await live_stage(api, runtime_of)
        load = VoteLoad(server.url, stage, await ballots(runtime_of, stage.event_id, 300))
        async with load.running():
            await load.acknowledge(100, "before Redis stops")
            assert sum((await _board(api, stage)).values()) >= 100  # the tally is in Redis
            _away(private_redis, how)
            figures.add("faults injected")
            await load.acknowledge(100, "while Redis is away")
            ready = await api.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "ok", "redis": "unavailable"}

            _back(private_redis, how)  # the server is not restarted
            await load.acknowledge(50, "after Redis is back")

        stored = await stored_tokens(fault_settings.database_url.get_secret_value(), stage.event_id)
        lost = load.acknowledged - stored
        figures.add("acknowledged votes lost", len(lost))
        assert lost == set(), f"{len(lost)} of {len(load.acknowledged)} acknowledged votes lost"
        assert set(load.answers) <= {200, 201}, load.seen()
        assert (await api.get("/ready")).status_code == 200

        counted = await _counted(fault_settings.database_url.get_secret_value(), stage)
        assert sum(counted.values()) == len(load.acknowledged)
        board: dict[int, int] = {}

        async def exact() -> bool:
            nonlocal board
            board = await _board(api, stage)
            return board == counted

        with contextlib.suppress(AssertionError):  # up to 30 s for the tally to be put right; then say how far off
            await until(exact, "the leaderboard equal to the votes table", every=0.2)
        assert board == counted, f"the leaderboard says {board}, the votes table {counted}"
    figures.add("faults survived")
