"""Redis down: the auth paths answer 503 problem+json with Retry-After (never 500), /ready says so, and the
app serves again once Redis is back, without a restart. A private Redis of the test's own is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response

from stagevote.app import create_app
from stagevote.config import ConnectionURL, Settings
from tests.attendees.conftest import joined
from tests.conftest import PASSWORD, Actors
from tests.factories import Stage, build_stage, make_event, new_phone
from tests.faults.conftest import PrivateRedis, redis_of_our_own
from tests.http import ok, problem


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with redis_of_our_own() as server:
        yield server


@pytest.fixture
async def http(settings: Settings, private_redis: PrivateRedis) -> AsyncIterator[AsyncClient]:
    """The shared test database, with Redis the private one (on SQLite too: the embedded default may use Redis)."""
    application = create_app(settings.model_copy(update={"redis_url": ConnectionURL(private_redis.url)}))
    async with LifespanManager(application, shutdown_timeout=30):
        transport = ASGITransport(app=application, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = application  # type: ignore[attr-defined]
            yield client


def unavailable(r: Response) -> None:
    body = problem(r, 503)
    assert body["type"] == "urn:stagevote:problem:unavailable"
    assert int(r.headers["retry-after"]) >= 1


async def test_with_redis_down_auth_paths_are_503_and_come_back_with_it(
    http: AsyncClient, private_redis: PrivateRedis
) -> None:
    runtime = http.app.state.runtime  # type: ignore[attr-defined]
    actors = Actors(runtime)
    admin = await actors.make("admin")
    fan = await actors.make("fan")
    event = await make_event(http, admin)
    attendee_id, _ = await joined(http, runtime, event["id"], new_phone())
    ok(await http.get("/auth/profile", headers=fan.headers))
    assert (await http.get("/ready")).status_code == 200

    private_redis.stop()
    unavailable(await http.post("/auth/login", json={"email": fan.email, "password": PASSWORD}))
    unavailable(await http.get("/auth/profile", headers=fan.headers))  # the revoked-token check needs Redis
    unavailable(await http.post("/auth/signup", json={"email": "new@example.com", "password": "long password 1"}))
    unavailable(await http.post(f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}))
    unavailable(await http.post(f"/attendees/{attendee_id}/confirm", json={"code": "123456"}))
    ready = await http.get("/ready")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "checks": {"database": "ok", "redis": "unavailable"}}

    private_redis.start()  # the same port: the app reconnects by itself
    async with asyncio.timeout(30):
        while (await http.get("/ready")).status_code != 200:  # noqa: ASYNC110  (reconnecting)
            await asyncio.sleep(0.1)
    ok(await http.post("/auth/login", json={"email": fan.email, "password": PASSWORD}))
    ok(await http.get("/auth/profile", headers=fan.headers))


async def settle_board(stage: Stage, headers: dict[str, str], expected: dict[str, int]) -> None:
    async with asyncio.timeout(15):
        while True:
            board = ok(await stage.board(headers=headers))
            if {s["name"]: s["votes"] for s in board["standings"]} == expected:
                return
            await asyncio.sleep(0.2)


@pytest.mark.postgresql
async def test_with_redis_down_votes_count_and_the_board_is_exact_once_it_is_back(
    http: AsyncClient, private_redis: PrivateRedis
) -> None:
    """Redis goes down mid-voting and comes back with its data (a restart from its snapshot): every
    vote meanwhile answers 201, /ready says 503, the board is read from the votes table; once Redis is
    back the reconciler repairs the tally it kept (short by the votes it missed), without a restart."""
    runtime = http.app.state.runtime  # type: ignore[attr-defined]
    admin = await Actors(runtime).make("admin")
    stage = await build_stage(http, runtime, admin)
    ballots = [await stage.ballot() for _ in range(9)]
    artists = ("Owls", "Foxes", "Bears")
    for ballot in ballots[:3]:
        assert (await stage.vote(ballot, "Owls")).status_code == 201
    assert ok(await stage.board(headers=admin.headers))["totalVotes"] == 3  # the tally is in Redis
    private_redis.stop(keep_data=True)  # what it restarts with: the tally at 3
    for i, ballot in enumerate(ballots[3:]):
        assert (await stage.vote(ballot, artists[i % 3])).status_code == 201
    ready = await http.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
    assert ok(await stage.board())["totalVotes"] == 9  # from the votes table (an admin's token needs Redis)
    await asyncio.sleep(1.5)  # the reconciler's probe has seen Redis down

    private_redis.start()  # from its snapshot: the tally it kept is short by the six votes it missed
    await settle_board(stage, admin.headers, {"Owls": 5, "Foxes": 2, "Bears": 2})
    assert (await http.get("/ready")).status_code == 200


@pytest.mark.postgresql
async def test_with_redis_hung_a_vote_does_not_wait_for_it(http: AsyncClient, private_redis: PrivateRedis) -> None:
    """Redis stops answering (SIGSTOP: connections hang): a vote still answers 201 (the Redis calls give
    up after 0.25 s), /ready says 503, and the board is exact once Redis answers again."""
    runtime = http.app.state.runtime  # type: ignore[attr-defined]
    admin = await Actors(runtime).make("admin")
    stage = await build_stage(http, runtime, admin)
    ballots = [await stage.ballot() for _ in range(4)]
    assert (await stage.vote(ballots[0], "Owls")).status_code == 201
    assert ok(await stage.board(headers=admin.headers))["totalVotes"] == 1
    private_redis.pause()
    try:
        # a liveness bound, not a speed limit: a vote that awaited the hung Redis would never answer
        async with asyncio.timeout(20):
            for ballot in ballots[1:]:
                assert (await stage.vote(ballot, "Foxes")).status_code == 201
        ready = await http.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
        assert ok(await stage.board())["totalVotes"] == 4  # the public board, from the votes table
    finally:
        private_redis.resume()
    await settle_board(stage, admin.headers, {"Owls": 1, "Foxes": 3, "Bears": 0})
