"""Timed rounds open and close by the clock, as well as by hand; the vote path is exact to the second."""

from __future__ import annotations

import asyncio
import datetime as dt

import time_machine
from httpx import AsyncClient

from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.clock import RoundClock
from tests.conftest import Actor
from tests.factories import Stage, event_body


def at(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


async def timed_stage(client: AsyncClient, runtime: Runtime, admin: Actor, opens: float, closes: float) -> Stage:
    rounds = [{"number": 1, "name": "Timed", "opensAt": at(opens), "closesAt": at(closes)}]
    created = await client.post("/events", json=event_body(voteConfig={"rounds": rounds}), headers=admin.headers)
    stage = Stage(client, runtime, admin, created.json()["id"])
    invited = await client.post(f"/events/{stage.event_id}/artists", json={"name": "Owls"}, headers=admin.headers)
    stage.artists["Owls"] = invited.json()["artistId"]
    await client.post(f"/events/{stage.event_id}/artists/{stage.artists['Owls']}/accept", headers=admin.headers)
    await stage.admin_post("/publish")
    await stage.admin_post("/start")
    return stage


async def round_status(stage: Stage) -> str:
    status: str = (await stage.client.get(f"/events/{stage.event_id}/rounds")).json()["items"][0]["status"]
    return status


async def test_the_clock_opens_and_closes_a_timed_round(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=60)
    clock = RoundClock(runtime)
    await clock.tick()
    assert await round_status(stage) == "open"
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    late = await stage.ballot()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61), tick=True):
        await clock.tick()
        assert await round_status(stage) == "closed"
        assert (await stage.vote(late, "Owls")).status_code == 409


async def test_votes_follow_the_clock_even_before_it_ticks(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-5, closes=60)
    # whether or not the clock task has run yet, the round is open by its times
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201


async def test_a_round_whose_time_has_not_come_is_closed_to_votes(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await timed_stage(client, runtime, admin, opens=60, closes=120)
    await RoundClock(runtime).tick()
    assert await round_status(stage) == "pending"
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 409


async def test_a_timed_round_can_still_be_closed_by_hand(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=60)
    await RoundClock(runtime).tick()
    await stage.admin_post("/rounds/1/close")
    assert await round_status(stage) == "closed"
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 409


async def test_clocks_of_two_instances_close_a_round_once(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await timed_stage(client, runtime, admin, opens=-1, closes=30)
    await RoundClock(runtime).tick()

    async def one_clock() -> list[int]:
        async with unit_of_work(runtime.sessionmaker) as session:
            changed = await events_service.apply_clock(session=session, runtime=runtime, now=utcnow())
            return [r.number for r in changed]

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31), tick=True):
        first, second = await asyncio.gather(one_clock(), one_clock())
    assert sorted(first + second) == [1]  # one of them closed it, the other found it closed
    assert await round_status(stage) == "closed"
