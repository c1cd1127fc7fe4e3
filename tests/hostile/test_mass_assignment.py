"""Mass assignment: every write route that takes a JSON body, sent a valid body plus fields the caller must not
set (role, status, createdBy, ids, timestamps, who owns what). The call does what it does without them: the
extra fields are ignored (or refused), never stored. `test_every_json_write_route_is_tried` derives the routes
from the OpenAPI document, so a new route with a body needs its case here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from stagevote.core.runtime import Runtime
from tests.attendees.conftest import code_in, joined
from tests.conftest import PASSWORD, Actor, Actors
from tests.factories import build_stage, event_body, make_event, new_phone
from tests.http import ok
from tests.proof.figures import Figures

pytestmark = pytest.mark.proof

ELSEWHERE = 999_999
SMUGGLED: dict[str, Any] = {
    "id": ELSEWHERE,
    "role": "admin",
    "status": "live",
    "createdBy": ELSEWHERE,
    "createdAt": "2001-01-01T00:00:00Z",
    "updatedAt": "2001-01-01T00:00:00Z",
    "userId": ELSEWHERE,
    "eventId": ELSEWHERE,
    "attendeeId": ELSEWHERE,
    "claimedByUserId": ELSEWHERE,
    "inviteStatus": "accepted",
    "voteCode": "99",
    "confirmedAt": "2001-01-01T00:00:00Z",
    "preRegistered": True,
    "optedOut": True,
    "erasedAt": "2001-01-01T00:00:00Z",
    "channel": "sms",
    "recipient": "+15005550006",
    "passwordHash": "x",
    "revokedAt": None,
}


def smuggle(body: dict[str, Any]) -> dict[str, Any]:
    """The body with every smuggled field it does not itself need."""
    return {**{k: v for k, v in SMUGGLED.items() if k not in body}, **body}


def accepted(r: Response, status: int) -> dict[str, Any]:
    """The answer of a call that went through (the extra fields ignored); a 422 refusing them would do too, but
    then the case proves less, so each case here expects the call to go through."""
    return ok(r, status) if r.content else {}


Case = Callable[[AsyncClient, Runtime, Actor, Actors], Awaitable[None]]
CASES: dict[tuple[str, str], Case] = {}


def case(method: str, path: str) -> Callable[[Case], Case]:
    def register(check: Case) -> Case:
        CASES[(method, path)] = check
        return check

    return register


@case("POST", "/auth/signup")
async def _signup(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    pair = accepted(
        await client.post("/auth/signup", json=smuggle({"email": "m@example.com", "password": PASSWORD})), 201
    )
    assert pair["user"]["role"] == "fan" and pair["user"]["id"] != ELSEWHERE


@case("POST", "/auth/login")
async def _login(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    fan = await actors.make("fan")
    pair = accepted(await client.post("/auth/login", json=smuggle({"email": fan.email, "password": PASSWORD})), 200)
    assert (pair["user"]["id"], pair["user"]["role"]) == (fan.user_id, "fan")


@case("POST", "/auth/refresh")
async def _refresh(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    fan = await actors.make("fan")
    pair = accepted(await client.post("/auth/refresh", json=smuggle({"refreshToken": fan.refresh_token})), 200)
    assert (pair["user"]["id"], pair["user"]["role"]) == (fan.user_id, "fan")


@case("POST", "/auth/logout")
async def _logout(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    fan = await actors.make("fan")
    body = smuggle({"refreshToken": fan.refresh_token, "userId": admin.user_id})
    accepted(await client.post("/auth/logout", json=body, headers=fan.headers), 204)
    assert (await client.get("/auth/profile", headers=admin.headers)).status_code == 200  # only the caller's session
    assert (await client.get("/auth/profile", headers=fan.headers)).status_code == 401


@case("PATCH", "/users/{user_id}")
async def _change_role(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    fan = await actors.make("fan")
    body = smuggle({"role": "brand", "email": "taken-over@example.com"})
    user = accepted(await client.patch(f"/users/{fan.user_id}", json=body, headers=admin.headers), 200)
    assert (user["id"], user["email"], user["role"]) == (fan.user_id, fan.email, "brand")


@case("POST", "/auth/api-keys")
async def _api_key(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    developer = await actors.make("developer")
    body = smuggle({"name": "k", "userId": admin.user_id})
    key = accepted(await client.post("/auth/api-keys", json=body, headers=developer.headers), 201)
    as_key = ok(await client.get("/auth/profile", headers={"Authorization": f"Bearer {key['key']}"}))
    assert (as_key["id"], as_key["role"]) == (developer.user_id, "developer")
    assert [k["id"] for k in ok(await client.get("/auth/api-keys", headers=admin.headers))["items"]] == []


@case("POST", "/events")
async def _create_event(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    event = accepted(await client.post("/events", json=smuggle(event_body()), headers=admin.headers), 201)
    assert (event["status"], event["createdBy"]) == ("draft", admin.user_id) and event["id"] != ELSEWHERE
    assert event["createdAt"] > "2026"


@case("PUT", "/events/{event_id}")
async def _update_event(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    event = await make_event(client, admin, status="draft")
    body = {k: v for k, v in smuggle({"title": "Renamed"}).items() if k != "status"} | {"status": "live"}
    r = await client.put(f"/events/{event['id']}", json=body, headers=admin.headers)
    updated = accepted(r, 200)
    assert (updated["title"], updated["status"], updated["createdBy"]) == ("Renamed", "draft", admin.user_id)


@case("POST", "/events/{event_id}/sponsors")
async def _sponsor(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    brand = await actors.make("brand")
    event, other = await make_event(client, admin), await make_event(client, admin)
    body = smuggle({"userId": brand.user_id}) | {"eventId": other["id"]}
    accepted(await client.post(f"/events/{event['id']}/sponsors", json=body, headers=admin.headers), 201)
    assert ok(await client.get(f"/events/{other['id']}/sponsors", headers=admin.headers))["items"] == []


@case("POST", "/events/{event_id}/artists")
async def _invite(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    fan = await actors.make("fan")
    event = await make_event(client, admin)
    body = smuggle({"name": "Sneaky"}) | {"claimedByUserId": fan.user_id}
    made = accepted(await client.post(f"/events/{event['id']}/artists", json=body, headers=admin.headers), 201)
    assert (made["status"], made["inviteStatus"], made["voteCode"]) == ("invited", "pending", "1")
    [listed] = ok(await client.get(f"/events/{event['id']}/artists", headers=admin.headers))["items"]
    assert listed["claimedByUserId"] is None
    assert ok(await client.get(f"/events/{event['id']}/artists"))["items"] == []  # not accepted: not public


@case("POST", "/artists/{artist_id}/claim")
async def _claim(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    fan, other = await actors.make("fan"), await actors.make("fan")
    event = await make_event(client, admin)
    invited = ok(await client.post(f"/events/{event['id']}/artists", json={"name": "X"}, headers=admin.headers), 201)
    body = smuggle({"claimToken": invited["inviteUrl"].rsplit("/", 1)[1]}) | {"claimedByUserId": other.user_id}
    artist = accepted(await client.post(f"/artists/{invited['artistId']}/claim", json=body, headers=fan.headers), 200)
    assert artist["claimedByUserId"] == fan.user_id
    assert ok(await client.get("/auth/profile", headers=fan.headers))["role"] == "artist"  # not the smuggled admin


@case("POST", "/events/{event_id}/join")
async def _join(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    event, other = await make_event(client, admin), await make_event(client, admin)
    body = smuggle({"phoneNumber": new_phone()}) | {"eventId": other["id"]}
    attendee_id = accepted(await client.post(f"/events/{event['id']}/join", json=body), 202)["attendeeId"]
    [attendee] = ok(await client.get(f"/events/{event['id']}/attendees", headers=admin.headers))["items"]
    assert attendee["id"] == attendee_id
    assert (attendee["confirmedAt"], attendee["preRegistered"], attendee["optedOut"]) == (None, False, False)
    assert ok(await client.get(f"/events/{other['id']}/attendees", headers=admin.headers))["items"] == []


@case("POST", "/attendees/{attendee_id}/confirm")
async def _confirm(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    event = await make_event(client, admin)
    mine, body = await joined(client, runtime, event["id"], new_phone())
    theirs, _ = await joined(client, runtime, event["id"], new_phone())
    sent = smuggle({"code": code_in(body)}) | {"attendeeId": theirs}
    confirmed = accepted(await client.post(f"/attendees/{mine}/confirm", json=sent), 200)
    assert confirmed["attendee"]["id"] == mine
    listed = ok(await client.get(f"/events/{event['id']}/attendees", headers=admin.headers))["items"]
    assert {a["id"]: a["confirmedAt"] is not None for a in listed} == {mine: True, theirs: False}


@case("POST", "/events/{event_id}/attendees")
async def _pre_register(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    event, other = await make_event(client, admin), await make_event(client, admin)
    body = smuggle({"phoneNumber": new_phone()}) | {"eventId": other["id"]}
    attendee = accepted(await client.post(f"/events/{event['id']}/attendees", json=body, headers=admin.headers), 201)
    assert attendee["eventId"] == event["id"]
    assert (attendee["confirmedAt"], attendee["optedOut"], attendee["preRegistered"]) == (None, False, True)


@case("POST", "/events/{event_id}/vote")
async def _vote(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    stage = await build_stage(client, runtime, admin)
    ballot, other = await stage.ballot(), await stage.ballot()
    body = smuggle({"round": 1, "artistId": stage.artists["Owls"], "token": "smuggled-1"}) | {
        "attendeeId": other.attendee_id
    }
    vote = accepted(await client.post(f"/events/{stage.event_id}/vote", json=body, headers=ballot.headers), 201)
    assert vote["eventId"] == stage.event_id and vote["createdAt"] > "2026"
    report = (await client.get(f"/events/{stage.event_id}/report", headers=admin.headers)).text
    [row] = list(csv.DictReader(io.StringIO(report)))
    assert (int(row["attendee_id"]), row["channel"]) == (ballot.attendee_id, "web")
    assert (await stage.vote(other, "Foxes")).status_code == 201  # the other attendee's vote is still theirs


@case("POST", "/events/{event_id}/messages")
async def _broadcast(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    stage = await build_stage(client, runtime, admin)
    await stage.ballot()
    body = smuggle({"channel": "sms", "messageType": "CUSTOM", "body": "Doors at 8"})
    assert (
        accepted(await client.post(f"/events/{stage.event_id}/messages", json=body, headers=admin.headers), 202)[
            "queued"
        ]
        == 1
    )
    history = ok(await client.get(f"/events/{stage.event_id}/messages", headers=admin.headers))["items"]
    assert [m["recipient"] for m in history if m["recipient"] == SMUGGLED["recipient"]] == []
    assert all(m["channel"] == "sms" for m in history)


@case("POST", "/events/{event_id}/votes/{vote_id}/void")
async def _void_vote(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    stage = await build_stage(client, runtime, admin)
    vote, kept = (
        ok(await stage.vote(await stage.ballot(), "Owls"), 201),
        ok(await stage.vote(await stage.ballot(), "Owls"), 201),
    )
    body = smuggle({"reason": "duplicate"}) | {
        "voidedBy": ELSEWHERE,
        "id": kept["id"],
        "artistId": stage.artists["Bears"],
    }
    voided = accepted(
        await client.post(f"/events/{stage.event_id}/votes/{vote['id']}/void", json=body, headers=admin.headers), 200
    )
    assert (voided["id"], voided["voidedBy"], voided["artistId"]) == (vote["id"], admin.user_id, stage.artists["Owls"])
    receipt = ok(await client.get(f"/events/{stage.event_id}/receipts/{kept['receipt']}"))
    assert receipt["status"] == "counted"  # only the vote in the path was voided


@case("POST", "/attendees/{attendee_id}/void")
async def _void_attendee(client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors) -> None:
    stage = await build_stage(client, runtime, admin)
    cheat, fan = await stage.ballot(), await stage.ballot()
    body = smuggle({"reason": "fraud"}) | {"attendeeId": fan.attendee_id, "votesVoided": 0}
    voided = accepted(await client.post(f"/attendees/{cheat.attendee_id}/void", json=body, headers=admin.headers), 200)
    assert (voided["attendeeId"], voided["reason"]) == (cheat.attendee_id, "fraud")
    assert (await stage.vote(fan, "Foxes")).status_code == 201  # the other attendee still votes


def json_write_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if method in {"post", "put", "patch", "delete"} and "application/json" in content:
                found.add((method.upper(), path))
    return found


def test_every_json_write_route_is_tried(app: FastAPI) -> None:
    assert sorted(json_write_routes(app) - set(CASES)) == [], "write routes with a JSON body and no case here"
    assert sorted(set(CASES) - json_write_routes(app)) == []


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}" if isinstance(r, tuple) else str(r))
async def test_smuggled_fields_change_nothing(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors, route: tuple[str, str], figures: Figures
) -> None:
    await CASES[route](client, runtime, admin, actors)
    figures.add("hostile cases tried")
