"""The outbox through the real (in-process) queue against the fake Twilio: once only, retries, leases, limits.

The app's background dispatcher (its once-a-second pass) is switched off here: each test runs a dispatcher
pass (`outbox.sweep`) itself when it means to, so what a pass finds is known, and waits for the queue with
`settle` (the queue's own `wait_all`), never by polling. A commit that queues messages still wakes the
dispatcher through its `DRAIN` task, as in production. Time is not waited for: a retry's `next_attempt_at`,
a lease's `leased_until` or a `sending` row's `updated_at` is moved into the past instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from httpx import AsyncClient
from pydantic import SecretStr

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee, PhoneOptOut
from stagevote.config import ConnectionURL, Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox
from stagevote.messaging import service as messaging_service
from stagevote.messaging.models import Message
from tests.attendees.conftest import attendees_of, messages, opted_out_numbers, web_join
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import ok
from tests.messaging.conftest import (
    SENDGRID_KEY,
    FakeSendGrid,
    FakeTwilio,
    StartSmtp,
    add_message,
    make_due,
    message,
    settle,
)


@pytest.fixture(autouse=True)
def _no_background_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the app starts (autouse fixtures come first): its dispatcher loop never runs."""
    monkeypatch.setattr(outbox.Sweeper, "start", lambda self: None)


def leased() -> dt.datetime:
    """A lease as a dispatcher gives a row it hands out."""
    return utcnow() + outbox.LEASE


async def enqueue(runtime: Runtime, *message_ids: int) -> None:
    """Hand rows to the queue as the dispatcher does (one batch), without waiting for it."""
    await runtime.queue.enqueue(outbox.DELIVER, list(message_ids), "sms")


def back_off(row: Message) -> float:
    """Seconds from the failed attempt (the row's last update) to the next one."""
    assert row.next_attempt_at is not None
    return (row.next_attempt_at - row.updated_at).total_seconds()


async def test_two_runs_of_one_delivery_send_it_once(runtime: Runtime, twilio: FakeTwilio) -> None:
    phone = new_phone()
    first = await add_message(runtime, to=phone, leased_until=leased())
    twilio.answer(201, delay=0.2)  # the first run is still talking to Twilio when the second one starts
    await asyncio.gather(outbox.deliver(runtime, first), outbox.deliver(runtime, first))
    assert len(twilio.to(phone)) == 1

    other = new_phone()
    second = await add_message(runtime, to=other, leased_until=leased())
    twilio.answer(201, delay=0.2)
    await enqueue(runtime, second, second)  # a broker that delivers a task more than once
    await enqueue(runtime, second)
    await settle(runtime)
    assert len(twilio.to(other)) == 1

    for message_id in (first, second):
        row = await message(runtime, message_id)
        assert (row.status, row.attempts, row.error, row.leased_until) == ("sent", 1, None, None)
        assert row.provider_message_id is not None and row.sent_at is not None
    await outbox.deliver(runtime, first)  # a late duplicate finds the row sent
    assert len(twilio.received) == 2


async def test_a_stray_task_sends_nothing_that_was_not_handed_out(runtime: Runtime, twilio: FakeTwilio) -> None:
    # a copy of an old task, redelivered by the broker, for a row that went back to wait out its back-off
    backing_off = await add_message(runtime, to=new_phone(), attempts=1, next_attempt_at=utcnow() + dt.timedelta(60))
    await enqueue(runtime, backing_off)
    await settle(runtime)
    assert twilio.received == []
    row = await message(runtime, backing_off)
    assert (row.status, row.attempts) == ("queued", 1)


@pytest.mark.parametrize("trouble", ["500", "429", "unreachable"])
async def test_a_transient_failure_is_retried_when_its_time_comes(
    runtime: Runtime, twilio: FakeTwilio, trouble: str
) -> None:
    phone = new_phone()
    message_id = await add_message(runtime, to=phone)
    if trouble == "500":
        twilio.answer(500)
    elif trouble == "429":
        twilio.answer(429, 20429)
    else:
        runtime.settings.twilio_api_url = "http://127.0.0.1:1"
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)

    row = await message(runtime, message_id)
    assert (row.status, row.attempts, row.sent_at, row.provider_message_id) == ("queued", 1, None, None)
    assert 1.5 < back_off(row) <= 2  # the first back-off: 2 s
    assert row.error is not None and (trouble in row.error or "reached" in row.error)
    assert await outbox.sweep(runtime) == 0  # not due yet

    runtime.settings.twilio_api_url = twilio.url
    await make_due(runtime, message_id)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, message_id)
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)
    assert row.provider_message_id is not None and row.sent_at is not None
    assert len(twilio.to(phone)) == (1 if trouble == "unreachable" else 2)
    assert await outbox.sweep(runtime) == 0


