# ruff: noqa: E501  (the permission table reads best one route per line)
"""Every Auth, Events and Artists route, tried by every kind of caller: who gets in, who gets 401 or 403.

Callers: nobody, a fan, an artist (who claimed the invited artist), a brand, a developer, a
developer's read-only API key, and an admin. For each route the table names who is allowed; an
allowed caller must not get 401/403, an anonymous one gets 401, and anyone else 403. A caller who
may not even see a draft gets 404, which the table states where it applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient

from tests.conftest import Actor, Actors
from tests.factories import event_body

CALLERS = ("anonymous", "fan", "artist", "brand", "developer", "api_key", "admin")
SIGNED_IN = frozenset(CALLERS) - {"anonymous"}
EVERYONE = frozenset(CALLERS)


@dataclass
class World:
    """What the routes under test act on, made fresh for each case."""

    callers: dict[str, dict[str, str]]
    fan_id: int
    draft_id: int
    published_id: int
    live_id: int
    artist_id: int
    artist_token: str
    key_id: int
    refresh_token: str


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[World], str]
    allowed: frozenset[str]
    body: Callable[[World], Any] | None = None
    denied_status: int = 403  # what a signed-in caller outside `allowed` gets

    @property
    def writes(self) -> bool:
        return self.method not in {"GET", "HEAD", "OPTIONS"}


ROUTES: dict[str, Route] = {
    # public calls ignore credentials; logout comes last, since it ends the caller's session
    "signup": Route("POST", lambda w: "/auth/signup", EVERYONE, lambda w: {"email": "n@example.com", "password": "long enough"}),
    "login": Route("POST", lambda w: "/auth/login", EVERYONE, lambda w: {"email": "n@example.com", "password": "long enough"}),
    "refresh": Route("POST", lambda w: "/auth/refresh", EVERYONE, lambda w: {"refreshToken": w.refresh_token}),
    "profile": Route("GET", lambda w: "/auth/profile", SIGNED_IN),
    "change role": Route("PATCH", lambda w: f"/users/{w.fan_id}", frozenset({"admin"}), lambda w: {"role": "brand"}),
    "create api key": Route("POST", lambda w: "/auth/api-keys", frozenset({"developer", "admin"}), lambda w: {"name": "k"}),
    "list api keys": Route("GET", lambda w: "/auth/api-keys", frozenset({"developer", "api_key", "admin"})),
    "revoke api key": Route("DELETE", lambda w: f"/auth/api-keys/{w.key_id}", frozenset({"developer", "admin"})),
    "create event": Route("POST", lambda w: "/events", frozenset({"admin"}), lambda w: event_body()),
    "list events": Route("GET", lambda w: "/events", EVERYONE),
    "get event": Route("GET", lambda w: f"/events/{w.published_id}", EVERYONE),
    "get draft": Route("GET", lambda w: f"/events/{w.draft_id}", frozenset({"artist", "admin"}), denied_status=404),
    "update event": Route("PUT", lambda w: f"/events/{w.draft_id}", frozenset({"admin"}), lambda w: {"title": "New"}),
    "publish": Route("POST", lambda w: f"/events/{w.draft_id}/publish", frozenset({"admin"})),
    "start": Route("POST", lambda w: f"/events/{w.published_id}/start", frozenset({"admin"})),
    "close": Route("POST", lambda w: f"/events/{w.live_id}/close", frozenset({"admin"})),
    "archive": Route("POST", lambda w: f"/events/{w.draft_id}/archive", frozenset({"admin"})),
    "list rounds": Route("GET", lambda w: f"/events/{w.published_id}/rounds", EVERYONE),
    "open round": Route("POST", lambda w: f"/events/{w.live_id}/rounds/1/open", frozenset({"admin"})),
    "close round": Route("POST", lambda w: f"/events/{w.live_id}/rounds/1/close", frozenset({"admin"})),
    "link sponsor": Route("POST", lambda w: f"/events/{w.published_id}/sponsors", frozenset({"admin"}), lambda w: {"userId": w.fan_id}),
    "list sponsors": Route("GET", lambda w: f"/events/{w.published_id}/sponsors", frozenset({"admin"})),
    "invite artist": Route("POST", lambda w: f"/events/{w.draft_id}/artists", frozenset({"admin"}), lambda w: {"name": "New Band"}),
    "list artists": Route("GET", lambda w: f"/events/{w.published_id}/artists", EVERYONE),
    "claim artist": Route("POST", lambda w: f"/artists/{w.artist_id}/claim", SIGNED_IN - {"api_key"}, lambda w: {"claimToken": w.artist_token}),
    "accept invitation": Route("POST", lambda w: f"/events/{w.published_id}/artists/{w.artist_id}/accept", frozenset({"artist", "admin"})),
    "decline invitation": Route("POST", lambda w: f"/events/{w.published_id}/artists/{w.artist_id}/decline", frozenset({"artist", "admin"})),
    # after the show (issue 12): a brand that does not sponsor the event is refused like any other caller
    "event report": Route("GET", lambda w: f"/events/{w.live_id}/report", frozenset({"admin"})),
    "event analytics": Route("GET", lambda w: f"/analytics/events/{w.published_id}", frozenset({"developer", "api_key", "admin"})),
    "render recap": Route("POST", lambda w: f"/events/{w.live_id}/recap", frozenset({"admin"})),
    "get recap": Route("GET", lambda w: f"/events/{w.published_id}/recap", EVERYONE),
    "recap page": Route("GET", lambda w: "/recaps/1-nothing-here.html", EVERYONE),
    "export attendee": Route("GET", lambda w: "/attendees/999999/export", frozenset({"admin"})),
    "erase attendee": Route("DELETE", lambda w: "/attendees/999999", frozenset({"admin"})),
    "logout": Route("POST", lambda w: "/auth/logout", SIGNED_IN - {"api_key"}),
}  # fmt: skip


async def build_world(client: AsyncClient, actors: Actors) -> World:
    made: dict[str, Actor] = {role: await actors.make(role) for role in ("fan", "brand", "developer", "admin")}
    artist_user = await actors.make("fan")
    admin = made["admin"].headers

    async def event(*actions: str) -> int:
        created = await client.post("/events", json=event_body(), headers=admin)
        event_id: int = created.json()["id"]
        for action in actions:
            assert (await client.post(f"/events/{event_id}/{action}", headers=admin)).status_code == 200
        return event_id

    draft_id, published_id, live_id = await event(), await event("publish"), await event("publish", "start")
    invitation = (await client.post(f"/events/{draft_id}/artists", json={"name": "The Owls"}, headers=admin)).json()
    token = invitation["inviteUrl"].rsplit("/", 1)[1]
    claimed = await client.post(
        f"/artists/{invitation['artistId']}/claim", json={"claimToken": token}, headers=artist_user.headers
    )
    assert claimed.status_code == 200
    also = {"artistId": invitation["artistId"]}
    assert (await client.post(f"/events/{published_id}/artists", json=also, headers=admin)).status_code == 201
    key = (await client.post("/auth/api-keys", json={"name": "k"}, headers=made["developer"].headers)).json()
    callers = {role: actor.headers for role, actor in made.items()}
    callers |= {"anonymous": {}, "artist": artist_user.headers, "api_key": {"Authorization": f"Bearer {key['key']}"}}
    return World(
        callers,
        made["fan"].user_id,
        draft_id,
        published_id,
        live_id,
        invitation["artistId"],
        token,
        key["id"],
        made["fan"].refresh_token,
    )


def expected_refusal(route: Route, caller: str) -> int | None:
    """The status `caller` must get on `route`, or None when it is allowed through."""
    if caller in route.allowed:
        return None
    if caller == "anonymous":
        return 404 if route.denied_status == 404 else 401
    if caller == "api_key" and route.writes:
        return 403
    return route.denied_status


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_route_admits_exactly_its_callers(client: AsyncClient, actors: Actors, caller: str) -> None:
    world = await build_world(client, actors)
    for name, route in ROUTES.items():
        body = route.body(world) if route.body else None
        r = await client.request(route.method, route.path(world), json=body, headers=world.callers[caller])
        refusal = expected_refusal(route, caller)
        if refusal is None:
            assert r.status_code not in (401, 403), (name, caller, r.status_code, r.text)
            assert r.status_code < 500, (name, caller, r.text)
        else:
            assert r.status_code == refusal, (name, caller, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
