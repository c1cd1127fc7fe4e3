"""The web join and confirm: CONFIRM texts, codes and their limits, ballot tokens, access types, rate limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from httpx import AsyncClient

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import (
    age_code,
    attendee_row,
    attendees_of,
    ballot_token_in,
    code_in,
    joined,
    messages,
    web_join,
)
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import ok, problem
from tests.tokens import clock_at

ATTENDEE_KEYS = {"id", "eventId", "phoneNumber", "email", "joinedAt", "confirmedAt", "optedOut", "preRegistered"}


async def confirm(client: AsyncClient, attendee_id: int, code: str) -> dict[str, object]:
    return ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code}))


async def ballot_holder(runtime: Runtime, token: str, event_id: int) -> int:
    """The attendee the app takes a ballot token to speak for at the event (what a vote with it counts as)."""
    async with runtime.sessionmaker() as session:
        found = await attendees_service.attendee_for_ballot(
            session=session, runtime=runtime, ballot_token=token, event_id=event_id
        )
    return found.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unkeyed_digests(code: str, attendee_id: int) -> set[str]:
    """What a table storing the code without a secret would hold: common digests of it, alone or with the id."""
    inputs = [code, f"{attendee_id}:{code}", f"{code}:{attendee_id}", f"{attendee_id}{code}"]
    return {hashlib.new(name, value.encode()).hexdigest() for name in ("md5", "sha1", "sha256") for value in inputs}


async def test_web_join_sends_a_confirm_code_and_confirming_gives_the_ballot(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    answer = await web_join(client, event["id"], "(202) 555-0143", email=" Fan@Example.com ")
    assert answer.status_code == 202
    assert set(answer.json()) == {"attendeeId"}
    attendee_id = answer.json()["attendeeId"]

    await runtime.queue.broker.wait_all()  # type: ignore[attr-defined]  # delivery runs after the answer
    [sent] = await messages(runtime, attendee_id=attendee_id)
    assert (sent.channel, sent.message_type, sent.recipient) == ("sms", "CONFIRM", "+12025550143")
    assert sent.status == "sent"  # the console provider delivered it, through the queue
    assert sent.event_id == event["id"] and sent.sent_at is not None and sent.attempts == 1
    assert event["keyword"] in sent.body
    code = code_in(sent.body)

    row = await attendee_row(runtime, attendee_id)
    assert row.phone_number == "+12025550143" and row.email == "fan@example.com"
    assert row.confirmed_at is None and not row.pre_registered
    # the code is never stored as itself, nor as an unkeyed digest a leaked table could be matched against
    stored = [str(getattr(row, column.key)) for column in Attendee.__table__.columns]
    assert row.confirmation_code_hash is not None and not any(code in value for value in stored)
    assert row.confirmation_code_hash not in unkeyed_digests(code, attendee_id)
    assert row.confirmation_expires_at is not None
    lifetime = row.confirmation_expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < lifetime <= dt.timedelta(minutes=10)

    confirmed = await confirm(client, attendee_id, code)
    attendee = confirmed["attendee"]
    assert isinstance(attendee, dict) and set(attendee) == ATTENDEE_KEYS
    assert attendee["confirmedAt"] is not None and attendee["optedOut"] is False
    token = confirmed["ballotToken"]
    assert isinstance(token, str)
    assert confirmed["ballotUrl"] == f"http://testserver/b/{token}"
    assert await ballot_holder(runtime, token, event["id"]) == attendee_id
    # valid until a day after the event ends
    last_day = dt.datetime.fromisoformat(event["endDate"]) + dt.timedelta(days=1)
    with clock_at(last_day - dt.timedelta(minutes=5)):
        assert ok(await client.get("/ballot", headers=bearer(token)))["eventId"] == event["id"]
    with clock_at(last_day + dt.timedelta(minutes=5)):
        problem(await client.get("/ballot", headers=bearer(token)), 401)

    # the ballot link follows by SMS too, and a second confirm (a double submit) answers the same, once
    again = await confirm(client, attendee_id, code)
    assert again["attendee"] == attendee
    links = await messages(runtime, attendee_id=attendee_id, message_type="CONFIRM")
    assert len(links) == 2
    assert ballot_token_in(links[1].body)

    assert await ballot_holder(runtime, ballot_token_in(links[1].body), event["id"]) == attendee_id


async def test_a_wrong_code_is_422_with_tries_left_and_the_fifth_is_429(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    attendee_id, body = await joined(client, runtime, event["id"], new_phone())
    code = code_in(body)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        r = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": wrong})
        detail = problem(r, 422)
        assert detail["errors"] == [
            {"field": "code", "message": f"wrong code; {left} {'try' if left == 1 else 'tries'} left"}
        ]
    fifth = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": wrong})
    problem(fifth, 429)
    assert 1 <= int(fifth.headers["retry-after"]) <= 600
    # locked: even the right code is refused until the code expires
    locked = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code})
    problem(locked, 429)
    assert (await attendee_row(runtime, attendee_id)).confirmed_at is None

    # joining again issues a new code and resets the tries
    _, body = await joined(client, runtime, event["id"], (await attendee_row(runtime, attendee_id)).phone_number or "")
    fresh = code_in(body)
    assert (await attendee_row(runtime, attendee_id)).confirmation_attempts == 0
    ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": fresh}))


async def test_an_expired_code_is_422_and_joining_again_brings_a_new_one(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    attendee_id, body = await joined(client, runtime, event["id"], phone)
    await age_code(runtime, attendee_id, by=dt.timedelta(minutes=11))
    r = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)})
    assert "expired" in problem(r, 422)["detail"]
    again_id, body = await joined(client, runtime, event["id"], phone)
    assert again_id == attendee_id  # one attendee per (event, phone)
    ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)}))
    assert len(await attendees_of(runtime, phone)) == 1


async def test_the_old_code_stops_working_once_a_new_one_is_sent(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    attendee_id, first = await joined(client, runtime, event["id"], phone)
    for _ in range(3):  # two random codes coincide once in a million joins: then a third join draws again
        _, second = await joined(client, runtime, event["id"], phone)
        if code_in(second) != code_in(first):
            break
    # unconditional: a join that sent the same code again (or left the old one valid) fails here
    problem(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(first)}), 422)
    ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(second)}))


async def test_confirm_refuses_malformed_codes_unknown_attendees_and_attendees_without_a_code(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    attendee_id, _ = await joined(client, runtime, event["id"], new_phone())
    for bad in ("12345", "1234567", "abcdef", ""):
        r = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": bad})
        assert {e["field"] for e in problem(r, 422)["errors"]} == {"code"}
    # an unknown id, and one that was sent no code (pre-registered, never joined), answer as a wrong code
    # does (tests/attendees/test_confirm_lockout.py compares the answers in full)
    wrong = [{"field": "code", "message": "wrong code; 4 tries left"}]
    assert problem(await client.post("/attendees/999999/confirm", json={"code": "123456"}), 422)["errors"] == wrong
    pre = ok(
        await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": new_phone()}, headers=admin.headers),
        201,
    )
    r = await client.post(f"/attendees/{pre['id']}/confirm", json={"code": "123456"})
    assert problem(r, 422)["errors"] == wrong


async def test_joining_a_confirmed_attendee_again_resends_the_ballot_link(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    attendee_id, body = await joined(client, runtime, event["id"], phone)
    ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)}))
    _, body = await joined(client, runtime, event["id"], phone)
    token = ballot_token_in(body)
    assert await ballot_holder(runtime, token, event["id"]) == attendee_id
    assert "already" in body


async def test_without_require_confirmation_the_ballot_link_comes_at_once(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, requireConfirmation=False)
    answer = ok(await web_join(client, event["id"], new_phone()), 202)
    assert set(answer) == {"attendeeId"}  # never the token itself: only the phone gets it
    [sent] = await messages(runtime, attendee_id=answer["attendeeId"])
    assert await ballot_holder(runtime, ballot_token_in(sent.body), event["id"]) == answer["attendeeId"]
    assert (await attendee_row(runtime, answer["attendeeId"])).confirmation_code_hash is None


async def test_languages_follow_the_attendee_then_the_event(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    english = await make_event(client, admin)
    spanish = await make_event(client, admin, language="es")
    _, body = await joined(client, runtime, english["id"], new_phone(), languagePref="es")
    assert body.startswith("Tu clave")
    _, body = await joined(client, runtime, spanish["id"], new_phone())
    assert body.startswith("Tu clave")
    _, body = await joined(client, runtime, spanish["id"], new_phone(), languagePref="en")
    assert body.startswith("Your stagevote code")


async def test_join_validates_the_phone_number_and_the_event(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    published = await make_event(client, admin)
    for bad in ("12345", "not a number", "+1 202 555", "+999 1234567"):
        r = await web_join(client, published["id"], bad)
        assert problem(r, 422)["errors"][0]["field"] == "phoneNumber", bad
    r = await client.post(f"/events/{published['id']}/join", json={"phoneNumber": new_phone(), "email": "nope"})
    assert problem(r, 422)["errors"][0]["field"] == "email"

    live = await make_event(client, admin, status="live")
    ok(await web_join(client, live["id"], new_phone()), 202)
    problem(await web_join(client, 999999, new_phone()), 404)
    draft = await make_event(client, admin, status="draft")
    problem(await web_join(client, draft["id"], new_phone()), 404)
    for status in ("closed", "archived"):
        gone = await make_event(client, admin, status=status)
        problem(await web_join(client, gone["id"], new_phone()), 409)
    assert await messages(runtime, event_id=draft["id"]) == []


async def test_a_private_event_takes_only_pre_registered_numbers(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, access="private")
    stranger = new_phone()
    problem(await web_join(client, event["id"], stranger), 403)
    assert await attendees_of(runtime, stranger) == []
    guest = new_phone()
    ok(await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": guest}, headers=admin.headers), 201)
    attendee_id, body = await joined(client, runtime, event["id"], guest)
    ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)}))


async def test_hybrid_walk_ins_must_confirm_even_without_require_confirmation(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, access="hybrid", requireConfirmation=False)
    _, body = await joined(client, runtime, event["id"], new_phone())
    assert code_in(body)  # a walk-in gets a code
    guest = new_phone()
    ok(await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": guest}, headers=admin.headers), 201)
    _, body = await joined(client, runtime, event["id"], guest)
    assert ballot_token_in(body)  # a pre-registered number gets the ballot at once


async def test_an_opted_out_number_cannot_join_on_the_web(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    async with runtime.sessionmaker() as session:
        await attendees_service.opt_out(session=session, runtime=runtime, phone_number=phone)
        await session.commit()
    r = await web_join(client, event["id"], phone)
    assert "START" in problem(r, 409)["detail"]
    assert await attendees_of(runtime, phone) == []


async def test_web_join_is_rate_limited_per_number_and_per_address(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    per_phone = int(attendees_service.JOIN_RATE_PER_PHONE.split("/")[0])
    for _ in range(per_phone):
        assert (await web_join(client, event["id"], phone)).status_code == 202
    blocked = await web_join(client, event["id"], phone)
    problem(blocked, 429)
    assert int(blocked.headers["retry-after"]) >= 1
    assert len(await messages(runtime, recipient=phone)) == per_phone  # the blocked one sent nothing
    # another number from the same address still joins, until the address's own limit
    per_ip = int(attendees_service.JOIN_RATE_PER_IP.split("/")[0])
    for _ in range(per_ip - per_phone - 1):
        assert (await web_join(client, event["id"], new_phone())).status_code == 202
    r = await web_join(client, event["id"], new_phone())
    problem(r, 429)
    assert "address" in r.json()["detail"]


async def test_concurrent_joins_of_one_number_make_one_attendee(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    answers = await asyncio.gather(*(web_join(client, event["id"], phone) for _ in range(5)))
    assert [r.status_code for r in answers] == [202] * 5
    assert len({r.json()["attendeeId"] for r in answers}) == 1
    [attendee] = await attendees_of(runtime, phone)
    sent = await messages(runtime, attendee_id=attendee.id)
    assert len(sent) == 5
    # the joins took turns: the code of the last text sent is the one that works
    last = max(sent, key=lambda m: m.id)
    ok(await client.post(f"/attendees/{attendee.id}/confirm", json={"code": code_in(last.body)}))
