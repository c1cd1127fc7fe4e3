"""Twilio's inbound webhook: signatures, acting once per MessageSid, JOIN, codes, STOP/START/HELP, languages."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import func, select

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.messaging.models import Message
from stagevote.sms.models import InboundMessage
from tests.attendees.conftest import (
    age_code,
    attendees_of,
    ballot_token_in,
    code_in,
    joined,
    messages,
    opted_out_numbers,
)
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import ok, problem
from tests.sms.conftest import OUR_NUMBER, WEBHOOK, Phone, reply_of, sign


async def count(runtime: Runtime, model: type) -> int:
    async with unit_of_work(runtime.sessionmaker) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- signatures -------------------------------------------------------------------------------------


async def test_a_missing_or_forged_signature_is_403_and_changes_nothing(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    event = await make_event(client, admin)
    params = {"MessageSid": "SM" + "1" * 32, "From": phone.number, "To": OUR_NUMBER, "Body": f"JOIN {event['keyword']}"}
    attempts = [
        {},  # no signature
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        {"X-Twilio-Signature": sign(WEBHOOK, params, token="another-token")},  # signed by someone else
        {"X-Twilio-Signature": sign("/sms/other", params)},  # for another URL
        {"X-Twilio-Signature": sign(WEBHOOK, {**params, "Body": "STOP"})},  # for another body
    ]
    for headers in attempts:
        r = await client.post(WEBHOOK, data=params, headers=headers)
        problem(r, 403)
    for model in (Attendee, Message, InboundMessage):
        assert await count(runtime, model) == 0
    # the genuine article goes through
    r = await client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": sign(WEBHOOK, params)})
    assert "Welcome" in (reply_of(r) or "")


async def test_without_an_auth_token_configured_every_webhook_is_refused(
    client: AsyncClient, runtime: Runtime, phone: Phone
) -> None:
    runtime.settings.twilio_auth_token = None
    try:
        r = await phone.send("HELP")
        problem(r, 403)
    finally:
        runtime.settings.twilio_auth_token = SecretStr("test-token")
    assert await count(runtime, InboundMessage) == 0


async def test_the_signature_covers_the_query_string(client: AsyncClient, phone: Phone) -> None:
    params = {"MessageSid": "SM" + "2" * 32, "From": phone.number, "To": OUR_NUMBER, "Body": "HELP"}
    good = sign(f"{WEBHOOK}?source=venue", params)
    r = await client.post(f"{WEBHOOK}?source=venue", data=params, headers={"X-Twilio-Signature": good})
    assert "stagevote" in (reply_of(r) or "")
    r = await client.post(f"{WEBHOOK}?source=other", data=params, headers={"X-Twilio-Signature": good})
    problem(r, 403)


async def test_a_signed_request_without_message_sid_or_from_is_422(client: AsyncClient) -> None:
    params = {"From": "+12025550101", "Body": "HELP"}
    r = await client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": sign(WEBHOOK, params)})
    assert problem(r, 422)["errors"][0]["field"] == "MessageSid"


# --- acting once per MessageSid ---------------------------------------------------------------------


async def test_the_same_message_sid_twice_gets_the_same_reply_and_acts_once(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    event = await make_event(client, admin)
    first = await phone.send(f"JOIN {event['keyword']}", sid="SMfixed0001")
    again = await phone.send(f"JOIN {event['keyword']}", sid="SMfixed0001")
    assert first.text == again.text
    assert code_in(reply_of(first) or "")
    assert len(await attendees_of(runtime, phone.number)) == 1
    assert len(await messages(runtime, recipient=phone.number)) == 1
    assert await count(runtime, InboundMessage) == 1


async def test_concurrent_deliveries_of_one_message_sid_act_once(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    event = await make_event(client, admin)
    answers = await asyncio.gather(*(phone.send(event["keyword"], sid="SMsame0002") for _ in range(5)))
    assert len({r.text for r in answers}) == 1
    assert all(r.status_code == 200 for r in answers)
    assert len(await attendees_of(runtime, phone.number)) == 1
    assert len(await messages(runtime, recipient=phone.number)) == 1


# --- joining ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["JOIN {kw}", "join {kw}", "  Join   {kw_lower} ", "{kw}", "{kw_lower}.", "JOIN {kw}!"]
)
async def test_joining_by_keyword_in_any_case_and_spacing(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone, body: str
) -> None:
    event = await make_event(client, admin, status="live")
    text = body.format(kw=event["keyword"], kw_lower=event["keyword"].lower())
    reply = await phone.text(text) or ""
    assert reply.startswith(f"Welcome to {event['keyword']}!")
    assert "STOP" in reply and "HELP" in reply
    [attendee] = await attendees_of(runtime, phone.number)
    assert attendee.event_id == event["id"] and attendee.language_pref is None
    [recorded] = await messages(runtime, recipient=phone.number)
    assert (recorded.message_type, recorded.status, recorded.channel) == ("JOIN", "sent", "sms")
    assert (recorded.attendee_id, recorded.event_id, recorded.body) == (attendee.id, event["id"], reply)
    assert recorded.sent_at is not None


async def test_texting_the_code_back_confirms_and_answers_the_ballot_link(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    event = await make_event(client, admin)
    code = code_in(await phone.text(f"JOIN {event['keyword']}") or "")
    reply = await phone.text(f" {code[:3]} {code[3:]} ") or ""
    token = ballot_token_in(reply)
    [attendee] = await attendees_of(runtime, phone.number)
    assert attendee.confirmed_at is not None
    async with runtime.sessionmaker() as session:  # the token is a real ballot: it resolves to this attendee
        found = await attendees_service.attendee_for_ballot(
            session=session, runtime=runtime, ballot_token=token, event_id=event["id"]
        )
    assert found.id == attendee.id
    types = [m.message_type for m in await messages(runtime, recipient=phone.number)]
    assert types == ["JOIN", "CONFIRM"]
    # the same code again: the link again
    assert ballot_token_in(await phone.text(code) or "")
    # joining once more: "already in", with the link
    assert "already" in (await phone.text(event["keyword"]) or "")


async def test_wrong_expired_and_unexpected_codes_by_sms(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone, another_phone: Phone
) -> None:
    event = await make_event(client, admin)
    code = code_in(await phone.text(event["keyword"]) or "")
    wrong = "000000" if code != "000000" else "111111"
    assert "4 tries left" in (await phone.text(wrong) or "")
    for _ in range(3):
        await phone.text(wrong)
    assert "Too many wrong codes" in (await phone.text(wrong) or "")
    # locked, yet the right code texted from the phone itself still confirms: the phone is the proof
    assert ballot_token_in(await phone.text(code) or "")
    # an expired code does not
    late = Phone(client, new_phone())
    code = code_in(await late.text(event["keyword"]) or "")
    [attendee] = await attendees_of(runtime, late.number)
    await age_code(runtime, attendee.id, by=dt.timedelta(minutes=11))
    assert "expired" in (await late.text(code) or "")
    # a number that was sent no code
    assert "No code" in (await another_phone.text("123456") or "")


async def test_web_join_then_code_by_sms(client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone) -> None:
    event = await make_event(client, admin)
    _, body = await joined(client, runtime, event["id"], phone.number)
    assert ballot_token_in(await phone.text(code_in(body)) or "")


async def test_without_require_confirmation_joining_answers_the_ballot_link(
    client: AsyncClient, admin: Actor, phone: Phone
) -> None:
    event = await make_event(client, admin, requireConfirmation=False)
    reply = await phone.text(f"JOIN {event['keyword']}") or ""
    assert ballot_token_in(reply) and reply.startswith("Welcome")


async def test_unknown_keywords_drafts_and_closed_events_get_help_to_join(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    draft = await make_event(client, admin, status="draft")
    closed = await make_event(client, admin, status="closed")
    for keyword in ("NOSUCHEVENT", draft["keyword"], closed["keyword"]):
        reply = await phone.text(f"JOIN {keyword}") or ""
        assert reply.startswith(f"We found no open event called {keyword}"), reply
    assert "JOIN + the event keyword" in (await phone.text("JOIN") or "")
    assert await attendees_of(runtime, phone.number) == []


async def test_a_private_event_refuses_unknown_numbers_politely(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone, another_phone: Phone
) -> None:
    event = await make_event(client, admin, access="private")
    ok(
        await client.post(
            f"/events/{event['id']}/attendees", json={"phoneNumber": another_phone.number}, headers=admin.headers
        ),
        201,
    )
    reply = await phone.text(f"JOIN {event['keyword']}") or ""
    assert "private event" in reply and "guest list" in reply
    assert await attendees_of(runtime, phone.number) == []
    [recorded] = await messages(runtime, recipient=phone.number)
    assert (recorded.message_type, recorded.event_id, recorded.attendee_id) == ("JOIN", event["id"], None)
    # the pre-registered number gets in
    assert code_in(await another_phone.text(f"JOIN {event['keyword']}") or "")


async def test_unirme_answers_in_spanish_from_then_on(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    event = await make_event(client, admin)
    reply = await phone.text(f"unirme {event['keyword']}") or ""
    assert reply.startswith(f"¡Te damos la bienvenida a {event['keyword']}!")
    [attendee] = await attendees_of(runtime, phone.number)
    assert attendee.language_pref == "es"
    assert (await phone.text("HELP") or "").startswith("stagevote: vota en vivo")
    assert "Esa clave no coincide" in (await phone.text("999999" if code_in(reply) != "999999" else "888888") or "")


async def test_an_event_in_spanish_answers_in_spanish(
    client: AsyncClient, admin: Actor, phone: Phone, another_phone: Phone
) -> None:
    event = await make_event(client, admin, language="es")
    assert (await phone.text(f"JOIN {event['keyword']}") or "").startswith("¡Te damos la bienvenida")
    # a stranger writing a Spanish command word gets Spanish too
    assert (await another_phone.text("AYUDA") or "").startswith("stagevote: vota en vivo")
    # anything else is answered in the language of the number's latest event, English for a stranger
    assert (await phone.text("hola") or "").startswith("No entendimos")
    assert (await another_phone.text("hola") or "").startswith("stagevote didn't get that")


# --- STOP, START, HELP, and everything else ---------------------------------------------------------


async def test_help_names_the_program_and_how_to_stop(phone: Phone) -> None:
    for word in ("HELP", "help", " Info "):
        reply = await phone.text(word) or ""
        assert reply.startswith("stagevote:") and "STOP" in reply and "JOIN" in reply


async def test_unknown_texts_get_how_to_join_and_vote(runtime: Runtime, phone: Phone) -> None:
    for body in ("hello there", "what?", "", "🎸"):
        reply = await phone.text(body) or ""
        assert "JOIN" in reply and "VOTE" in reply, body
    recorded = await messages(runtime, recipient=phone.number)
    assert {m.message_type for m in recorded} == {"REPLY"}


@pytest.mark.parametrize("stop_word", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT"])
async def test_stop_silences_the_number_everywhere_until_start(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone, stop_word: str
) -> None:
    first = await make_event(client, admin)
    second = await make_event(client, admin)
    await phone.text(first["keyword"])
    await phone.text(second["keyword"])
    reply = await phone.text(stop_word) or ""
    assert "unsubscribed" in reply and "START" in reply
    assert phone.number in await opted_out_numbers(runtime)
    assert all(a.opted_out for a in await attendees_of(runtime, phone.number))
    before = len(await messages(runtime, recipient=phone.number))

    # nothing more: no reply, and nothing changes (no code, no join, no vote)
    [row] = [a for a in await attendees_of(runtime, phone.number) if a.event_id == first["id"]]
    for body in (first["keyword"], "JOIN " + second["keyword"], "123456", "VOTE 1", "hello", stop_word):
        assert await phone.text(body) is None, body
    assert len(await messages(runtime, recipient=phone.number)) == before
    [after] = [a for a in await attendees_of(runtime, phone.number) if a.event_id == first["id"]]
    assert after.confirmation_code_hash == row.confirmation_code_hash

    # a web join is refused too, and the web sends nothing
    problem(await client.post(f"/events/{first['id']}/join", json={"phoneNumber": phone.number}), 409)

    # HELP still answers, START opts back in
    assert "stagevote" in (await phone.text("HELP") or "")
    assert "subscribed again" in (await phone.text("START") or "")
    assert phone.number not in await opted_out_numbers(runtime)
    assert not any(a.opted_out for a in await attendees_of(runtime, phone.number))
    assert code_in(await phone.text(first["keyword"]) or "")
    types = [m.message_type for m in await messages(runtime, recipient=phone.number)]
    assert types == ["JOIN", "JOIN", "STOP", "HELP", "REPLY", "JOIN"]


async def test_stop_from_a_number_we_never_met_is_kept(runtime: Runtime, phone: Phone) -> None:
    assert "unsubscribed" in (await phone.text("STOP") or "")
    assert phone.number in await opted_out_numbers(runtime)
    assert "subscribed again" in (await phone.text("unstop") or "")


async def test_an_opted_out_number_is_opted_out_when_it_is_pre_registered(
    client: AsyncClient, admin: Actor, phone: Phone
) -> None:
    await phone.text("STOP")
    event = await make_event(client, admin, access="private")
    r = await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": phone.number}, headers=admin.headers)
    assert ok(r, 201)["optedOut"] is True


async def test_a_sender_that_is_not_a_phone_number_gets_an_empty_answer(client: AsyncClient, runtime: Runtime) -> None:
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": "VENUE", "To": OUR_NUMBER, "Body": "HELP"}
    r = await client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": sign(WEBHOOK, params)})
    assert reply_of(r) is None
    assert await count(runtime, Message) == 0
