"""Quiet hours and the daily cap: marketing SMS wait for morning where the fan is, and stop at a few a day;
transactional ones (RESULTS of a round the fan voted in, the join's replies) go at once, whatever the hour."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox, quiet
from tests.attendees.conftest import messages
from tests.conftest import Actor
from tests.factories import Stage, build_stage
from tests.http import ok
from tests.messaging.conftest import FakeTwilio, add_message, message, settle
from tests.tokens import clock_at

NEW_YORK, LOS_ANGELES = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")
NY_FAN, NY_FAN_2, NY_LATE = "+12125550100", "+12125550101", "+12125550102"  # phonenumbers: one zone each
LA_FAN = "+12135550100"
NINE_PM, EIGHT_AM = dt.time(21, 0), dt.time(8, 0)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "quiet_hours_start": NINE_PM,
            "quiet_hours_end": EIGHT_AM,
            "sms_per_second": 100_000,
            "round_clock_seconds": 0,
            "access_token_minutes": 60 * 24 * 30,  # the admin's token outlives the trips in time
        }
    )


def next_local(zone: ZoneInfo, at: dt.time, *, after: dt.datetime | None = None) -> dt.datetime:
    """The next moment after `after` (default: now) when the wall clock in `zone` shows `at`."""
    start = (after or dt.datetime.now(dt.UTC)).astimezone(zone)
    moment = start.replace(hour=at.hour, minute=at.minute, second=at.second, microsecond=0)
    return moment if moment > start else moment + dt.timedelta(days=1)


async def broadcast(stage: Stage, *, headers: dict[str, str] | None = None, **body: Any) -> Any:
    r = await stage.client.post(
        f"/events/{stage.event_id}/messages", json=body, headers={**stage.admin.headers, **(headers or {})}
    )
    return ok(r, 202)


def texts_to(twilio: FakeTwilio, number: str) -> list[str]:
    return [form["Body"] for form in twilio.to(number)]


# --- the time zone arithmetic ------------------------------------------------------------------------------


def test_quiet_hours_end_at_the_latest_morning_of_the_numbers_zones() -> None:
    both = (NEW_YORK, LOS_ANGELES)
    ny_evening = dt.datetime(2027, 1, 15, 20, 30, tzinfo=NEW_YORK)  # 17:30 in Los Angeles
    assert quiet.quiet_until(both, ny_evening, NINE_PM, EIGHT_AM) is None
    ny_night = dt.datetime(2027, 1, 15, 21, 30, tzinfo=NEW_YORK)
    la_wakes = dt.datetime(2027, 1, 16, 8, 0, tzinfo=LOS_ANGELES)  # 11:00 in New York
    assert quiet.quiet_until((NEW_YORK,), ny_night, NINE_PM, EIGHT_AM) == dt.datetime(2027, 1, 16, 8, tzinfo=NEW_YORK)
    assert quiet.quiet_until(both, ny_night, NINE_PM, EIGHT_AM) == la_wakes
    ny_early = dt.datetime(2027, 1, 16, 9, 0, tzinfo=NEW_YORK)  # 06:00 in Los Angeles: still night there
    assert quiet.quiet_until(both, ny_early, NINE_PM, EIGHT_AM) == la_wakes
    # the edges: 21:00 is quiet, 08:00 is not
    assert quiet.quiet_until((NEW_YORK,), dt.datetime(2027, 1, 15, 21, 0, tzinfo=NEW_YORK), NINE_PM, EIGHT_AM)
    assert quiet.quiet_until((NEW_YORK,), dt.datetime(2027, 1, 16, 8, 0, tzinfo=NEW_YORK), NINE_PM, EIGHT_AM) is None
    # a window inside one day, and none at all
    assert quiet.quiet_until((NEW_YORK,), ny_evening, dt.time(13), dt.time(22)) == ny_evening.replace(hour=22, minute=0)
    assert quiet.quiet_until((NEW_YORK,), ny_night, EIGHT_AM, EIGHT_AM) is None


def test_zones_that_share_no_daytime_fall_back_to_the_first() -> None:
    # UTC, UTC+8, UTC-8: their 13-hour days, 8 hours apart, have no hour in common
    apart = (ZoneInfo("Etc/UTC"), ZoneInfo("Etc/GMT-8"), ZoneInfo("Etc/GMT+8"))
    now = dt.datetime(2027, 1, 15, 2, 0, tzinfo=dt.UTC)
    assert quiet.quiet_until(apart, now, NINE_PM, EIGHT_AM) == dt.datetime(2027, 1, 15, 8, tzinfo=dt.UTC)
    assert quiet.zones_of(NY_FAN) == (NEW_YORK,)
    assert quiet.zones_of("+999") == (quiet.UTC_ZONE,)


# --- broadcasts across the boundary, and the deferred message released -------------------------------------------


async def test_a_marketing_sms_after_nine_waits_for_eight_where_the_fan_is(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    stage = await build_stage(client, runtime, admin)
    await stage.ballot(phone=NY_FAN)
    await stage.ballot(phone=LA_FAN)
    evening = next_local(NEW_YORK, dt.time(20, 59, 30))

    with clock_at(evening):  # one boundary away: it still goes
        answer = await broadcast(stage, channel="sms", messageType="CUSTOM", body="Before nine")
        await settle(runtime)
    assert answer["deferred"] == 0
    assert "Before nine" in texts_to(twilio, NY_FAN) and "Before nine" in texts_to(twilio, LA_FAN)

    with clock_at(evening + dt.timedelta(minutes=1)):  # 21:00:30 in New York, 18:00:30 in Los Angeles
        answer = await broadcast(stage, channel="sms", messageType="CUSTOM", body="After nine")
        await settle(runtime)
    assert (answer["queued"], answer["deferred"]) == (2, 1)
    assert "After nine" in texts_to(twilio, LA_FAN) and "After nine" not in texts_to(twilio, NY_FAN)
    (held,) = [m for m in await messages(runtime, body="After nine") if m.recipient == NY_FAN]
    morning = next_local(NEW_YORK, EIGHT_AM, after=evening)
    assert (held.status, held.next_attempt_at, held.attempts) == ("queued", morning, 0)  # deferred, not dropped

    with clock_at(morning - dt.timedelta(seconds=30)):
        await outbox.sweep(runtime)
        await settle(runtime)
    assert "After nine" not in texts_to(twilio, NY_FAN)
    with clock_at(morning + dt.timedelta(seconds=1)):  # released once quiet hours end
        await outbox.sweep(runtime)
        await settle(runtime)
    assert texts_to(twilio, NY_FAN).count("After nine") == 1
    assert (await message(runtime, held.id)).status == "sent"


async def test_results_of_a_round_the_fan_voted_in_go_at_night_and_the_rest_wait(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    stage = await build_stage(client, runtime, admin)
    voter = await stage.ballot(phone=NY_FAN)
    await stage.ballot(phone=NY_FAN_2)
    assert (await stage.vote(voter, "Owls")).status_code == 201
    with clock_at(next_local(NEW_YORK, dt.time(23, 0))):
        answer = await broadcast(stage, channel="sms", messageType="RESULTS", round=1)
        joined = await client.post(f"/events/{stage.event_id}/join", json={"phoneNumber": NY_LATE})
        await settle(runtime)
    assert (answer["queued"], answer["deferred"]) == (2, 1)
    assert len(twilio.to(NY_FAN)) == 1 and twilio.to(NY_FAN_2) == []
    assert joined.status_code == 202 and len(twilio.to(NY_LATE)) == 1  # the join's CONFIRM code goes at once
    rows = {m.recipient: m for m in await messages(runtime, message_type="RESULTS")}
    assert (rows[NY_FAN].marketing, rows[NY_FAN_2].marketing) == (False, True)


async def test_a_marketing_sms_whose_turn_comes_in_quiet_hours_is_put_back(
    runtime: Runtime, twilio: FakeTwilio
) -> None:
    """A row written before nine whose turn comes after (a long broadcast's tail) is not sent either."""
    night = next_local(NEW_YORK, dt.time(22, 0))
    with clock_at(night):
        # written at eight, as a broadcast writes it (marketing from the start): the dispatcher's own
        # once-a-second drain may take it before the sweep below, and must hold it back too
        message_id = await add_message(
            runtime, to=NY_FAN, message_type="NUDGE", marketing=True, age=dt.timedelta(hours=2)
        )
        await outbox.sweep(runtime)
        await settle(runtime)
    row = await message(runtime, message_id)
    assert twilio.received == []
    assert (row.status, row.attempts, row.leased_until) == ("queued", 0, None)
    assert row.next_attempt_at == next_local(NEW_YORK, EIGHT_AM, after=night)


# --- the cap ---------------------------------------------------------------------------------------------------


async def test_the_daily_cap_skips_marketing_and_spares_transactional_replies(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    runtime.settings.marketing_per_day = 2
    runtime.settings.quiet_hours_end = NINE_PM  # no quiet hours here
    stage = await build_stage(client, runtime, admin)
    voter, idle = await stage.ballot(), await stage.ballot()
    assert (await stage.vote(voter, "Owls")).status_code == 201

    first = await broadcast(stage, channel="sms", messageType="CUSTOM", body="One")
    again = {"Idempotency-Key": "second"}
    second = await broadcast(stage, channel="sms", messageType="CUSTOM", body="Two", headers=again)
    assert first["queued"] == second["queued"] == 2
    third = await broadcast(stage, channel="sms", messageType="CUSTOM", body="Three")
    assert (third["queued"], third["skipped"]["capped"]) == (0, 2)
    assert await messages(runtime, body="Three") == []  # capped: no history row
    dry = ok(
        await client.post(
            f"/events/{stage.event_id}/messages", params={"dryRun": "true"}, headers=admin.headers,
            json={"channel": "sms", "messageType": "CUSTOM", "body": "Four"},
        )
    )  # fmt: skip
    assert (dry["recipients"], dry["skipped"]["capped"]) == (0, 2)
    # a replay of a message already written is no new message: it answers as the first time did
    assert await broadcast(stage, channel="sms", messageType="CUSTOM", body="Two", headers=again) == second
    # RESULTS of a round the fan voted in are transactional: the voter gets them, the other fan is capped
    results = await broadcast(stage, channel="sms", messageType="RESULTS", round=1)
    assert (results["queued"], results["skipped"]["capped"]) == (1, 1)
    assert [m.attendee_id for m in await messages(runtime, message_type="RESULTS")] == [voter.attendee_id]
    assert idle.attendee_id not in {m.attendee_id for m in await messages(runtime, message_type="RESULTS")}
    await runtime.queue.broker.wait_all()
