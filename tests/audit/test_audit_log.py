"""The audit log: each admin action leaves one row (actor, client address, action, target, what changed) that
commits with the action; refused actions leave none; filters; the database refuses to change or drop a row."""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.core.errors import Conflict
from stagevote.core.runtime import Runtime
from stagevote.events.service import ROUND_OPENED
from tests.audit.conftest import actions, audit_log
from tests.conftest import Actor, Actors
from tests.factories import add_attendee, live_show, make_event, new_phone
from tests.http import ok, problem

TEST_CLIENT = "127.0.0.1"  # the peer address of httpx's ASGI transport: no proxy is trusted here


async def test_the_event_lifecycle_and_its_rounds_are_recorded(client: AsyncClient, admin: Actor) -> None:
    event = await make_event(client, admin, status="draft")
    base = f"/events/{event['id']}"
    ok(await client.put(base, json={"title": "Renamed", "venue": event["venue"]}, headers=admin.headers))
    for step in ("publish", "start", "rounds/1/open", "rounds/1/close", "rounds/2/open", "close", "archive"):
        ok(await client.post(f"{base}/{step}", headers=admin.headers))

    entries = await audit_log(client, admin, eventId=event["id"])
    assert [e["action"] for e in entries] == [
        "event.created",
        "event.updated",
        "event.published",
        "event.started",
        "round.opened",
        "round.closed",
        "round.opened",
        "event.closed",
        "event.archived",
    ]
    assert {e["actorId"] for e in entries} == {admin.user_id}
    assert {e["address"] for e in entries} == {TEST_CLIENT}
    created, updated, published, _, opened, closed, _, event_closed, _ = entries
    assert created["target"] == f"event:{event['id']}"
    assert created["changes"] == {"keyword": event["keyword"], "status": "draft"}
    # only what changed (the venue was sent unchanged), with its new value
    assert updated["changes"] == {"fields": ["title"], "to": {"title": "Renamed"}}
    assert published["changes"] == {"from": "draft", "to": "published"}
    assert opened["target"] == f"round:{event['id']}/1"
    assert opened["changes"] == {"number": 1, "status": "open"}
    assert closed["changes"] == {"number": 1, "status": "closed"}
    # closing the event closed round 2, which was open
    assert event_closed["changes"] == {"from": "live", "to": "closed", "closedRound": 2}
    assert all(e["at"] for e in entries) and entries == sorted(entries, key=lambda e: e["id"])


