"""The fan journey: NUDGE when a round opens and before a timed one closes, RESULTS at each close, RECAP."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from httpx import AsyncClient
from sqlalchemy import update

from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.errors import Conflict, NotFound
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.clock import RoundClock
from stagevote.events.models import Round
from stagevote.messaging import journey
from tests.attendees.conftest import messages
from tests.conftest import Actor
from tests.factories import Ballot, Stage, build_stage, event_body, new_phone
from tests.http import ok
from tests.messaging.conftest import FakeTwilio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # deliveries as fast as the loopback Twilio answers; the clock ticks only when a test ticks it
    return settings.model_copy(update={"sms_per_second": 100_000, "round_clock_seconds": 0})


def at(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


async def attendees_sent(runtime: Runtime, message_type: str, event_id: int) -> list[int | None]:
    return sorted(m.attendee_id for m in await messages(runtime, message_type=message_type, event_id=event_id))


async def set_attendee(runtime: Runtime, attendee_id: int, **values: Any) -> None:
    async with unit_of_work(runtime.sessionmaker) as session:
        await session.execute(update(Attendee).where(Attendee.id == attendee_id).values(**values))


async def run_hook(runtime: Runtime, topic: str, payload: dict[str, Any]) -> None:
    """The hook again, in a unit of work of its own: as a second instance, or a retried request, would."""
    async with unit_of_work(runtime.sessionmaker) as session:
        await runtime.hooks.run(topic, session, payload)


async def crowd(stage: Stage) -> dict[str, Ballot]:
    """Attendees of every kind the journey tells apart."""
    return {
        "a": await stage.ballot(),
        "b": await stage.ballot(),
        "c": await stage.ballot(),
        "unconfirmed": await stage.ballot(confirmed=False),
        "opted_out": await stage.ballot(opted_out=True),
    }


async def test_opening_a_round_nudges_the_confirmed_who_have_not_voted(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    stage = await build_stage(client, runtime, admin)  # round 1 opened before anyone joined: no one to nudge
    assert await messages(runtime, message_type="NUDGE") == []
    fans = await crowd(stage)
    await set_attendee(runtime, fans["c"].attendee_id, language_pref="es")
    assert (await stage.vote(fans["a"], "Owls")).status_code == 201
    await stage.admin_post("/rounds/1/close")
    await stage.admin_post("/rounds/2/open")

    confirmed = sorted(fans[k].attendee_id for k in ("a", "b", "c"))
    assert await attendees_sent(runtime, "NUDGE", stage.event_id) == confirmed
    for name in ("a", "b", "c"):
        [nudge] = await messages(runtime, message_type="NUDGE", attendee_id=fans[name].attendee_id)
        assert nudge.channel == "sms"
        assert ("Vota" in nudge.body) is (name == "c")
    # each link is its fan's own ballot: a vote through c's link uses up c's vote in round 2
    [nudge] = await messages(runtime, message_type="NUDGE", attendee_id=fans["c"].attendee_id)
    found = re.search(r"http://testserver/b/(\S+)", nudge.body)
    assert found is not None, nudge.body
    assert (await stage.vote(Ballot(fans["c"].attendee_id, found.group(1)), "Owls", round_=2)).status_code == 201
    assert (await stage.vote(fans["c"], "Foxes", round_=2)).status_code == 409

    # the trigger again (a second instance, a retry): nobody is nudged twice, a voter not at all, a newcomer once
    assert (await stage.vote(fans["b"], "Foxes", round_=2)).status_code == 201
    newcomer = await stage.ballot()
    await run_hook(runtime, events_service.ROUND_OPENED, {"eventId": stage.event_id, "number": 2})
    assert await attendees_sent(runtime, "NUDGE", stage.event_id) == sorted([*confirmed, newcomer.attendee_id])

    await runtime.queue.broker.wait_all()
    assert {m.status for m in await messages(runtime, message_type="NUDGE")} == {"sent"}
    assert len([f for f in twilio.received if "/b/" in f["Body"]]) == 4


async def test_pre_registered_numbers_of_a_hybrid_event_are_nudged(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    body = event_body(accessType="hybrid", voteConfig={"rounds": [{"number": 1, "name": "Final"}]})
    event = ok(await client.post("/events", json=body, headers=admin.headers), 201)
    listed = ok(
        await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": new_phone()}, headers=admin.headers),
        201,
    )
    stage = Stage(client, runtime, admin, event["id"])
    walk_in = await stage.ballot(confirmed=False)
    await stage.admin_post("/publish")
    await stage.admin_post("/start")
    await stage.admin_post("/rounds/1/open")
    assert await attendees_sent(runtime, "NUDGE", event["id"]) == [listed["id"]]  # not the unconfirmed walk-in
    assert not await messages(runtime, attendee_id=walk_in.attendee_id)
    await runtime.queue.broker.wait_all()  # no delivery outlives the test


async def test_nothing_is_written_when_the_action_rolls_back(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    await stage.ballot()

    async def open_then_fail() -> None:
        async with unit_of_work(runtime.sessionmaker) as session:
            await runtime.hooks.run(events_service.ROUND_OPENED, session, {"eventId": stage.event_id, "number": 1})
            raise RuntimeError("the round did not open after all")

    with pytest.raises(RuntimeError):
        await open_then_fail()
    assert await messages(runtime, message_type="NUDGE") == []


async def test_closing_a_round_sends_its_top_three(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    stage = await build_stage(client, runtime, admin, names=("Owls", "Foxes", "Bears", "Wolves"))
    fans = await crowd(stage)
    extra = [await stage.ballot() for _ in range(3)]
    for ballot, artist in zip(
        [fans["a"], fans["b"], fans["c"], *extra], ["Owls", "Owls", "Owls", "Foxes", "Foxes", "Bears"], strict=True
    ):
        assert (await stage.vote(ballot, artist)).status_code == 201
    await stage.admin_post("/rounds/1/close")

    confirmed = sorted([fans[k].attendee_id for k in ("a", "b", "c")] + [b.attendee_id for b in extra])
    assert await attendees_sent(runtime, "RESULTS", stage.event_id) == confirmed
    results = await messages(runtime, message_type="RESULTS")
    assert {m.body for m in results} == {
        f"{stage_keyword(results[0].body)}: round 1 is closed. Top 3: 1. Owls (3), 2. Foxes (2), 3. Bears (1)."
        " Thanks for voting!"
    }

    await run_hook(runtime, events_service.ROUND_CLOSED, {"eventId": stage.event_id, "number": 1})
    assert len(await messages(runtime, message_type="RESULTS")) == len(confirmed)
    await runtime.queue.broker.wait_all()
    assert {m.status for m in await messages(runtime, message_type="RESULTS")} == {"sent"}


def stage_keyword(body: str) -> str:
    return body.split(":", 1)[0]


async def test_a_hidden_leaderboard_closes_rounds_without_standings(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin, leaderboardVisibility="hidden")
    fan = await stage.ballot()
    assert (await stage.vote(fan, "Owls")).status_code == 201
    await stage.admin_post("/rounds/1/close")
    [results] = await messages(runtime, message_type="RESULTS")
    assert results.body.endswith("round 1 is closed. Thanks for voting!")
    assert "Owls" not in results.body

    await stage.admin_post("/rounds/2/open")
    await stage.admin_post("/close")
    [round_1, final] = await messages(runtime, message_type="RESULTS", attendee_id=fan.attendee_id)
    assert round_1.body.endswith("round 1 is closed. Thanks for voting!")
    assert final.body.endswith("is over. Thanks for voting!")
    await runtime.queue.broker.wait_all()  # no delivery outlives the test


async def test_closing_the_event_sends_the_final_results_once(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    fans = await crowd(stage)
    await stage.admin_post("/rounds/1/close")
    await stage.admin_post("/rounds/2/open")
    assert (await stage.vote(fans["a"], "Bears", round_=2)).status_code == 201
    before = len(await messages(runtime, message_type="RESULTS"))  # round 1's
    await stage.admin_post("/close")  # closes round 2 too: the final results say it, once

    final = await messages(runtime, message_type="RESULTS")
    final = final[before:]
    assert sorted(m.attendee_id for m in final) == sorted(fans[k].attendee_id for k in ("a", "b", "c"))
    assert all("is over! Final results: 1. Bears (1)." in m.body for m in final)
    await run_hook(runtime, events_service.EVENT_CLOSED, {"eventId": stage.event_id})
    assert len(await messages(runtime, message_type="RESULTS")) == before + 3
    await runtime.queue.broker.wait_all()


async def timed_stage(client: AsyncClient, runtime: Runtime, admin: Actor, *, closes: float, nudge: int) -> Stage:
    """A live event whose round 1 closes by the clock `closes` seconds from now, opened by hand."""
    rounds = [{"number": 1, "name": "Timed", "closesAt": at(closes)}]
    return await build_stage(client, runtime, admin, rounds=rounds, nudgeMinutesBeforeClose=nudge)


async def age_opening(runtime: Runtime, event_id: int, *, by: dt.timedelta) -> None:
    """Move the round's opening into the past, as if it had been open for `by` already."""
    async with unit_of_work(runtime.sessionmaker) as session:
        await session.execute(update(Round).where(Round.event_id == event_id).values(opened_at=utcnow() - by))


