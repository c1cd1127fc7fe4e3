"""Values no column can hold are bad input, answered 4xx, never 500: huge ids and offsets on every route,
far dates, a CSV field longer than the csv module reads, a NUL character."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from stagevote.core.runtime import Runtime
from tests.attendees.conftest import code_in, joined
from tests.conftest import BACKEND, Actor
from tests.factories import event_body, make_event, new_phone
from tests.http import ok, problem

HUGE = (2**31, 2**63, 10**20, -(2**63) - 1)
# one body that gets past the schema of most operations, so that the value reaches the database
ANY_BODY: dict[str, Any] = {
    "code": "123456",
    "phoneNumber": "+12025550123",
    "round": 1,
    "artistId": 1,
    "token": "retry-token-1",
    "name": "Name",
    "userId": 1,
    "claimToken": "x",
    "role": "fan",
    "channel": "sms",
    "messageType": "CUSTOM",
    "body": "hello",
    "refreshToken": "svr_x",
}


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in app.openapi()["paths"].items() for method, op in ops.items()]


def no_server_error(r: Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json", what


async def test_ids_past_any_column_range_are_4xx_on_every_route(
    app: FastAPI, client: AsyncClient, admin: Actor
) -> None:
    tried = 0
    for path, method, _ in operations(app):
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        for value in HUGE:
            url = path
            for name in names:
                url = url.replace("{" + name + "}", str(value))
            r = await client.request(method, url, json=ANY_BODY, headers=admin.headers)
            no_server_error(r, f"{method.upper()} {url}")
            tried += 1
    assert tried > 50  # the routes were found


async def test_offsets_past_the_range_are_422_on_every_collection(
    app: FastAPI, client: AsyncClient, admin: Actor
) -> None:
    event = await make_event(client, admin)
    collections = [
        path.replace("{event_id}", str(event["id"]))
        for path, method, op in operations(app)
        if method == "get" and any(p["name"] == "offset" for p in op.get("parameters", []))
    ]
    assert "/events" in collections and len(collections) >= 4
    for url in collections:
        if "{" in url:  # a collection under another resource than an event
            continue
        for offset in (2**31, 2**63, 10**20):
            r = await client.get(url, params={"offset": str(offset)}, headers=admin.headers)
            assert [e["field"] for e in problem(r, 422)["errors"]] == ["offset"], url
        ok(await client.get(url, params={"offset": str(2**31 - 1)}, headers=admin.headers))


def fields_of_type(schema: dict[str, Any], components: dict[str, Any], kind: str) -> list[str]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kinds = [prop.get("type")] + [option.get("type") for option in prop.get("anyOf", [])]
        if kind in kinds:
            fields.append(name)
    return fields


@pytest.mark.parametrize(
    ("kind", "values"),
    [("integer", (2**31, 2**63, -(2**63) - 1)), ("string", ("x" * 20_000, "a\x00b"))],
    ids=["huge integers", "long strings and NUL"],
)
async def test_odd_values_in_bodies_and_queries_are_4xx(
    app: FastAPI, client: AsyncClient, admin: Actor, kind: str, values: tuple[object, ...]
) -> None:
    event = await make_event(client, admin, status="live")
    spec = app.openapi()
    components = spec["components"]["schemas"]
    tried = 0
    for path, method, op in operations(app):
        url = re.sub(r"{\w+}", str(event["id"]), path)
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        for field in fields_of_type(schema, components, kind) if schema else []:
            for value in values:
                r = await client.request(method, url, json={**ANY_BODY, field: value}, headers=admin.headers)
                no_server_error(r, f"{method.upper()} {url} {field}={str(value)[:20]}")
                tried += 1
        for parameter in op.get("parameters", []):
            if parameter["in"] != "query" or kind not in json.dumps(parameter.get("schema", {})):
                continue
            for value in values:
                r = await client.request(method, url, params={parameter["name"]: str(value)}, headers=admin.headers)
                no_server_error(r, f"{method.upper()} {url}?{parameter['name']}={str(value)[:20]}")
                tried += 1
    assert tried >= 5


async def test_dates_past_the_supported_range_are_422(client: AsyncClient, admin: Actor) -> None:
    cases = {
        "endDate": {"endDate": "9999-12-31T23:59:59Z"},
        "endDate ": {"endDate": "9999-12-31T23:00:00-05:00"},  # year 10000 in UTC
        "startDate": {"startDate": "0001-01-01T00:00:00+05:00"},  # year 0 in UTC
        "voteConfig.rounds.0.opensAt": {
            "voteConfig": {"rounds": [{"number": 1, "name": "F", "opensAt": "9999-12-31T23:00:00Z"}]}
        },
    }
    for field, overrides in cases.items():
        r = await client.post("/events", json=event_body(**overrides), headers=admin.headers)
        assert [e["field"] for e in problem(r, 422)["errors"]] == [field.strip()], field
    event = await make_event(client, admin)
    r = await client.put(f"/events/{event['id']}", json={"endDate": "9999-12-31T23:59:59Z"}, headers=admin.headers)
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["endDate"]
    for name in ("from", "to"):
        r = await client.get("/events", params={name: "9999-12-31T23:00:00-05:00"})
        assert [e["field"] for e in problem(r, 422)["errors"]] == [name]


async def test_an_event_ending_at_the_end_of_the_range_works_to_the_ballot(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    body = event_body(endDate="2999-12-31T23:59:59Z")
    event = ok(await client.post("/events", json=body, headers=admin.headers), 201)
    ok(await client.post(f"/events/{event['id']}/publish", headers=admin.headers))
    attendee_id, sms = await joined(client, runtime, event["id"], new_phone())
    confirmed = ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(sms)}))
    assert confirmed["ballotToken"]


async def test_a_csv_field_longer_than_the_csv_reader_takes_is_422_naming_the_line(
    client: AsyncClient, admin: Actor
) -> None:
    event = await make_event(client, admin)
    content = b"phoneNumber,email\n+12025550123,a@example.com\n+12025550124," + b"x" * (130 * 1024) + b"\n"
    r = await client.post(
        f"/events/{event['id']}/attendees", content=content, headers={**admin.headers, "Content-Type": "text/csv"}
    )
    found = problem(r, 422)
    assert found["errors"][0]["field"] == "file"
    assert found["errors"][0]["message"].startswith("line 3:")


async def test_a_nul_character_is_never_a_500(client: AsyncClient, admin: Actor) -> None:
    r = await client.post("/events", json=event_body(title="Battle\x00of the bands"), headers=admin.headers)
    no_server_error(r, "title with NUL")
    if BACKEND == "postgresql":  # PostgreSQL text cannot hold it: refused as input; SQLite stores it
        problem(r, 422)


@pytest.mark.postgresql
async def test_ids_between_the_int32_and_int64_limits_are_4xx_on_postgresql(client: AsyncClient) -> None:
    # PostgreSQL INTEGER ends at 2**31 - 1; SQLite's at 2**63 - 1: the same id is refused on both
    problem(await client.get(f"/events/{2**31}"), 422)


async def test_an_overflow_of_our_own_is_still_a_500(app: FastAPI, client: AsyncClient) -> None:
    """Only what the database refuses is bad input; an overflow in our own arithmetic stays a bug, and says so."""

    async def arithmetic() -> None:
        raise OverflowError("date value out of range")

    app.add_api_route("/overflow", arithmetic)
    problem(await client.get("/overflow"), 500)
