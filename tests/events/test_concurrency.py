"""What the database guarantees when requests race: one event per keyword, one open round per event, votes
that do not wait for a change of their event."""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient

from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from tests.conftest import Actor
from tests.events.test_rounds import live_event
from tests.factories import build_stage, event_body

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


async def test_a_vote_is_taken_while_a_change_holds_its_event(
    client: AsyncClient, admin: Actor, runtime: Runtime
) -> None:
    """A round's close holds the event row until it commits (its seal, its results queued): the votes
    arriving meanwhile, whose foreign key reads that row, are taken without waiting for it."""
    stage = await build_stage(client, runtime, admin)
    ballot = await stage.ballot()
    async with unit_of_work(runtime.sessionmaker) as session:
        await events_service.get_event_for_change(session=session, event_id=stage.event_id)
        async with asyncio.timeout(30):  # waiting for this unit of work would never end: it commits after
            answer = await stage.vote(ballot, "Owls")
    assert answer.status_code == 201, answer.text
