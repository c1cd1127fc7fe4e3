"""Codes and ballot links reach the fan's phone, and nowhere else: not `messages.body`, not `inbound_messages.reply`,
not the history API, whoever reads it (an admin's read-only API key included)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text
from twilio.request_validator import RequestValidator

from stagevote.config import Settings
from stagevote.core.db import create_engine, unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox, sealing
from stagevote.messaging.models import Message
from stagevote.migrations import upgrade
from stagevote.sms.models import InboundMessage
from tests.attendees.conftest import web_join
from tests.conftest import Actor
from tests.factories import build_stage, make_event, new_phone
from tests.http import ok
from tests.messaging.conftest import AUTH_TOKEN, OUR_NUMBER, FakeTwilio, add_message, message, settle

CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
TOKEN = re.compile(r"/b/(eyJ[\w-]+\.[\w-]+\.[\w-]+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"sms_per_second": 100_000, "round_clock_seconds": 0})


@pytest.fixture(autouse=True)
def _no_background_sweeper(monkeypatch: pytest.MonkeyPatch) -> None:
    # rows written straight to the table go out when a test sweeps (commits still wake the dispatcher)
    monkeypatch.setattr(outbox.Sweeper, "start", lambda self: None)


async def stored_rows(runtime: Runtime) -> list[Message]:
    async with unit_of_work(runtime.sessionmaker) as session:
        return list((await session.scalars(select(Message).order_by(Message.id))).all())


async def read_only_key(client: AsyncClient, admin: Actor) -> dict[str, str]:
    key = ok(await client.post("/auth/api-keys", json={"name": "dashboard"}, headers=admin.headers), 201)
    return {"Authorization": f"Bearer {key['key']}"}


async def history_text(client: AsyncClient, event_id: int, headers: dict[str, str]) -> str:
    answer = await client.get(f"/events/{event_id}/messages", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.text


async def no_dispatch(self: outbox.Outbox) -> int:
    return 0


async def test_a_confirmation_code_goes_to_the_phone_and_is_stored_nowhere_in_clear(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = await make_event(client, admin)
    phone = new_phone()
    with monkeypatch.context() as held:  # the message waits for its turn: what is stored meanwhile?
        held.setattr(outbox.Outbox, "dispatch", no_dispatch)
        attendee_id = ok(await web_join(client, event["id"], phone), 202)["attendeeId"]
        await settle(runtime)
        [waiting] = await stored_rows(runtime)
        waiting_history = await history_text(client, event["id"], admin.headers)
    assert waiting.status == "queued"
    await outbox.sweep(runtime)
    await settle(runtime)
    [form] = twilio.received
    code = CODE.search(form["Body"])
    assert code is not None  # the provider got the real text

    [row] = await stored_rows(runtime)
    for kept in (waiting, row):
        assert code.group() not in kept.body and sealing.CODE_MARK in kept.body
        assert kept.sealed_body is not None and code.group() not in kept.sealed_body
    assert code.group() not in waiting_history and "[code]" in waiting_history
    for headers in (admin.headers, await read_only_key(client, admin)):
        shown = await history_text(client, event["id"], headers)
        assert code.group() not in shown and "[code]" in shown
    # and it is the code that confirms
    confirmed = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code.group()})
    assert confirmed.status_code == 200, confirmed.text


async def test_ballot_links_go_to_the_phones_and_are_stored_nowhere_in_clear(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = await build_stage(client, runtime, admin)
    ballots = [await stage.ballot() for _ in range(3)]
    nudge = {"channel": "sms", "messageType": "NUDGE"}
    with monkeypatch.context() as held:  # the messages wait for their turn: what is stored meanwhile?
        held.setattr(outbox.Outbox, "dispatch", no_dispatch)
        answer = ok(await client.post(f"/events/{stage.event_id}/messages", json=nudge, headers=admin.headers), 202)
        await settle(runtime)
        waiting = await stored_rows(runtime)
    assert answer["queued"] == len(ballots) and {row.status for row in waiting} == {"queued"}
    await outbox.sweep(runtime)
    await settle(runtime)

    tokens = [TOKEN.search(form["Body"]) for form in twilio.received]
    assert len(tokens) == len(ballots) and all(tokens)
    for row in [*waiting, *await stored_rows(runtime)]:
        assert "eyJ" not in row.body and "/b/[token]" in row.body
        assert row.sealed_body is not None and "eyJ" not in row.sealed_body
    shown = await history_text(client, stage.event_id, await read_only_key(client, admin))
    assert "eyJ" not in shown and "/b/[token]" in shown
    # what the phones got votes
    found = tokens[0]
    assert found is not None
    vote = {"round": 1, "artistId": stage.artists["Owls"], "token": f"sec-{uuid.uuid4().hex}"}
    headers = {"Authorization": f"Bearer {found.group(1)}"}
    assert (await client.post(f"/events/{stage.event_id}/vote", json=vote, headers=headers)).status_code == 201


async def inbound(client: AsyncClient, phone: str, body: str, sid: str) -> str:
    params = {"MessageSid": sid, "AccountSid": "AC" + "a" * 32, "From": phone, "To": OUR_NUMBER, "Body": body}
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/sms/join", params)
    answer = await client.post("/sms/join", data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    return answer.text


async def test_sms_replies_carry_the_code_and_the_link_but_keep_neither(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, status="live")
    phone = new_phone()
    welcome = await inbound(client, phone, f"JOIN {event['keyword']}", "SMjoin0001")
    code = CODE.search(welcome)
    assert code is not None
    # a repeated MessageSid gets the same answer, code and all, from what was kept
    assert await inbound(client, phone, f"JOIN {event['keyword']}", "SMjoin0001") == welcome
    confirmed = await inbound(client, phone, code.group(), "SMcode0002")
    assert TOKEN.search(confirmed)

    async with unit_of_work(runtime.sessionmaker) as session:
        replies = list((await session.scalars(select(InboundMessage))).all())
    assert len(replies) == 2
    for kept in replies:
        assert kept.reply is not None and code.group() not in kept.reply and "eyJ" not in kept.reply
        assert kept.sealed_reply is not None
    for row in await stored_rows(runtime):
        assert code.group() not in row.body and "eyJ" not in row.body
    shown = await history_text(client, event["id"], await read_only_key(client, admin))
    assert code.group() not in shown and "eyJ" not in shown and "[code]" in shown and "/b/[token]" in shown


async def test_a_row_written_before_texts_were_sealed_is_shown_redacted_and_redacted_once_sent(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    event = await make_event(client, admin)
    link = "http://testserver/b/eyJhbGciOiJIUzI1NiJ9.eyJhdHQiOjF9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    phone = new_phone()
    message_id = await add_message(runtime, to=phone, body=f"Vote: {link}", event_id=event["id"])
    shown = await history_text(client, event["id"], admin.headers)
    assert "eyJ" not in shown and "/b/[token]" in shown
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert twilio.to(phone)[0]["Body"] == f"Vote: {link}"
    row = await message(runtime, message_id)
    assert row.status == "sent" and row.body == "Vote: http://testserver/b/[token]"


async def test_a_sealed_text_from_another_secret_key_fails_saying_so(runtime: Runtime, twilio: FakeTwilio) -> None:
    stored = sealing.seal("another-key-" + "y" * 40, "Your code is 123456", "CONFIRM")
    message_id = await add_message(runtime, to=new_phone(), body=stored.body)
    async with unit_of_work(runtime.sessionmaker) as session:
        row = await session.get(Message, message_id)
        assert row is not None
        row.sealed_body = stored.sealed
    assert await outbox.sweep(runtime) == 1
    await settle(runtime)
    assert twilio.received == []
    row = await message(runtime, message_id)
    assert row.status == "failed" and row.error is not None and "SECRET_KEY" in row.error


@pytest.mark.parametrize(
    ("message_type", "said", "kept"),
    [
        ("CONFIRM", "Code for ROCK24: 004217. Reply in 10 min.", "Code for ROCK24: [code]. Reply in 10 min."),
        ("JOIN", "Welcome to ROCK24! Your code is 918273.", "Welcome to ROCK24! Your code is [code]."),
        ("RESULTS", "ROCK24: 1. Owls (123456), 2. Foxes (99)", "ROCK24: 1. Owls (123456), 2. Foxes (99)"),
        ("NUDGE", "Vote: https://v.example/b/eyJhbGciOiJIUzI1NiJ9.eyJhdHQiOjJ9.sig_nature-1", "Vote: https://v.example/b/[token]"),
        ("CUSTOM", "Ballot: https://v.example/b/opaque-token-0123456789", "Ballot: https://v.example/b/[token]"),
    ],
)  # fmt: skip
def test_what_is_redacted(message_type: str, said: str, kept: str) -> None:
    stored = sealing.seal("k" * 48, said, message_type)
    assert stored.body == kept
    assert sealing.unseal("k" * 48, stored.body, stored.sealed) == said
    assert (stored.sealed is None) is (said == kept)


async def test_the_migration_redacts_texts_already_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    await upgrade(url, "0003")
    engine = create_engine(url, pool_size=1)
    rows: list[dict[str, Any]] = [
        {"id": 1, "status": "sent", "type": "CONFIRM", "body": "Your code is 123456"},
        {"id": 2, "status": "delivered", "type": "NUDGE", "body": "Vote: http://x/b/eyJhIjoxfQ.eyJiIjoyfQ.c2ln"},
        {"id": 3, "status": "queued", "type": "CONFIRM", "body": "Your code is 654321"},  # redacted once sent
        {"id": 4, "status": "sent", "type": "RESULTS", "body": "1. Owls (123456)"},
    ]
    async with engine.begin() as connection:
        for row in rows:
            await connection.execute(
                text(
                    "INSERT INTO messages (id, channel, message_type, status, body, attempts, created_at, updated_at)"
                    " VALUES (:id, 'sms', :type, :status, :body, 0, '2026-01-01', '2026-01-01')"
                ),
                row,
            )
        await connection.execute(
            text(
                "INSERT INTO inbound_messages (message_sid, from_number, body, reply, received_at) VALUES ('SM1',"
                " '+12025550100', '123456', '<Response><Message>Code 123456</Message></Response>', '2026-01-01')"
            )
        )
    await engine.dispose()
    await upgrade(url)
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as connection:
        bodies = dict((await connection.execute(text("SELECT id, body FROM messages"))).all())
        reply = (await connection.execute(text("SELECT reply FROM inbound_messages"))).scalar_one()
    await engine.dispose()
    assert bodies == {
        1: "Your code is [code]",
        2: "Vote: http://x/b/[token]",
        3: "Your code is 654321",
        4: "1. Owls (123456)",
    }
    assert reply == "<Response><Message>Code [code]</Message></Response>"
