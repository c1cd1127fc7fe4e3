"""Effectively once after a crash: a send whose outcome is unknown (its worker died, or Twilio's answer was lost) is
checked against Twilio's message list before it may go out again."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox, providers
from stagevote.messaging.models import Message
from tests.factories import new_phone
from tests.messaging.conftest import Answer, FakeTwilio, add_message, make_due, message, settle

BODY = "ROCKFEST: round 2 is open! Vote now."


@pytest.fixture(autouse=True)
def _no_background_sweeper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox.Sweeper, "start", lambda self: None)


async def crashed_send(runtime: Runtime, to: str, *, body: str = BODY) -> tuple[int, dt.datetime]:
    """A row whose worker died after claiming it (its send began past the sending timeout); its id and when."""
    timeout = dt.timedelta(seconds=runtime.settings.delivery_sending_timeout_seconds)
    message_id = await add_message(
        runtime, to=to, body=body, status="sending", attempts=1, age=timeout + dt.timedelta(seconds=5)
    )
    return message_id, (await message(runtime, message_id)).updated_at


async def test_a_send_twilio_took_before_the_worker_died_is_marked_sent_not_sent_again(
    runtime: Runtime, twilio: FakeTwilio
) -> None:
    phone = new_phone()
    message_id, began = await crashed_send(runtime, phone)
    sid = twilio.have(phone, BODY, at=began + dt.timedelta(seconds=1))  # Twilio took it; the worker died then
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert twilio.received == []  # not sent again
    row = await message(runtime, message_id)
    assert (row.status, row.provider_message_id, row.attempts) == ("sent", sid, 1)
    [lookup] = twilio.lookups
    assert lookup["To"] == phone and lookup["DateSent>"] == began.date().isoformat()


async def test_what_twilio_does_not_have_is_sent_again_once(runtime: Runtime, twilio: FakeTwilio) -> None:
    phone, other = new_phone(), new_phone()
    message_id, began = await crashed_send(runtime, phone)
    twilio.have(other, BODY, at=began)  # the same broadcast to someone else
    twilio.have(phone, "Another text", at=began)  # something else to this number
    twilio.have(phone, BODY, at=began - dt.timedelta(minutes=30))  # this text, from an earlier broadcast
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert len(twilio.to(phone)) == 1
    row = await message(runtime, message_id)
    assert (row.status, row.attempts) == ("sent", 2)
    assert await outbox.sweep(runtime) == 0


async def test_a_message_another_row_holds_is_not_taken_for_this_one(runtime: Runtime, twilio: FakeTwilio) -> None:
    # two rows with the same text to the same number (two broadcasts a minute apart): the first one went out
    # and holds Twilio's sid; the second one's worker died before Twilio had it
    phone = new_phone()
    message_id, began = await crashed_send(runtime, phone)
    earlier = twilio.have(phone, BODY, at=began)
    sent = await add_message(runtime, to=phone, body=BODY, status="sent")
    async with unit_of_work(runtime.sessionmaker) as session:
        row = await session.get(Message, sent)
        assert row is not None
        row.provider_message_id = earlier
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert len(twilio.to(phone)) == 1
    row = await message(runtime, message_id)
    assert row.status == "sent" and row.provider_message_id not in (None, earlier)


async def test_when_twilio_cannot_be_asked_the_message_waits_rather_than_going_out_blindly(
    runtime: Runtime, twilio: FakeTwilio
) -> None:
    phone = new_phone()
    message_id, _ = await crashed_send(runtime, phone)
    twilio.scripted_lookups.append(Answer(503, None))
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert twilio.received == []
    row = await message(runtime, message_id)
    assert (row.status, row.attempts) == ("sending", 2)  # the failed look-up counts as an attempt
    assert row.next_attempt_at is not None and row.next_attempt_at > utcnow()
    assert row.error is not None and "list" in row.error
    assert await outbox.sweep(runtime) == 0  # not before its time

    await make_due(runtime, message_id)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert len(twilio.to(phone)) == 1 and len(twilio.lookups) == 2
    assert (await message(runtime, message_id)).status == "sent"


async def test_a_twilio_read_timeout_is_checked_not_retried_blindly(
    runtime: Runtime, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(providers, "HTTP_TIMEOUT", httpx.Timeout(0.5, connect=5.0))
    phone = new_phone()
    message_id = await add_message(runtime, to=phone, body=BODY)
    twilio.take_then_stall(2.0)  # Twilio creates the message; its answer never arrives in time
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    row = await message(runtime, message_id)
    assert (row.status, row.attempts, row.provider_message_id) == ("sending", 1, None)
    assert row.error is not None and "in time" in row.error
    assert await outbox.sweep(runtime) == 0  # Twilio gets time to show it first

    await make_due(runtime, message_id)
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert len(twilio.to(phone)) == 1  # one request in all
    row = await message(runtime, message_id)
    assert (row.status, row.provider_message_id) == ("sent", twilio.created[0]["sid"])


async def test_the_look_up_reads_past_the_first_page(runtime: Runtime, twilio: FakeTwilio) -> None:
    phone = new_phone()
    message_id, began = await crashed_send(runtime, phone)
    sid = twilio.have(phone, BODY, at=began)
    for n in range(providers.LOOKUP_PAGE_SIZE + 5):  # newer texts to the number push it to the second page
        twilio.have(phone, f"Update {n}", at=began + dt.timedelta(seconds=1))
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert twilio.received == [] and len(twilio.lookups) == 2
    assert (await message(runtime, message_id)).provider_message_id == sid
