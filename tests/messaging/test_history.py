"""The message history of an event: newest first, filters, pages, and statistics with the delivery rate."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from twilio.request_validator import RequestValidator

from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import messages
from tests.conftest import Actor, Actors
from tests.factories import build_stage
from tests.http import ok, problem
from tests.messaging.conftest import AUTH_TOKEN, UNREACHABLE_NUMBER


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"sms_per_second": 100_000, "email_per_second": 100_000, "round_clock_seconds": 0}
    )


async def report(client: AsyncClient, sid: str, status: str) -> None:
    """Twilio's signed status callback for message `sid`."""
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "a" * 32}
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/sms/status", params)
    r = await client.post("/sms/status", data=params, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 204, r.text


async def history(client: AsyncClient, event_id: int, admin: Actor, **params: Any) -> dict[str, Any]:
    return ok(await client.get(f"/events/{event_id}/messages", params=params, headers=admin.headers))


async def test_history_filters_pages_and_counts(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    delivered, undelivered, sent = await stage.ballot(), await stage.ballot(), await stage.ballot()
    unreachable = await stage.ballot(phone=UNREACHABLE_NUMBER)
    async with unit_of_work(runtime.sessionmaker) as session:
        await session.execute(update(Attendee).where(Attendee.id == sent.attendee_id).values(email="fan@example.com"))
    post = f"/events/{stage.event_id}/messages"
    sms = {"channel": "sms", "messageType": "CUSTOM", "body": "Doors open"}
    ok(await client.post(post, json=sms, headers=admin.headers), 202)
    email = {"channel": "email", "messageType": "CUSTOM", "body": "Hello", "subject": "Welcome"}
    ok(await client.post(post, json=email, headers=admin.headers), 202)
    await runtime.queue.broker.wait_all()
    # messages of another event are not in this one's history
    other = await build_stage(client, runtime, admin)
    await other.ballot()
    ok(await client.post(f"/events/{other.event_id}/messages", json=sms, headers=admin.headers), 202)
    await runtime.queue.broker.wait_all()

    by_attendee = {m.attendee_id: m for m in await messages(runtime, channel="sms", event_id=stage.event_id)}
    await report(client, str(by_attendee[delivered.attendee_id].provider_message_id), "delivered")
    await report(client, str(by_attendee[undelivered.attendee_id].provider_message_id), "undelivered")

    page = await history(client, stage.event_id, admin)
    assert page["total"] == 5 and (page["limit"], page["offset"]) == (50, 0)
    ids = [item["id"] for item in page["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    [mail] = [item for item in page["items"] if item["channel"] == "email"]
    assert mail["attendeeId"] == sent.attendee_id and mail["recipient"] == "fan@example.com"
    assert (mail["subject"], mail["body"], mail["status"], mail["messageType"]) == (
        "Welcome",
        "Hello",
        "sent",
        "CUSTOM",
    )
    assert mail["attempts"] == 1 and mail["error"] is None and mail["sentAt"] and mail["createdAt"]
    failed = next(item for item in page["items"] if item["attendeeId"] == unreachable.attendee_id)
    assert failed["status"] == "failed" and "21211" in failed["error"] and failed["sentAt"] is None

    assert page["stats"] == {
        "sms": {
            "queued": 0,
            "sending": 0,
            "sent": 1,
            "delivered": 1,
            "undelivered": 1,
            "failed": 1,
            "total": 4,
            "deliveryRate": 0.5,  # (sent + delivered) / (sent + delivered + undelivered + failed)
        },
        "email": {
            "queued": 0,
            "sending": 0,
            "sent": 1,
            "delivered": 0,
            "undelivered": 0,
            "failed": 0,
            "total": 1,
            "deliveryRate": 1.0,
        },
        "total": 5,
        "deliveryRate": 0.6,
    }

    # filters narrow the items, never the stats
    only_email = await history(client, stage.event_id, admin, channel="email")
    assert [item["id"] for item in only_email["items"]] == [mail["id"]] and only_email["total"] == 1
    assert only_email["stats"] == page["stats"]
    failures = await history(client, stage.event_id, admin, status="failed", messageType="CUSTOM")
    assert [item["attendeeId"] for item in failures["items"]] == [unreachable.attendee_id]
    assert (await history(client, stage.event_id, admin, messageType="NUDGE"))["total"] == 0
    # pages
    first = await history(client, stage.event_id, admin, limit=2)
    second = await history(client, stage.event_id, admin, limit=2, offset=2)
    last = await history(client, stage.event_id, admin, limit=2, offset=4)
    assert [i["id"] for i in first["items"] + second["items"] + last["items"]] == ids
    assert (second["total"], second["limit"], second["offset"]) == (5, 2, 2)

    for params, field in (
        ({"status": "lost"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"messageType": "SPAM"}, "messageType"),
        ({"limit": 0}, "limit"),
    ):
        refused = problem(
            await client.get(f"/events/{stage.event_id}/messages", params=params, headers=admin.headers), 422
        )
        assert refused["errors"][0]["field"] == field


async def test_an_event_without_messages_has_no_rate(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    page = await history(client, stage.event_id, admin)
    assert page["items"] == [] and page["total"] == 0
    assert page["stats"]["deliveryRate"] is None and page["stats"]["sms"]["deliveryRate"] is None


async def test_only_admins_read_the_history(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors
) -> None:
    stage = await build_stage(client, runtime, admin)
    url = f"/events/{stage.event_id}/messages"
    problem(await client.get(url), 401)
    for role in ("fan", "artist", "brand", "developer"):
        problem(await client.get(url, headers=(await actors.make(role)).headers), 403)
    problem(await client.get("/events/999999/messages", headers=admin.headers), 404)