async def test_after_the_last_attempt_the_message_fails(runtime: Runtime, twilio: FakeTwilio) -> None:
    runtime.settings.delivery_max_attempts = 3
    phone = new_phone()
    message_id = await add_message(runtime, to=phone)
    twilio.answer(503, 20500, times=3)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    for attempt, seconds in ((1, 2), (2, 4)):
        row = await message(runtime, message_id)
        assert (row.status, row.attempts) == ("queued", attempt)
        assert seconds - 0.5 < back_off(row) <= seconds
        await make_due(runtime, message_id)
        assert await outbox.sweep(runtime) == 1
        await settle(runtime)
    row = await message(runtime, message_id)
    assert (row.status, row.attempts, row.sent_at, row.next_attempt_at) == ("failed", 3, None, None)
    assert row.error is not None and "503" in row.error
    assert await outbox.sweep(runtime) == 0
    assert len(twilio.to(phone)) == 3


async def test_a_permanent_refusal_fails_at_once(runtime: Runtime, twilio: FakeTwilio) -> None:
    phone = new_phone()
    message_id = await add_message(runtime, to=phone)
    twilio.answer(400, 21211)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, message_id)
    assert (row.status, row.attempts, row.sent_at, row.next_attempt_at) == ("failed", 1, None, None)
    assert row.error is not None and "21211" in row.error
    assert await outbox.sweep(runtime) == 0
    assert len(twilio.to(phone)) == 1


async def test_an_unsubscribed_number_opts_out_of_every_event(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    phone, neighbour = new_phone(), new_phone()
    events = [await make_event(client, admin) for _ in range(2)]
    ids = [ok(await web_join(client, e["id"], phone), 202)["attendeeId"] for e in events]
    ok(await web_join(client, events[0]["id"], neighbour), 202)
    await settle(runtime)
    assert len(twilio.to(phone)) == 2  # the CONFIRM codes went out

    twilio.unsubscribed.add(phone)  # the fan texted STOP to our number, and Twilio's opt-out kept it
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await session.get(Attendee, ids[0])
        assert attendee is not None
        queued = await messaging_service.send_sms(
            session=session, runtime=runtime, attendee=attendee, body="Round 2 is open!", message_type="CUSTOM"
        )
        assert queued is not None
    await settle(runtime)

    row = await message(runtime, queued.id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error is not None and "21610" in row.error
    assert [a.opted_out for a in await attendees_of(runtime, phone)] == [True, True]
    assert [a.opted_out for a in await attendees_of(runtime, neighbour)] == [False]
    assert await opted_out_numbers(runtime) == {phone}
    listed = ok(await client.get(f"/events/{events[1]['id']}/attendees?optedOut=true", headers=admin.headers))
    assert [a["id"] for a in listed["items"]] == [ids[1]]

    async with unit_of_work(runtime.sessionmaker) as session:  # nothing more is written for the number
        attendee = await session.get(Attendee, ids[1])
        assert attendee is not None
        skipped = await messaging_service.send_sms(
            session=session, runtime=runtime, attendee=attendee, body="Round 3!", message_type="CUSTOM"
        )
    assert skipped is None
    assert await outbox.sweep(runtime) == 0
    assert len(twilio.to(phone)) == 3


async def test_a_row_whose_task_was_lost_is_handed_out_again_when_its_lease_runs_out(
    runtime: Runtime, twilio: FakeTwilio
) -> None:
    lost_phone, held_phone = new_phone(), new_phone()
    # both were handed out; the first one's task never came (its lease ran out), the other's may still come
    lost = await add_message(runtime, to=lost_phone, leased_until=utcnow() - dt.timedelta(seconds=1))
    held = await add_message(runtime, to=held_phone, leased_until=leased())
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert (await message(runtime, lost)).status == "sent"
    assert (await message(runtime, held)).status == "queued"
    assert len(twilio.to(lost_phone)) == 1 and twilio.to(held_phone) == []


async def test_a_row_stuck_in_sending_that_twilio_does_not_have_is_sent_again(
    runtime: Runtime, twilio: FakeTwilio
) -> None:
    timeout = dt.timedelta(seconds=runtime.settings.delivery_sending_timeout_seconds)
    stuck_phone, busy_phone = new_phone(), new_phone()
    stuck = await add_message(
        runtime, to=stuck_phone, status="sending", attempts=1, age=timeout + dt.timedelta(seconds=1)
    )
    busy = await add_message(runtime, to=busy_phone, status="sending", attempts=1, age=dt.timedelta(seconds=1))
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, stuck)
    assert (row.status, row.attempts) == ("sent", 2)
    assert (await message(runtime, busy)).status == "sending"  # its worker may still be on it
    assert len(twilio.to(stuck_phone)) == 1 and twilio.to(busy_phone) == []
    [lookup] = twilio.lookups  # Twilio was asked first
    assert lookup["To"] == stuck_phone


async def test_dispatchers_side_by_side_hand_a_row_out_once(runtime: Runtime, twilio: FakeTwilio) -> None:
    phone = new_phone()
    await add_message(runtime, to=phone)  # queued and due: what both passes look for
    found = await asyncio.gather(outbox.sweep(runtime), outbox.sweep(runtime))
    assert sorted(found) == [0, 1]
    await settle(runtime)
    assert await outbox.sweep(runtime) == 0
    assert len(twilio.to(phone)) == 1


async def test_sms_go_out_no_faster_than_the_rate_limit(
    runtime: Runtime, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.settings.sms_per_second = 5
    granted: list[float] = []
    acquire = runtime.limiter.acquire

    async def recorded(per_second: float, *identifiers: str) -> None:
        await acquire(per_second, *identifiers)
        granted.append(time.monotonic())

    monkeypatch.setattr(runtime.limiter, "acquire", recorded)
    for _ in range(15):
        await add_message(runtime, to=new_phone())
    await runtime.queue.enqueue(outbox.DRAIN)  # what a commit that queued messages does
    await settle(runtime)
    assert len(twilio.received) == 15
    assert {m.status for m in await messages(runtime)} == {"sent"}
    # 15 permits at 5 per second span at least two full windows; load can only make that longer,
    # while without the limit all 15 go out within a tenth of a second
    assert len(granted) == 15
    assert granted[-1] - granted[0] >= 1.9, granted


# --- e-mail through the outbox ----------------------------------------------------------------------------


async def test_an_email_goes_out_through_sendgrid_and_is_retried_on_a_500(
    runtime: Runtime, sendgrid: FakeSendGrid
) -> None:
    settings: Settings = runtime.settings
    settings.email_provider = "sendgrid"
    settings.sendgrid_api_url = sendgrid.url
    settings.sendgrid_api_key = SecretStr(SENDGRID_KEY)
    first = await add_message(runtime, to="fan@example.com", channel="email", subject="Results", body="1. X (3)")
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, first)
    assert (row.status, row.provider_message_id) == ("sent", "sg-000001-Zm9vYmFy")
    [mail] = sendgrid.received
    assert mail["subject"] == "Results" and mail["personalizations"] == [{"to": [{"email": "fan@example.com"}]}]

    second = await add_message(runtime, to="other@example.com", channel="email", subject="Results", body="x")
    sendgrid.answer(500)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, second)
    assert (row.status, row.attempts) == ("queued", 1) and row.next_attempt_at is not None
    await make_due(runtime, second)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert (await message(runtime, second)).status == "sent"