async def test_the_clock_nudges_non_voters_before_a_timed_round_closes(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await timed_stage(client, runtime, admin, closes=150, nudge=5)
    fans = await crowd(stage)
    assert (await stage.vote(fans["a"], "Owls")).status_code == 201
    await age_opening(runtime, stage.event_id, by=dt.timedelta(minutes=20))
    clock = RoundClock(runtime)
    await clock.tick()

    nudged = await messages(runtime, message_type="NUDGE")
    assert sorted(m.attendee_id for m in nudged) == sorted(fans[k].attendee_id for k in ("b", "c"))
    assert all("closes in 3 min" in m.body and "/b/" in m.body for m in nudged)
    # every tick after this one, and a second instance's, nudge no one again
    await clock.tick()
    await RoundClock(runtime).tick()
    async with unit_of_work(runtime.sessionmaker) as session:
        assert await journey.nudge_before_close(session=session, runtime=runtime, now=utcnow()) == 0
    assert len(await messages(runtime, message_type="NUDGE")) == 2
    await runtime.queue.broker.wait_all()


async def test_no_closing_nudge_before_the_window_or_when_it_is_off(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    early = await timed_stage(client, runtime, admin, closes=600, nudge=5)  # the window opens in 5 minutes
    off = await timed_stage(client, runtime, admin, closes=60, nudge=0)
    for stage in (early, off):
        await stage.ballot()
        await age_opening(runtime, stage.event_id, by=dt.timedelta(minutes=20))
    await RoundClock(runtime).tick()
    assert await messages(runtime, message_type="NUDGE") == []
    # once the window is open, the early round's attendee is nudged (the tick's time stands in for the wait)
    async with unit_of_work(runtime.sessionmaker) as session:
        later = utcnow() + dt.timedelta(minutes=6)
        assert await journey.nudge_before_close(session=session, runtime=runtime, now=later) == 1
    await runtime.queue.broker.wait_all()


async def test_a_round_opened_inside_its_window_is_nudged_once_and_its_close_sends_results(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    closes = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)  # inside the 5-minute nudge window
    rounds = [{"number": 1, "name": "Short", "closesAt": closes.isoformat()}]
    created = await client.post("/events", json=event_body(voteConfig={"rounds": rounds}), headers=admin.headers)
    stage = Stage(client, runtime, admin, created.json()["id"])
    invited = await client.post(f"/events/{stage.event_id}/artists", json={"name": "Owls"}, headers=admin.headers)
    stage.artists["Owls"] = invited.json()["artistId"]
    await client.post(f"/events/{stage.event_id}/artists/{stage.artists['Owls']}/accept", headers=admin.headers)
    await stage.admin_post("/publish")
    await stage.admin_post("/start")
    fan, voter = await stage.ballot(), await stage.ballot()
    await stage.admin_post("/rounds/1/open")  # inside its 5-minute window: the opening nudge is the nudge
    clock = RoundClock(runtime)
    await clock.tick()
    opening = await messages(runtime, message_type="NUDGE")
    assert [m.attendee_id for m in opening] == [fan.attendee_id, voter.attendee_id]
    assert all("is open" in m.body for m in opening)  # the opening's nudge, and no closing one on top
    assert (await stage.vote(voter, "Owls")).status_code == 201
    with time_machine.travel(closes + dt.timedelta(seconds=1), tick=True):  # the close, however slow the setup
        await clock.tick()  # the clock closes the round
    results = await messages(runtime, message_type="RESULTS")
    assert sorted(m.attendee_id for m in results) == sorted([fan.attendee_id, voter.attendee_id])
    assert all("Top 3: 1. Owls (1)." in m.body for m in results)
    await runtime.queue.broker.wait_all()


async def test_send_recap_once_per_confirmed_attendee(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    fans = await crowd(stage)
    await set_attendee(runtime, fans["b"].attendee_id, language_pref="es")
    early = "http://testserver/recaps/1.html"
    async with unit_of_work(runtime.sessionmaker) as session:
        with pytest.raises(Conflict):
            await journey.send_recap(session, runtime, stage.event_id, early)
        with pytest.raises(NotFound):
            await journey.send_recap(session, runtime, 999_999, early)
    await stage.admin_post("/close")  # the close renders the recap page, whose first rendering sends RECAP
    url = ok(await client.get(f"/events/{stage.event_id}/recap"))["url"]
    async with unit_of_work(runtime.sessionmaker) as session:  # a second rendering sends nothing
        assert await journey.send_recap(session, runtime, stage.event_id, url) == 0
    recaps = await messages(runtime, message_type="RECAP")
    assert sorted(m.attendee_id for m in recaps) == sorted(fans[k].attendee_id for k in ("a", "b", "c"))
    assert all(url in m.body for m in recaps)
    [spanish] = [m for m in recaps if m.attendee_id == fans["b"].attendee_id]
    assert spanish.body.startswith("¡Gracias")
    await runtime.queue.broker.wait_all()
    assert {m.status for m in await messages(runtime, message_type="RECAP")} == {"sent"}