async def test_broadcasts_exports_and_erasures_are_recorded_without_personal_data(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    show = await live_show(client, runtime, admin)
    phone = new_phone()
    email = "someone.private@example.com"
    fan = await add_attendee(runtime, show.id, phone=phone, email=email)
    body = {"channel": "sms", "messageType": "CUSTOM", "body": "Doors at 8, bring earplugs"}
    ok(await client.post(f"/events/{show.id}/messages", json=body, headers=admin.headers), 202)
    r = await client.get(f"/events/{show.id}/report", params={"dataset": "attendees"}, headers=admin.headers)
    assert r.status_code == 200 and phone in r.text  # the report itself holds the number
    ok(await client.get(f"/attendees/{fan.attendee_id}/export", headers=admin.headers))
    assert (await client.delete(f"/attendees/{fan.attendee_id}", headers=admin.headers)).status_code == 204
    # erasing again changes nothing, and records nothing new
    assert (await client.delete(f"/attendees/{fan.attendee_id}", headers=admin.headers)).status_code == 204

    entries = await audit_log(client, admin, eventId=show.id)
    recorded = [e for e in entries if not e["action"].startswith(("event.", "round."))]
    assert [e["action"] for e in recorded] == [
        "message.broadcast",
        "report.exported",
        "attendee.exported",
        "attendee.erased",
    ]
    broadcast, report, exported, erased = recorded
    assert broadcast["target"] == f"event:{show.id}"
    assert broadcast["changes"] == {
        "channel": "sms",
        "messageType": "CUSTOM",
        "audience": "all",
        "round": None,
        "queued": 1,
        "skipped": {"optedOut": 0, "noAddress": 0, "capped": 0},
        "deferred": 0,
    }
    assert report["changes"] == {"dataset": "attendees", "format": "csv", "view": "full"}
    assert exported["target"] == erased["target"] == f"attendee:{fan.attendee_id}"
    assert exported["changes"] == erased["changes"] == {"attendeeId": fan.attendee_id}
    assert {e["eventId"] for e in recorded} == {show.id}
    assert {e["actorId"] for e in recorded} == {admin.user_id}
    assert {e["address"] for e in recorded} == {TEST_CLIENT}
    # the log names the attendee by id only: no number, no e-mail, no message text
    written = json.dumps(entries)
    for personal in (phone, phone.lstrip("+"), email, "earplugs"):
        assert personal not in written


async def test_role_changes_and_api_keys_are_recorded_with_their_actor(
    client: AsyncClient, admin: Actor, actors: Actors
) -> None:
    fan = await actors.make("fan")
    developer = await actors.make("developer")
    ok(await client.patch(f"/users/{fan.user_id}", json={"role": "brand"}, headers=admin.headers))
    key = ok(await client.post("/auth/api-keys", json={"name": "ci"}, headers=developer.headers), 201)
    assert (await client.delete(f"/auth/api-keys/{key['id']}", headers=developer.headers)).status_code == 204
    own = ok(await client.post("/auth/api-keys", json={"name": "mine"}, headers=admin.headers), 201)

    role_changed, created, revoked, admin_key = await audit_log(client, admin)
    assert role_changed == {
        **role_changed,
        "actorId": admin.user_id,
        "action": "user.role_changed",
        "target": f"user:{fan.user_id}",
        "changes": {"from": "fan", "to": "brand"},
        "address": TEST_CLIENT,
    }
    assert (created["action"], created["target"]) == ("api_key.created", f"api_key:{key['id']}")
    assert (revoked["action"], revoked["target"]) == ("api_key.revoked", f"api_key:{key['id']}")
    assert created["actorId"] == revoked["actorId"] == developer.user_id
    assert created["changes"] == revoked["changes"] == {"ownerId": developer.user_id}
    assert admin_key["actorId"] == admin.user_id
    # the key's secret is nowhere in the log
    assert key["key"] not in json.dumps([role_changed, created, revoked]) and own["key"] not in json.dumps(admin_key)
    assert role_changed["eventId"] is None  # not about an event


async def test_a_read_through_an_admins_api_key_is_recorded_as_its_owner(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    key = ok(await client.post("/auth/api-keys", json={"name": "exports"}, headers=admin.headers), 201)["key"]
    r = await client.get(f"/events/{event['id']}/report", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    (exported,) = await audit_log(client, admin, action="report.exported")
    assert exported["actorId"] == admin.user_id


async def test_filters_by_event_actor_and_action_and_pages(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    other_admin = await actors.make("admin")
    first = await make_event(client, admin, status="draft")
    second = await make_event(client, other_admin, status="published")

    assert await actions(client, admin, eventId=first["id"]) == ["event.created"]
    assert await actions(client, admin, eventId=second["id"]) == ["event.created", "event.published"]
    assert await actions(client, admin, actor=other_admin.user_id) == ["event.created", "event.published"]
    assert await actions(client, admin, actor=admin.user_id) == ["event.created"]
    published = await audit_log(client, admin, action="event.published")
    assert [e["target"] for e in published] == [f"event:{second['id']}"]
    assert await actions(client, admin, actor=admin.user_id, eventId=second["id"]) == []
    assert await actions(client, admin, action="event.archived") == []

    page = ok(await client.get("/audit", params={"limit": 2, "offset": 1}, headers=admin.headers))
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (3, 2, 1, 2)
    everything = ok(await client.get("/audit", headers=admin.headers))["items"]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)  # newest first
    assert page["items"] == everything[1:3]
    problem(await client.get("/audit", params={"eventId": "x"}, headers=admin.headers), 422)
    problem(await client.get("/audit", params={"actor": 0}, headers=admin.headers), 422)


async def test_refused_actions_record_nothing(client: AsyncClient, runtime: Runtime, admin: Actor, fan: Actor) -> None:
    show = await live_show(client, runtime, admin)
    archived = await make_event(client, admin, status="archived")
    before = await audit_log(client, admin)
    base = f"/events/{show.id}"
    problem(await client.post(f"{base}/publish", headers=admin.headers), 409)  # already live
    problem(await client.post(f"{base}/rounds/2/open", headers=admin.headers), 409)  # round 1 is open
    problem(await client.post(f"{base}/rounds/2/close", headers=admin.headers), 409)  # round 2 is pending
    problem(await client.put(base, json={"keyword": "OTHER1"}, headers=admin.headers), 409)  # fixed while live
    problem(await client.post(f"{base}/close", headers=fan.headers), 403)
    problem(await client.patch(f"/users/{admin.user_id}", json={"role": "fan"}, headers=admin.headers), 409)
    problem(await client.patch("/users/999999", json={"role": "fan"}, headers=admin.headers), 404)
    problem(await client.delete("/auth/api-keys/999999", headers=admin.headers), 404)
    problem(await client.delete("/attendees/999999", headers=admin.headers), 404)
    problem(await client.get("/attendees/999999/export", headers=admin.headers), 404)
    problem(await client.get(f"{base}/report", headers=fan.headers), 403)
    message = {"channel": "sms", "messageType": "CUSTOM", "body": "hi"}
    problem(await client.post(f"/events/{archived['id']}/messages", json=message, headers=admin.headers), 409)
    problem(await client.post(f"{base}/messages", json={**message, "round": 9}, headers=admin.headers), 422)
    assert await audit_log(client, admin) == before


async def test_an_action_undone_after_its_record_leaves_no_record(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    """The record is written in the action's own unit of work: when something later in that unit fails (here
    another domain's hook on `round.opened`), neither the action nor its record is committed."""
    show = await live_show(client, runtime, admin, open_round=False)

    async def refuse(session: AsyncSession, payload: dict[str, Any]) -> None:
        raise Conflict("A hook refused the round.")

    runtime.hooks.subscribe(ROUND_OPENED, refuse)
    problem(await client.post(f"/events/{show.id}/rounds/1/open", headers=admin.headers), 409)
    assert "round.opened" not in await actions(client, admin, eventId=show.id)
    rounds = ok(await client.get(f"/events/{show.id}/rounds", headers=admin.headers))["items"]
    assert rounds[0]["status"] == "pending"


async def test_the_log_is_append_only(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    event = await make_event(client, admin, status="draft")
    (entry,) = await audit_log(client, admin)
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await client.request(method, "/audit", headers=admin.headers)).status_code == 405
        assert (await client.request(method, f"/audit/{entry['id']}", headers=admin.headers)).status_code == 404
    # the database itself refuses, whoever connects
    for statement in (
        "UPDATE audit_log SET actor_id = NULL",
        "UPDATE audit_log SET changes = '{}' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with runtime.engine.begin() as connection:
                await connection.execute(text(statement), {"id": entry["id"]})
    assert await audit_log(client, admin) == [entry]
    # erasing an attendee never needs to touch the log (it holds no personal data)
    fan = await add_attendee(runtime, event["id"])
    assert (await client.delete(f"/attendees/{fan.attendee_id}", headers=admin.headers)).status_code == 204
    assert await actions(client, admin) == ["event.created", "attendee.erased"]


async def test_only_admins_read_the_log(client: AsyncClient, actors: Actors) -> None:
    problem(await client.get("/audit"), 401)
    for role in ("fan", "artist", "brand", "developer"):
        problem(await client.get("/audit", headers=(await actors.make(role)).headers), 403)