async def test_an_email_goes_out_through_smtp_with_its_message_id(runtime: Runtime, smtp_server: StartSmtp) -> None:
    server = await smtp_server()
    runtime.settings.email_provider = "smtp"
    runtime.settings.smtp_url = ConnectionURL(server.url())
    message_id = await add_message(runtime, to="fan@example.com", channel="email", subject="Thanks", body="Recap")
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    [received] = server.received
    row = await message(runtime, message_id)
    assert row.status == "sent" and row.provider_message_id == received.message["Message-ID"]
    assert received.message["Subject"] == "Thanks" and received.rcpt_tos == ["fan@example.com"]

    server.handler.refuse_rcpt = "550 5.1.1 No such user here"
    refused = await add_message(runtime, to="gone@example.com", channel="email", subject="Thanks", body="Recap")
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, refused)
    assert (row.status, row.attempts) == ("failed", 1) and row.error is not None and "550" in row.error


# --- the recipient is checked again when the message goes out ----------------------------------------------


async def test_a_message_queued_before_an_opt_out_is_not_sent(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    attendee_id = ok(await web_join(client, event["id"], phone), 202)["attendeeId"]
    await settle(runtime)
    pending = await add_message(runtime, to=phone, attendee_id=attendee_id, event_id=event["id"])
    async with unit_of_work(runtime.sessionmaker) as session:  # STOP arrives while the message waits its turn
        await attendees_service.opt_out(session=session, runtime=runtime, phone_number=phone)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert len(twilio.to(phone)) == 1  # the CONFIRM code only
    row = await message(runtime, pending)
    assert row.status == "failed" and row.error is not None and "opted out" in row.error


async def test_a_number_that_texted_stop_while_joining_is_sent_nothing(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    # JOIN and STOP crossed: the join read "not opted out" and wrote the attendee row while the STOP, not
    # yet seeing that row, recorded the number's opt-out and marked the rows it saw. The row the join wrote
    # says opted_out=False; the number's opt-out says otherwise, and wins.
    event = await make_event(client, admin)
    phone = new_phone()
    async with unit_of_work(runtime.sessionmaker) as session:
        session.add(PhoneOptOut(phone_number=phone))
        attendee = Attendee(event_id=event["id"], phone_number=phone, opted_out=False)
        session.add(attendee)
        await session.flush()
        attendee_id = attendee.id
    pending = await add_message(runtime, to=phone, attendee_id=attendee_id, event_id=event["id"])
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert twilio.to(phone) == []
    row = await message(runtime, pending)
    assert row.status == "failed" and row.error is not None and "opted out" in row.error
