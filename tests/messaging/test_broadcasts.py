"""Broadcasts: audiences (all, confirmed, voted, not_voted), opt-outs and addresses, templates, idempotency, size."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.errors import Forbidden
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event
from stagevote.events.schemas import VoteConfig
from stagevote.messaging.models import Message
from tests.attendees.conftest import code_in, joined, messages
from tests.conftest import Actor, Actors
from tests.factories import Ballot, Stage, build_stage, make_event, new_phone
from tests.http import ok, problem
from tests.messaging.conftest import FakeTwilio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # deliveries as fast as the loopback Twilio answers; timed rounds only when a test ticks the clock
    return settings.model_copy(
        update={"sms_per_second": 100_000, "email_per_second": 100_000, "round_clock_seconds": 0}
    )


async def send(client: AsyncClient, event_id: int, headers: dict[str, str], **body: Any) -> Any:
    return await client.post(f"/events/{event_id}/messages", json=body, headers=headers)


async def broadcast(stage: Stage, **body: Any) -> dict[str, Any]:
    return ok(await send(stage.client, stage.event_id, stage.admin.headers, **body), 202)


async def recipients(runtime: Runtime, body: str) -> set[int | None]:
    return {m.attendee_id for m in await messages(runtime, body=body)}


async def set_attendee(runtime: Runtime, attendee_id: int, **values: Any) -> None:
    async with unit_of_work(runtime.sessionmaker) as session:
        await session.execute(update(Attendee).where(Attendee.id == attendee_id).values(**values))


async def test_each_audience_reaches_exactly_its_attendees(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    voter_a, voter_b, idle = await stage.ballot(), await stage.ballot(), await stage.ballot()
    unconfirmed = await stage.ballot(confirmed=False)
    opted_out = await stage.ballot(opted_out=True)
    erased = await stage.ballot()
    await set_attendee(runtime, erased.attendee_id, erased_at=utcnow(), phone_number=None)
    for ballot in (voter_a, voter_b):
        assert (await stage.vote(ballot, "Owls")).status_code == 201

    everyone = {voter_a.attendee_id, voter_b.attendee_id, idle.attendee_id, unconfirmed.attendee_id}
    expected = {
        "all": everyone,
        "confirmed": everyone - {unconfirmed.attendee_id},
        "voted": {voter_a.attendee_id, voter_b.attendee_id},
        "not_voted": {idle.attendee_id},
    }
    for audience, who in expected.items():
        answer = await broadcast(stage, channel="sms", messageType="CUSTOM", body=f"To {audience}", audience=audience)
        # the opted-out attendee belongs to every audience but voted: counted, sent nothing, no row
        skipped_out = 0 if audience == "voted" else 1
        assert answer == {
            "queued": len(who),
            "skipped": {"optedOut": skipped_out, "noAddress": 0, "capped": 0},
            "deferred": 0,
        }, audience
        assert await recipients(runtime, f"To {audience}") == who, audience

    # the round defaults to the current one; another round is named explicitly
    answer = await broadcast(stage, channel="sms", messageType="CUSTOM", body="Round 2", audience="not_voted", round=2)
    assert answer["queued"] == 3 and await recipients(runtime, "Round 2") == everyone - {unconfirmed.attendee_id}
    bad = problem(
        await send(client, stage.event_id, admin.headers, channel="sms", messageType="CUSTOM", body="x", round=3), 422
    )
    assert bad["errors"][0]["field"] == "round"

    assert not await messages(runtime, attendee_id=opted_out.attendee_id)
    assert not await messages(runtime, attendee_id=erased.attendee_id)
    await runtime.queue.broker.wait_all()
    sent = await messages(runtime, message_type="CUSTOM")
    assert sent and {m.status for m in sent} == {"sent"} and all(m.channel == "sms" for m in sent)


async def test_confirmed_in_a_hybrid_event_counts_pre_registered_numbers(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, status="live", access="hybrid")
    listed = ok(
        await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": new_phone()}, headers=admin.headers),
        201,
    )
    walk_in, _ = await joined(client, runtime, event["id"], new_phone())
    confirmed_walk_in, confirm_sms = await joined(client, runtime, event["id"], new_phone())
    ok(await client.post(f"/attendees/{confirmed_walk_in}/confirm", json={"code": code_in(confirm_sms)}))

    answer = ok(
        await send(
            client, event["id"], admin.headers, channel="sms", messageType="CUSTOM", body="Hi", audience="confirmed"
        ),
        202,
    )
    assert answer["queued"] == 2
    assert await recipients(runtime, "Hi") == {listed["id"], confirmed_walk_in}
    assert walk_in not in await recipients(runtime, "Hi")
    await runtime.queue.broker.wait_all()  # no delivery outlives the test


async def test_a_private_event_confirms_its_list_before_it_counts(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    # requireConfirmation (the default) holds in a private event: a listed number votes once confirmed
    event = await make_event(client, admin, status="draft", access="private")
    listed = ok(
        await client.post(f"/events/{event['id']}/attendees", json={"phoneNumber": new_phone()}, headers=admin.headers),
        201,
    )
    # a draft takes broadcasts: the organizer writes to its list before publishing
    everyone = ok(
        await send(client, event["id"], admin.headers, channel="sms", messageType="CUSTOM", body="Save the date"), 202
    )
    assert everyone["queued"] == 1 and await recipients(runtime, "Save the date") == {listed["id"]}
    confirmed = ok(
        await send(
            client,
            event["id"],
            admin.headers,
            channel="sms",
            messageType="CUSTOM",
            body="Ballots",
            audience="confirmed",
        ),
        202,
    )
    assert confirmed["queued"] == 0
    await runtime.queue.broker.wait_all()  # no delivery outlives the test


async def test_email_goes_only_to_attendees_with_an_address(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio
) -> None:
    stage = await build_stage(client, runtime, admin)
    with_mail, without_mail, opted_out = await stage.ballot(), await stage.ballot(), await stage.ballot(opted_out=True)
    await set_attendee(runtime, with_mail.attendee_id, email="fan@example.com")
    await set_attendee(runtime, opted_out.attendee_id, email="gone@example.com")

    answer = await broadcast(stage, channel="email", messageType="CUSTOM", subject="Doors at 8", body="See you there")
    assert answer == {"queued": 1, "skipped": {"optedOut": 1, "noAddress": 1, "capped": 0}, "deferred": 0}
    [mail] = await messages(runtime, channel="email")
    assert (mail.attendee_id, mail.recipient, mail.subject, mail.body) == (
        with_mail.attendee_id,
        "fan@example.com",
        "Doors at 8",
        "See you there",
    )
    assert not await messages(runtime, attendee_id=without_mail.attendee_id)
    # no subject: the type's, with the event's title
    await broadcast(stage, channel="email", messageType="CUSTOM", body="Second")
    [second] = await messages(runtime, channel="email", body="Second")
    assert second.subject is not None and "Battle of the Bands" in second.subject
    await runtime.queue.broker.wait_all()
    assert {m.status for m in await messages(runtime, channel="email")} == {"sent"}
    assert twilio.received == []  # nothing went by SMS


async def test_templates_carry_each_attendees_ballot_and_language(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    english, spanish = await stage.ballot(), await stage.ballot()
    await set_attendee(runtime, spanish.attendee_id, language_pref="es")
    assert (await stage.vote(english, "Foxes")).status_code == 201

    assert (await broadcast(stage, channel="sms", messageType="NUDGE"))["queued"] == 2
    for ballot in (english, spanish):
        [nudge] = await messages(runtime, attendee_id=ballot.attendee_id, message_type="NUDGE")
        found = re.search(r"http://testserver/b/(\S+)", nudge.body)
        assert found is not None
        assert ok(await client.get("/ballot", headers=Ballot(0, found.group(1)).headers))["eventId"] == stage.event_id
        assert ("Vota" in nudge.body) is (ballot is spanish)

    assert (await broadcast(stage, channel="sms", messageType="RESULTS"))["queued"] == 2
    [results] = await messages(runtime, attendee_id=english.attendee_id, message_type="RESULTS")
    assert "1. Foxes" in results.body and "Owls" not in results.body  # only artists with votes
    assert (await broadcast(stage, channel="sms", messageType="RECAP"))["queued"] == 2
    [recap] = await messages(runtime, attendee_id=spanish.attendee_id, message_type="RECAP")
    assert recap.body.startswith("¡Gracias")
    # a body given replaces the template
    await broadcast(stage, channel="sms", messageType="NUDGE", body="Vote for your favourite!")
    assert len(await messages(runtime, body="Vote for your favourite!")) == 2
    # the NUDGE link is the attendee's own ballot: a vote through the Spanish fan's link uses up that fan's vote
    [nudge, _] = await messages(runtime, attendee_id=spanish.attendee_id, message_type="NUDGE")
    link = Ballot(spanish.attendee_id, nudge.body.rsplit("/b/", 1)[1].split()[0])
    assert (await stage.vote(link, "Owls")).status_code == 201
    assert (await stage.vote(spanish, "Owls")).status_code == 409
    await runtime.queue.broker.wait_all()  # no delivery outlives the test


async def test_refusals(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    stage = await build_stage(client, runtime, admin)
    await stage.ballot()
    custom = {"channel": "sms", "messageType": "CUSTOM", "body": "Hello"}
    url = f"/events/{stage.event_id}/messages"
    problem(await client.post(url, json=custom), 401)
    for role in ("fan", "brand", "developer"):
        problem(await client.post(url, json=custom, headers=(await actors.make(role)).headers), 403)
        problem(await client.get(url, headers=(await actors.make(role)).headers), 403)
    problem(await send(client, 999_999, admin.headers, **custom), 404)

    for body, field in (
        ({"channel": "sms", "messageType": "CUSTOM"}, "body"),
        ({"channel": "sms", "messageType": "CUSTOM", "body": "   "}, "body"),
        ({"channel": "sms", "messageType": "CUSTOM", "body": "x" * 1601}, "body"),
        ({"channel": "fax", "messageType": "CUSTOM", "body": "x"}, "channel"),
        ({"channel": "sms", "messageType": "JOIN", "body": "x"}, "messageType"),
        ({"channel": "sms", "messageType": "CUSTOM", "body": "x", "audience": "vip"}, "audience"),
    ):
        refused = problem(await send(client, stage.event_id, admin.headers, **body), 422)
        assert refused["errors"][0]["field"] == field, body
    # an e-mail may be longer than an SMS
    assert (
        await send(client, stage.event_id, admin.headers, channel="email", messageType="CUSTOM", body="x" * 1601)
    ).status_code == 202
    assert not await messages(runtime, channel="sms", message_type="CUSTOM")

    await stage.admin_post("/close")
    await stage.admin_post("/archive")
    problem(await send(client, stage.event_id, admin.headers, **custom), 409)
    await runtime.queue.broker.wait_all()  # no delivery outlives the test


async def test_the_same_idempotency_key_queues_once(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    for _ in range(3):
        await stage.ballot()
    body = {"channel": "sms", "messageType": "CUSTOM", "body": "Once"}
    headers = {**admin.headers, "Idempotency-Key": "retry-me"}
    first = ok(await client.post(f"/events/{stage.event_id}/messages", json=body, headers=headers), 202)
    again = ok(await client.post(f"/events/{stage.event_id}/messages", json=body, headers=headers), 202)
    assert first == again == {"queued": 3, "skipped": {"optedOut": 0, "noAddress": 0, "capped": 0}, "deferred": 0}
    assert len(await messages(runtime, body="Once")) == 3
    # without a key (or with another) each request is a broadcast of its own
    await broadcast(stage, **body)
    assert len(await messages(runtime, body="Once")) == 6
    await runtime.queue.broker.wait_all()


async def test_a_thousand_attendees_in_one_broadcast(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    # one request, a couple of multi-row INSERTs; e-mail, whose console delivery keeps the wait for 1,000
    # deliveries short (SMS take the same path to the table: the channel only picks the address)
    stage = await build_stage(client, runtime, admin)
    async with unit_of_work(runtime.sessionmaker) as session:
        session.add_all(
            Attendee(
                event_id=stage.event_id,
                phone_number=f"+1303555{n:04d}",
                email=f"fan{n}@example.com" if n < 1000 else None,
                confirmed_at=utcnow(),
            )
            for n in range(1100)
        )
    answer = await broadcast(stage, channel="email", messageType="NUDGE", audience="confirmed")
    assert answer == {"queued": 1000, "skipped": {"optedOut": 0, "noAddress": 100, "capped": 0}, "deferred": 0}
    await runtime.queue.broker.wait_all()
    async with unit_of_work(runtime.sessionmaker) as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.event_id == stage.event_id)
        )
        recipients = await session.scalar(select(func.count(func.distinct(Message.attendee_id))))
    assert count == recipients == 1000  # one each
    assert len(await messages(runtime, channel="email", status="sent")) == 1000


@pytest.mark.parametrize("access", ["public", "private", "hybrid"])
@pytest.mark.parametrize("require_confirmation", [True, False])
@pytest.mark.parametrize("pre_registered", [True, False])
@pytest.mark.parametrize("confirmed", [True, False])
def test_the_confirmed_audience_is_who_may_vote(
    access: str, require_confirmation: bool, pre_registered: bool, confirmed: bool
) -> None:
    # `holds_a_ballot` (the audience) and `ensure_may_vote` (the vote path) state one rule twice: keep them equal
    event = Event(id=1, access_type=access)
    config = VoteConfig(require_confirmation=require_confirmation)
    attendee = Attendee(
        id=2, event_id=1, pre_registered=pre_registered, confirmed_at=utcnow() if confirmed else None, opted_out=False
    )
    try:
        attendees_service.ensure_may_vote(attendee=attendee, event=event, config=config)
        may_vote = True
    except Forbidden:
        may_vote = False
    assert attendees_service.holds_a_ballot(attendee=attendee, event=event, config=config) is may_vote
