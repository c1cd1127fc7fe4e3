"""Confirmation under attack: limits per caller and per attendee, unknown ids that tell nothing, and a phone
that can always confirm itself by SMS, whatever wrong tries were made on the web."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from pydantic import SecretStr

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import attendee_row, ballot_token_in, code_in, joined
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import ok, problem
from tests.sms.conftest import AUTH_TOKEN, Phone

PER_IP = 8
PER_ATTENDEE = 7


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small limits, so that a test reaches them; the Twilio token signs the phone's texts."""
    return settings.model_copy(
        update={
            "confirm_rate_per_ip": f"{PER_IP}/minute",
            "confirm_rate_per_attendee": f"{PER_ATTENDEE}/10 minutes",
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_account_sid": "AC" + "0" * 32,
        }
    )


@asynccontextmanager
async def caller(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    """A client whose connection comes from `address` (no proxy in between)."""
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def confirm(client: AsyncClient, attendee_id: int, code: str) -> Response:
    return await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code})


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def answer(r: Response) -> tuple[int, Any, str | None]:
    """What a caller sees of an answer, but for the request id: status, body, Retry-After."""
    return r.status_code, r.json(), r.headers.get("retry-after")


async def test_an_unknown_id_is_answered_exactly_as_a_wrong_code(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    real, body = await joined(client, runtime, event["id"], new_phone())
    pre = ok(
        await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": new_phone()}, headers=admin.headers),
        201,
    )
    erased_id, _ = await joined(client, runtime, event["id"], new_phone())
    async with unit_of_work(runtime.sessionmaker) as session:  # erased: personal data gone, the row stays
        row = await session.get(Attendee, erased_id)
        assert row is not None
        row.erased_at, row.phone_number = utcnow(), None
    wrong = other_than(code_in(body))
    sequences: dict[str, list[tuple[int, Any, str | None]]] = {}
    # each id from an address of its own: the per-address limit is not what is compared here
    ids = {"pending code": real, "unknown": real + 1000, "never sent one": pre["id"], "erased": erased_id}
    for n, (name, attendee_id) in enumerate(ids.items()):
        async with caller(app, f"198.51.100.{n + 1}") as http:
            sequences[name] = [answer(await confirm(http, attendee_id, wrong)) for _ in range(6)]
    expected = sequences["pending code"]
    assert [status for status, _, _ in expected] == [422, 422, 422, 422, 429, 429]
    assert expected[0][1]["errors"] == [{"field": "code", "message": "wrong code; 4 tries left"}]
    # a pending code's time left would date the fan's join: the lock says a code's whole lifetime
    assert expected[4][2] == str(int(attendees_service.CODE_LIFETIME.total_seconds()))
    for name, seen in sequences.items():
        assert seen == expected, name
    # an id past any column's range, too
    async with caller(app, "198.51.100.99") as http:
        assert answer(await confirm(http, 10**20, wrong)) == expected[0]


async def test_confirm_is_limited_per_caller_address_and_ipv6_per_64(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    attendee_id, body = await joined(client, runtime, event["id"], new_phone())
    # a sweep over ids from one address: each id is tried once, yet the address runs out
    async with caller(app, "2001:db8:1:2::10") as sweeper:
        for n in range(PER_IP):
            problem(await confirm(sweeper, 5000 + n, "123456"), 422)
        limited = await confirm(sweeper, attendee_id, code_in(body))
    assert problem(limited, 429)["detail"].startswith("Too many confirmation attempts from this address")
    assert int(limited.headers["retry-after"]) >= 1
    # another address of the same /64 is the same caller
    async with caller(app, "2001:db8:1:2::99") as neighbour:
        problem(await confirm(neighbour, attendee_id, code_in(body)), 429)
    # the fan, elsewhere, is not held up: the refused attempts spent none of the code's tries
    async with caller(app, "2001:db8:1:3::10") as fan:
        ok(await confirm(fan, attendee_id, code_in(body)))


async def test_confirm_is_limited_per_attendee_whoever_calls(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    attendee_id, body = await joined(client, runtime, event["id"], new_phone())
    for n in range(PER_ATTENDEE):
        async with caller(app, f"203.0.113.{n + 1}") as http:
            await confirm(http, attendee_id, code_in(body))  # right or not, each counts
    async with caller(app, "203.0.113.200") as http:
        limited = await confirm(http, attendee_id, code_in(body))
        assert problem(limited, 429)["detail"].startswith("Too many confirmation attempts")
        # an unknown id has the same budget
        for _ in range(PER_ATTENDEE):
            await confirm(http, 777_777, "123456")
    async with caller(app, "203.0.113.201") as http:
        problem(await confirm(http, 777_777, "123456"), 429)


async def test_wrong_tries_on_the_web_never_lock_the_phone_out(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    phone = Phone(client, new_phone())
    attendee_id, body = await joined(client, runtime, event["id"], phone.number)
    code = code_in(body)
    # someone else burns every try of the code on the web
    for n in range(5):
        async with caller(app, f"192.0.2.{n + 1}") as attacker:
            await confirm(attacker, attendee_id, other_than(code))
    async with caller(app, "192.0.2.50") as fan_on_the_web:
        problem(await confirm(fan_on_the_web, attendee_id, code), 429)  # the web path is locked
    assert (await attendee_row(runtime, attendee_id)).confirmed_at is None
    # the code texted from the fan's own phone (a signed webhook) still confirms, and brings the ballot
    reply = await phone.text(code) or ""
    token = ballot_token_in(reply)
    assert (await attendee_row(runtime, attendee_id)).confirmed_at is not None
    async with unit_of_work(runtime.sessionmaker) as session:
        found = await attendees_service.attendee_for_ballot(
            session=session, runtime=runtime, ballot_token=token, event_id=event["id"]
        )
    assert found.id == attendee_id


async def test_codes_are_ascii_digits_only(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    event = await make_event(client, admin)
    phone = Phone(client, new_phone())
    attendee_id, body = await joined(client, runtime, event["id"], phone.number)
    code = code_in(body)
    arabic_indic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    fullwidth = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for foreign in (arabic_indic, fullwidth, "１２３４５６"):
        r = await confirm(client, attendee_id, foreign)
        assert [e["field"] for e in problem(r, 422)["errors"]] == ["code"]
        # a text of such digits is not taken for a code either: no try is spent on it
        await phone.text(foreign)
    assert (await attendee_row(runtime, attendee_id)).confirmation_attempts == 0
    ok(await confirm(client, attendee_id, code))
