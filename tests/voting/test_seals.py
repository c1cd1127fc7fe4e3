"""Round seals: a round is sealed when it closes (by hand, by the clock, with the event), once; the seal is
public, 409 while the round is open or pending, 404 for what does not exist."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from stagevote.core import merkle
from stagevote.core.runtime import Runtime
from stagevote.events.clock import RoundClock
from tests.conftest import Actor
from tests.factories import Stage
from tests.http import ok, problem
from tests.voting.test_timed_rounds import timed_stage


async def seal_of(stage: Stage, number: int) -> dict[str, object]:
    return ok(await stage.client.get(f"/events/{stage.event_id}/rounds/{number}/seal"))  # type: ignore[no-any-return]


async def test_a_round_is_sealed_when_it_closes_and_not_before(stage: Stage) -> None:
    receipts = [ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"] for _ in range(3)]
    open_ = problem(await stage.client.get(f"/events/{stage.event_id}/rounds/1/seal"), 409)
    assert open_["type"].endswith("round-not-sealed")
    problem(await stage.client.get(f"/events/{stage.event_id}/rounds/2/seal"), 409)  # pending
    problem(await stage.client.get(f"/events/{stage.event_id}/rounds/9/seal"), 404)
    problem(await stage.client.get("/events/999999/rounds/1/seal"), 404)

    await stage.admin_post("/rounds/1/close")
    seal = await seal_of(stage, 1)
    assert set(seal) == {"eventId", "round", "root", "votes", "sealedAt"}
    assert (seal["eventId"], seal["round"], seal["votes"]) == (stage.event_id, 1, 3)
    assert seal["root"] == merkle.root_of(receipts)
    # a round without a vote is sealed too: the root of nothing
    await stage.admin_post("/rounds/2/open")
    await stage.admin_post("/rounds/2/close")
    empty = await seal_of(stage, 2)
    assert (empty["votes"], empty["root"]) == (0, merkle.EMPTY_ROOT)
    assert await seal_of(stage, 1) == seal  # sealed once: later closes leave it alone


async def test_closing_the_event_seals_its_open_round(stage: Stage) -> None:
    receipt = ok(await stage.vote(await stage.ballot(), "Foxes"), 201)["receipt"]
    await stage.admin_post("/close")
    seal = await seal_of(stage, 1)
    assert seal["votes"] == 1 and seal["root"] == merkle.root_of([receipt])
    problem(await stage.client.get(f"/events/{stage.event_id}/rounds/2/seal"), 409)  # never opened


async def test_the_clock_seals_a_timed_round(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=4)
    clock = RoundClock(runtime)
    await clock.tick()
    receipt = ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"]
    problem(await client.get(f"/events/{stage.event_id}/rounds/1/seal"), 409)
    for _ in range(60):  # until the round's time is up
        await asyncio.sleep(0.1)
        await clock.tick()
        if (await client.get(f"/events/{stage.event_id}/rounds/1/seal")).status_code == 200:
            break
    seal = await seal_of(stage, 1)
    assert seal["votes"] == 1 and seal["root"] == merkle.root_of([receipt])
