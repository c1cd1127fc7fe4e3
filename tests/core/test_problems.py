"""Every error is an RFC 9457 problem, the framework's own and unexpected ones included; X-Request-ID."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from httpx import AsyncClient

from tests.conftest import Actor
from tests.factories import event_body

PROBLEM = "application/problem+json"


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of `r`, after checking what every problem has."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:stagevote:problem:")
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


async def test_unknown_path_is_a_404_problem(client: AsyncClient) -> None:
    body = problem(await client.get("/no/such/thing"), 404)
    assert body["title"] == "Not Found"
    assert "errors" not in body


async def test_wrong_method_is_a_405_problem_with_allow(client: AsyncClient) -> None:
    r = await client.delete("/health")
    body = problem(r, 405)
    assert body["title"] == "Method Not Allowed"
    assert "GET" in r.headers["allow"]


async def test_domain_errors_are_problems_with_their_headers(client: AsyncClient) -> None:
    r = await client.get("/auth/profile")
    problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


async def test_invalid_body_is_a_422_problem_naming_camel_case_fields(client: AsyncClient, admin: Actor) -> None:
    body = event_body()
    body["voteConfig"]["votesPerRound"] = 0
    found = problem(await client.post("/events", json=body, headers=admin.headers), 422)
    assert found["title"] == "Unprocessable Entity"
    fields = [e["field"] for e in found["errors"]]
    assert fields == ["voteConfig.votesPerRound"]
    assert all(e["message"] for e in found["errors"])
    assert "voteConfig.votesPerRound" in found["detail"]


async def test_malformed_json_is_a_422_problem_on_the_body(client: AsyncClient, admin: Actor) -> None:
    r = await client.post(
        "/events", content=b'{"title": ', headers={**admin.headers, "content-type": "application/json"}
    )
    found = problem(r, 422)
    assert [e["field"] for e in found["errors"]] == ["body"]
    assert "JSON" in found["errors"][0]["message"]


async def test_invalid_query_parameter_is_a_422_problem(client: AsyncClient) -> None:
    found = problem(await client.get("/events", params={"limit": "lots"}), 422)
    assert [e["field"] for e in found["errors"]] == ["limit"]


async def test_an_unhandled_exception_is_a_500_problem_that_tells_nothing(app: FastAPI, client: AsyncClient) -> None:
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    app.add_api_route("/boom", boom)  # after startup: routes added late still serve
    r = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    body = problem(r, 500)
    assert body["title"] == "Internal Server Error"
    assert "hunter2" not in r.text
    # the answer to a bug still carries the id the caller can quote to support
    assert r.headers["x-request-id"] == "req-500"
    # and the app keeps serving
    assert (await client.get("/health")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'stagevote_http_requests_total{method="GET",route="/boom",status="500"} 1.0' in metrics


async def test_request_id_is_echoed(client: AsyncClient) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    failed = await client.get("/no/such/thing", headers={"X-Request-ID": "abc-456"})
    assert failed.headers["x-request-id"] == "abc-456"


async def test_request_id_is_generated_when_missing_or_unusable(client: AsyncClient) -> None:
    first = (await client.get("/health")).headers["x-request-id"]
    second = (await client.get("/health")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second
    for unusable in (b"   ", "caf\u00e9".encode("latin-1")):
        r = await client.get("/health", headers={b"X-Request-ID": unusable})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), unusable


async def test_a_long_request_id_is_cut_to_128_characters(client: AsyncClient) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "x" * 500})
    assert r.headers["x-request-id"] == "x" * 128
