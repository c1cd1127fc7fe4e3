"""What the database guarantees when requests race: one event per keyword, one open round per event."""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient

from tests.conftest import Actor
from tests.events.test_rounds import live_event
from tests.factories import event_body

pytestmark = pytest.mark.postgresql


async def test_concurrent_creates_with_one_keyword_leave_one_event(client: AsyncClient, admin: Actor) -> None:
    for attempt in range(5):
        keyword = f"RACE{attempt}"
        bodies = [event_body(keyword=keyword), event_body(keyword=keyword.lower())]
        answers = await asyncio.gather(*(client.post("/events", json=b, headers=admin.headers) for b in bodies))
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        loser = next(r for r in answers if r.status_code == 409)
        assert loser.headers["content-type"] == "application/problem+json"
    listing = (await client.get("/events", headers=admin.headers)).json()
    assert listing["total"] == 5
    assert sorted(e["keyword"] for e in listing["items"]) == [f"RACE{i}" for i in range(5)]


async def test_concurrent_round_opens_leave_one_round_open(client: AsyncClient, admin: Actor) -> None:
    event = await live_event(client, admin)
    eid = event["id"]
    answers = await asyncio.gather(
        client.post(f"/events/{eid}/rounds/1/open", headers=admin.headers),
        client.post(f"/events/{eid}/rounds/2/open", headers=admin.headers),
    )
    assert sorted(r.status_code for r in answers) == [200, 409]
    statuses = [r["status"] for r in (await client.get(f"/events/{eid}/rounds")).json()["items"]]
    assert statuses.count("open") == 1
