"""Operations endpoints: liveness, readiness of each dependency, Prometheus metrics, the API schema."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr

from stagevote.app import create_app
from stagevote.config import ConnectionURL, Settings

CLOSED_POSTGRESQL = "postgresql://postgres@127.0.0.1:1/nope"  # port 1 refuses at once
CLOSED_REDIS = "redis://127.0.0.1:1/0"
SECRET = "ops-test-secret-" + "y" * 40


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client on an app of its own, for settings the shared `app` fixture does not have."""
    application = create_app(settings)
    async with LifespanManager(application):
        transport = ASGITransport(app=application, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word: a hung dependency."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


def sample(metrics_text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition text, or None when there is no such sample."""
    for line in metrics_text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_health_answers_ok(client: AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_ready_checks_every_configured_dependency(client: AsyncClient, settings: Settings) -> None:
    r = await client.get("/ready")
    assert r.status_code == 200, r.text
    expected = {"database": "ok"}
    if settings.redis_url:  # the postgresql backend runs with the real Redis
        expected["redis"] = "ok"
    assert r.json() == {"status": "ok", "checks": expected}


async def test_ready_is_503_when_the_database_does_not_answer() -> None:
    async with serving(Settings(database_url=CLOSED_POSTGRESQL, secret_key=SECRET)) as http:
        r = await http.get("/ready")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
        # liveness is about the process, not its dependencies
        assert (await http.get("/health")).status_code == 200


async def test_ready_is_503_when_redis_does_not_answer(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": ConnectionURL(CLOSED_REDIS)})
    async with serving(broken) as http:
        r = await http.get("/ready")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"database": "ok", "redis": "unavailable"}}


async def test_ready_does_not_hang_on_dependencies_that_never_answer() -> None:
    async with silent_server() as db_port, silent_server() as redis_port:
        settings = Settings(
            database_url=f"postgresql://postgres@127.0.0.1:{db_port}/hung",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            secret_key=SECRET,
            ready_timeout_seconds=0.3,
        )
        async with serving(settings) as http:
            async with asyncio.timeout(10):  # without a bound of its own, /ready waits a minute or forever
                r = await http.get("/ready")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"database": "unavailable", "redis": "unavailable"}}


async def test_metrics_count_requests_by_route_template(client: AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/events/987654")).status_code == 404
    assert (await client.get("/no/such/path/31337")).status_code == 404
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert sample(text, "stagevote_http_requests_total", method="GET", route="/health", status="200") == 1
    assert sample(text, "stagevote_http_requests_total", method="GET", route="/events/{event_id}", status="404") == 1
    assert sample(text, "stagevote_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert "987654" not in text  # raw ids would make one series per event
    assert "31337" not in text
    assert sample(text, "stagevote_http_request_duration_seconds_count", method="GET", route="/events/{event_id}") == 1
    # the product families are exposed from the start, before anything has been counted
    for family in ("stagevote_votes", "stagevote_messages", "stagevote_live_connections", "stagevote_logins"):
        assert re.search(rf"^# TYPE {family}(_total)? (counter|gauge)$", text, re.MULTILINE), family


async def test_metrics_label_a_wrong_method_with_the_route_and_unknown_methods_as_other(client: AsyncClient) -> None:
    assert (await client.delete("/health")).status_code == 405
    assert (await client.request("BREW", "/health")).status_code == 405
    text = (await client.get("/metrics")).text
    assert sample(text, "stagevote_http_requests_total", method="DELETE", route="/health", status="405") == 1
    assert sample(text, "stagevote_http_requests_total", method="other", route="/health", status="405") == 1
    assert 'method="BREW"' not in text


async def test_metrics_with_a_token_need_it(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"metrics_token": SecretStr("t0k")})) as http:
        anonymous = await http.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "t0k"})).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": "Bearer t0k"})
        assert ok.status_code == 200
        assert "stagevote_http_requests_total" in ok.text
        # the auth scheme is case-insensitive (RFC 9110)
        assert (await http.get("/metrics", headers={"Authorization": "bearer t0k"})).status_code == 200
        # the other operations endpoints stay open for probes
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/ready")).status_code == 200


async def test_metrics_are_open_without_a_token(client: AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200


async def test_openapi_schema_and_docs(client: AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["info"]["title"] == "stagevote"
    paths = schema["paths"]
    for path in ("/auth/signup", "/auth/login", "/events", "/events/{event_id}", "/health", "/ready", "/metrics"):
        assert path in paths, path
    assert "503" in paths["/ready"]["get"]["responses"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
