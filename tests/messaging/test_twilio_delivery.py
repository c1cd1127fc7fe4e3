"""Outbound SMS through Twilio's REST API (a loopback twin of it): rows first, delivery after commit, status reports."""

from __future__ import annotations

from httpx import AsyncClient
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox
from stagevote.messaging import service as messaging_service
from tests.attendees.conftest import code_in, messages
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import ok, problem
from tests.messaging.conftest import AUTH_TOKEN, OUR_NUMBER, UNREACHABLE_NUMBER, FakeTwilio, settle


async def report_status(client: AsyncClient, sid: str, status: str, *, token: str = AUTH_TOKEN) -> int:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "a" * 32}
    signature = RequestValidator(token).compute_signature("http://testserver/sms/status", params)
    r = await client.post("/sms/status", data=params, headers={"X-Twilio-Signature": signature})
    return r.status_code


async def test_a_web_join_sends_the_code_through_twilio(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    attendee_id = ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": phone}), 202)["attendeeId"]
    [queued] = await messages(runtime, attendee_id=attendee_id)
    assert queued.status in ("queued", "sending", "sent")  # the row is there when the answer is; delivery follows
    await settle(runtime)

    [form] = twilio.received
    assert form["To"] == phone and form["From"] == OUR_NUMBER
    assert form["StatusCallback"] == "http://testserver/sms/status"
    assert "MessagingServiceSid" not in form
    [sent] = await messages(runtime, attendee_id=attendee_id)
    assert sent.body == form["Body"] and code_in(sent.body)
    assert (sent.status, sent.provider_message_id, sent.error) == ("sent", f"SM{1:032x}", None)
    assert sent.sent_at is not None and sent.attempts == 1

    # Twilio's status callbacks move it forward, never back
    assert await report_status(client, f"SM{1:032x}", "delivered") == 204
    assert (await messages(runtime, attendee_id=attendee_id))[0].status == "delivered"
    assert await report_status(client, f"SM{1:032x}", "sent") == 204  # late and older: ignored
    assert await report_status(client, f"SM{1:032x}", "queued") == 204  # interim: ignored
    assert await report_status(client, f"SM{1:032x}", "failed") == 204  # final already: ignored
    assert (await messages(runtime, attendee_id=attendee_id))[0].status == "delivered"
    assert await report_status(client, "SMunknown", "delivered") == 204
    # the report that moved it is counted (once: the ignored ones are not)
    metrics = (await client.get("/metrics")).text
    assert 'stagevote_messages_total{channel="sms",status="delivered"} 1.0' in metrics
    assert 'status="failed"} 1.0' not in metrics
    # an unsigned or forged report changes nothing
    assert await report_status(client, f"SM{1:032x}", "undelivered", token="forged") == 403


async def test_a_messaging_service_sid_replaces_the_from_number(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    runtime.settings.twilio_messaging_service_sid = "MG" + "b" * 32
    event = await make_event(client, admin)
    ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}), 202)
    await settle(runtime)
    [form] = twilio.received
    assert form["MessagingServiceSid"] == "MG" + "b" * 32 and "From" not in form


async def test_a_refusal_marks_the_message_failed_and_an_unreachable_twilio_leaves_it_for_a_retry(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    event = await make_event(client, admin)
    attendee_id = ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": UNREACHABLE_NUMBER}), 202)[
        "attendeeId"
    ]
    await settle(runtime)
    [failed] = await messages(runtime, attendee_id=attendee_id)
    assert failed.status == "failed" and failed.provider_message_id is None and failed.sent_at is None
    assert failed.error is not None and "21211" in failed.error
    assert failed.attempts == 1 and failed.next_attempt_at is None

    runtime.settings.twilio_auth_token = SecretStr("wrong")
    other = ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}), 202)
    await settle(runtime)
    [refused] = await messages(runtime, attendee_id=other["attendeeId"])
    assert refused.status == "failed" and refused.error is not None and "401" in refused.error

    runtime.settings.twilio_auth_token = SecretStr(AUTH_TOKEN)
    runtime.settings.twilio_api_url = "http://127.0.0.1:1"
    third = ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}), 202)
    await settle(runtime)
    [unreachable] = await messages(runtime, attendee_id=third["attendeeId"])
    assert unreachable.status == "queued" and unreachable.next_attempt_at is not None  # tried again later
    assert unreachable.attempts == 1 and unreachable.error is not None and "reached" in unreachable.error


async def test_a_message_is_delivered_once_and_never_to_an_opted_out_attendee(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    event = await make_event(client, admin)
    attendee_id = ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}), 202)[
        "attendeeId"
    ]
    await settle(runtime)
    [sent] = await messages(runtime, attendee_id=attendee_id)
    await outbox.deliver(runtime, sent.id)  # a retried task
    assert len(twilio.received) == 1
    assert (await messages(runtime, attendee_id=attendee_id))[0].attempts == 1

    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await session.get(Attendee, attendee_id)
        assert attendee is not None
        attendee.opted_out = True
        skipped = await messaging_service.send_sms(
            session=session, runtime=runtime, attendee=attendee, body="hello", message_type="CUSTOM"
        )
    assert skipped is None
    assert len(await messages(runtime, attendee_id=attendee_id)) == 1
    assert len(twilio.received) == 1


async def test_nothing_is_sent_when_the_unit_of_work_rolls_back(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    event = await make_event(client, admin)
    attendee_id = ok(await client.post(f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}), 202)[
        "attendeeId"
    ]

    class Abort(Exception):
        pass

    try:
        async with unit_of_work(runtime.sessionmaker) as session:
            attendee = await session.get(Attendee, attendee_id)
            assert attendee is not None
            await messaging_service.send_sms(
                session=session, runtime=runtime, attendee=attendee, body="never", message_type="CUSTOM"
            )
            raise Abort
    except Abort:
        pass
    await settle(runtime)
    assert [m.body for m in await messages(runtime, attendee_id=attendee_id)] != ["never"]
    assert len(await messages(runtime, attendee_id=attendee_id)) == 1
    assert len(twilio.received) == 1


async def test_status_reports_need_the_fields(client: AsyncClient) -> None:
    params = {"MessageSid": "SM1"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/sms/status", params)
    r = await client.post("/sms/status", data=params, headers={"X-Twilio-Signature": signature})
    assert problem(r, 422)["errors"][0]["field"] == "MessageStatus"
