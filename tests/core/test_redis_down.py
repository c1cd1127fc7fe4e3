"""Redis down: the auth paths answer 503 problem+json with Retry-After (never 500), /ready says so, and the
app serves again once Redis is back, without a restart. A private Redis of the test's own is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response

from stagevote.app import create_app
from stagevote.config import Settings
from tests.attendees.conftest import joined
from tests.conftest import PASSWORD, Actors
from tests.factories import make_event, new_phone
from tests.faults.conftest import PrivateRedis, redis_of_our_own
from tests.http import ok, problem


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with redis_of_our_own() as server:
        yield server


@pytest.fixture
async def http(settings: Settings, private_redis: PrivateRedis) -> AsyncIterator[AsyncClient]:
    """The shared test database, with Redis the private one (on SQLite too: the embedded default may use Redis)."""
    application = create_app(settings.model_copy(update={"redis_url": private_redis.url}))
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
