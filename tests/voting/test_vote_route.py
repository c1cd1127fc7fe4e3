"""The vote route served lean (a plain Starlette endpoint before FastAPI's): the same contract as the others."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from httpx import AsyncClient

from tests.http import problem
from tests.voting.conftest import Stage


async def test_bad_vote_bodies_are_the_same_422_problems(stage: Stage, client: AsyncClient) -> None:
    ballot = await stage.ballot()
    path = f"/events/{stage.event_id}/vote"
    broken = await client.post(
        path, content=b'{"round": ', headers={**ballot.headers, "content-type": "application/json"}
    )
    found = problem(broken, 422)
    assert [e["field"] for e in found["errors"]] == ["body"] and "JSON" in found["errors"][0]["message"]
    missing = problem(await client.post(path, json={"round": 1, "token": "tok-missing-1"}, headers=ballot.headers), 422)
    assert [e["field"] for e in missing["errors"]] == ["artistId"]
    short = problem(
        await client.post(path, json={"round": 1, "artistId": 1, "token": "x"}, headers=ballot.headers), 422
    )
    assert [e["field"] for e in short["errors"]] == ["token"]
    not_a_number = await client.post("/events/abc/vote", json={"round": 1, "artistId": 1, "token": "tok-abc-123"})
    assert [e["field"] for e in problem(not_a_number, 422)["errors"]] == ["event_id"]
    assert (await client.get(path)).status_code == 405
    # nothing was counted, and a good vote still is
    assert (await stage.board()).json()["totalVotes"] == 0
    assert (await stage.vote(ballot, "Owls")).status_code == 201


async def test_the_vote_route_is_measured_and_documented(stage: Stage, client: AsyncClient) -> None:
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    metrics = (await client.get("/metrics")).text
    assert 'stagevote_http_requests_total{method="POST",route="/events/{event_id}/vote",status="201"} 1.0' in metrics
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/events/{event_id}/vote"]["post"]
    assert operation["security"] == [{"ballot": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/VoteRequest"}
    assert schema["components"]["securitySchemes"]["ballot"]["scheme"] == "bearer"
    assert {"200", "201", "422"} <= set(operation["responses"])


async def test_a_vote_body_that_arrives_in_pieces_is_read_whole(stage: Stage, client: AsyncClient) -> None:
    ballot = await stage.ballot()
    body = json.dumps({"round": 1, "artistId": stage.artists["Owls"], "token": "tok-pieces-1"}).encode()

    async def pieces() -> AsyncIterator[bytes]:  # each piece its own `http.request` message, `more_body` set
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    answer = await client.post(
        f"/events/{stage.event_id}/vote",
        content=pieces(),
        headers={**ballot.headers, "content-type": "application/json"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["token"] == "tok-pieces-1"
    assert (await stage.board()).json()["totalVotes"] == 1
