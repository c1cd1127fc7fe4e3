# ruff: noqa: E501  (the permission table reads best one route per line)
"""The full permission matrix: every route of the app, tried by every kind of caller, each with its exact status.

Callers: nobody, a fan, an artist (who claimed an invited artist), a brand (the sponsor of the live event), a
developer, a developer's read-only API key, an admin, and a fan's ballot token presented as a credential.
Each row of `CASES` names a route as the app declares it and the status each caller gets, in the column
order of `CALLERS`. An allowed caller gets the success status itself (a 404 or a 422 is not "let in"), so
each case acts on a row made for it (`World`): a draft to publish, a key to revoke, a code to confirm.

`test_every_route_is_in_the_table` derives the routes from the app: a route added without its line here fails
the suite. To add a route: one line in `CASES` (and, if it acts on something new, a field of `World`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient
from pydantic import SecretStr
from starlette.routing import Mount

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import code_in, joined
from tests.conftest import PASSWORD, Actor, Actors
from tests.factories import add_attendee, event_body, make_event, new_phone
from tests.http import ok
from tests.proof.figures import Figures
from tests.sms.conftest import AUTH_TOKEN, sign

pytestmark = pytest.mark.proof

CALLERS = ("anonymous", "fan", "artist", "brand", "developer", "api_key", "admin", "ballot")
METRICS_TOKEN = "metrics-token-" + "m" * 20


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A metrics token (so /metrics is closed to every caller) and the auth token Twilio signs webhooks with."""
    return settings.model_copy(
        update={
            "metrics_token": SecretStr(METRICS_TOKEN),
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_account_sid": "AC" + "0" * 32,
        }
    )


@dataclass
class World:
    """What the cases act on, made fresh for each caller (so a case that changes something runs once)."""

    callers: dict[str, dict[str, str]] = field(default_factory=dict)
    draft: int = 0  # to read (the artist is invited to it) and to update
    draft_to_publish: int = 0
    draft_to_archive: int = 0
    published: int = 0  # the artist accepted and may decline; joins, rounds, sponsors, pages
    published_keyword: str = ""
    published_to_start: int = 0
    live: int = 0  # round 1 open; the ballot's event; sponsored by the brand
    live_pending: int = 0  # no round open yet
    live_round_open: int = 0  # round 1 open, to close
    live_to_close: int = 0
    hidden: int = 0  # live, leaderboardVisibility hidden
    closed: int = 0  # its recap page rendered
    recap_name: str = ""
    artist_id: int = 0  # the artist caller's profile, invited to `draft` and `published`
    unclaimed_artist_id: int = 0
    unclaimed_claim_token: str = ""
    owner_id: int = 0  # a fan whose role the admin changes
    spare_brand_id: int = 0
    spare_email: str = ""
    spare_refresh_token: str = ""
    key_to_revoke: int = 0
    attendee_to_export: int = 0
    attendee_to_erase: int = 0
    attendee_to_confirm: int = 0
    confirm_code: str = ""
    artist_claim_token: str = ""
    sealed: int = 0  # live, round 1 opened and closed: sealed
    receipt: str = ""  # of a vote in `live`
    vote_to_void: int = 0  # a vote in `live`
    attendee_to_void: int = 0


Expect = dict[str, int]


@dataclass(frozen=True)
class Case:
    """One request to one route; `expect` lists the status of each caller, in `CALLERS` order."""

    method: str
    route: str  # the path as the app declares it, e.g. /events/{event_id}/publish
    expect: str
    params: Callable[[World], dict[str, Any]] = lambda w: {}
    json: Callable[[World], Any] | None = None
    form: Callable[[World], dict[str, str]] | None = None  # form-encoded, signed as Twilio signs it
    unsigned_form: bool = False
    note: str = ""
    query: dict[str, str] | None = None  # a query string, for a variant of a route (dryRun, dataset)

    def status_for(self, caller: str) -> int:
        statuses = self.expect.split()
        assert len(statuses) == len(CALLERS), self
        return int(statuses[CALLERS.index(caller)])

    def path(self, world: World) -> str:
        return bare(self.route).format(**self.params(world))


def bare(route: str) -> str:
    """A route without its path converters: `/e/{event_id:int}` is `/e/{event_id}`."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route)


def inbound(w: World) -> dict[str, str]:
    return {"MessageSid": f"SM{uuid.uuid4().hex}", "From": new_phone(), "To": "+12025550000", "Body": "HELP"}


def delivery_report(w: World) -> dict[str, str]:
    return {"MessageSid": f"SM{uuid.uuid4().hex}", "MessageStatus": "delivered"}


#  The matrix. Columns:                                                                  anon fan artist brand dev key admin ballot
#  The order is the order of the requests: `claim artist` (which makes a fan an artist) and `logout` come last.
CASES: list[Case] = [
    # operations and documents
    Case("GET", "/health", "200 200 200 200 200 200 200 200"),
    Case("GET", "/ready", "200 200 200 200 200 200 200 200"),
    Case("GET", "/metrics", "401 401 401 401 401 401 401 401", note="only METRICS_TOKEN, which no caller holds"),
    Case("GET", "/openapi.json", "200 200 200 200 200 200 200 200"),
    Case("GET", "/docs", "200 200 200 200 200 200 200 200"),
    Case("GET", "/docs/oauth2-redirect", "200 200 200 200 200 200 200 200"),
    Case("GET", "/redoc", "200 200 200 200 200 200 200 200"),
    # accounts: public calls ignore credentials
    Case("POST", "/auth/signup", "201 201 201 201 201 201 201 201", json=lambda w: {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}),
    Case("POST", "/auth/login", "200 200 200 200 200 200 200 200", json=lambda w: {"email": w.spare_email, "password": PASSWORD}),
    Case("POST", "/auth/refresh", "200 200 200 200 200 200 200 200", json=lambda w: {"refreshToken": w.spare_refresh_token}),
    Case("GET", "/auth/profile", "401 200 200 200 200 200 200 401"),
    Case("PATCH", "/users/{user_id}", "401 403 403 403 403 403 200 401", params=lambda w: {"user_id": w.owner_id}, json=lambda w: {"role": "brand"}),
    Case("POST", "/auth/api-keys", "401 403 403 403 201 403 201 401", json=lambda w: {"name": "k"}),
    Case("GET", "/auth/api-keys", "401 403 403 403 200 200 200 401"),
    Case("DELETE", "/auth/api-keys/{key_id}", "401 403 403 403 204 403 204 401", params=lambda w: {"key_id": w.key_to_revoke}),
    # events and rounds
    Case("POST", "/events", "401 403 403 403 403 403 201 401", json=lambda w: event_body()),
    Case("GET", "/events", "200 200 200 200 200 200 200 401"),
    Case("GET", "/events/{event_id}", "200 200 200 200 200 200 200 401", params=lambda w: {"event_id": w.published}),
    Case("GET", "/events/{event_id}", "404 404 200 404 404 404 200 401", params=lambda w: {"event_id": w.draft}, note="a draft exists only for its artists, sponsors and admins"),
    Case("PUT", "/events/{event_id}", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.draft}, json=lambda w: {"title": "New title"}),
    Case("POST", "/events/{event_id}/publish", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.draft_to_publish}),
    Case("POST", "/events/{event_id}/start", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.published_to_start}),
    Case("POST", "/events/{event_id}/close", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live_to_close}),
    Case("POST", "/events/{event_id}/archive", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.draft_to_archive}),
    Case("GET", "/events/{event_id}/rounds", "200 200 200 200 200 200 200 401", params=lambda w: {"event_id": w.published}),
    Case("POST", "/events/{event_id}/rounds/{number}/open", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live_pending, "number": 1}),
    Case("POST", "/events/{event_id}/rounds/{number}/close", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live_round_open, "number": 1}),
    Case("POST", "/events/{event_id}/sponsors", "401 403 403 403 403 403 201 401", params=lambda w: {"event_id": w.published}, json=lambda w: {"userId": w.spare_brand_id}),
    Case("GET", "/events/{event_id}/sponsors", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.published}),
    # artists
    Case("POST", "/events/{event_id}/artists", "401 403 403 403 403 403 201 401", params=lambda w: {"event_id": w.draft}, json=lambda w: {"name": "New Band"}),
    Case("GET", "/events/{event_id}/artists", "200 200 200 200 200 200 200 401", params=lambda w: {"event_id": w.published}),
    Case("POST", "/events/{event_id}/artists/{artist_id}/accept", "401 403 200 403 403 403 200 401", params=lambda w: {"event_id": w.published, "artist_id": w.artist_id}),
    Case("POST", "/events/{event_id}/artists/{artist_id}/decline", "401 403 200 403 403 403 200 401", params=lambda w: {"event_id": w.published, "artist_id": w.artist_id}),
    # attendees: the web join and confirm take no credential; the organizer's calls need an admin
    Case("POST", "/events/{event_id}/join", "202 202 202 202 202 202 202 202", params=lambda w: {"event_id": w.published}, json=lambda w: {"phoneNumber": new_phone()}),
    Case("POST", "/attendees/{attendee_id}/confirm", "200 200 200 200 200 200 200 200", params=lambda w: {"attendee_id": w.attendee_to_confirm}, json=lambda w: {"code": w.confirm_code}),
    Case("POST", "/events/{event_id}/attendees", "401 403 403 403 403 403 201 401", params=lambda w: {"event_id": w.published}, json=lambda w: {"phoneNumber": new_phone()}),
    Case("GET", "/events/{event_id}/attendees", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live}),
    Case("GET", "/attendees/{attendee_id}/export", "401 403 403 403 403 403 200 401", params=lambda w: {"attendee_id": w.attendee_to_export}),
    Case("DELETE", "/attendees/{attendee_id}", "401 403 403 403 403 403 204 401", params=lambda w: {"attendee_id": w.attendee_to_erase}),
    # voting: only a ballot token votes; the leaderboard is public unless hidden
    Case("POST", "/events/{event_id}/vote", "401 401 401 401 401 401 401 201", params=lambda w: {"event_id": w.live}, json=lambda w: {"round": 1, "artistId": w.artist_id, "token": uuid.uuid4().hex}),
    Case("GET", "/ballot", "401 401 401 401 401 401 401 200"),
    Case("GET", "/events/{event_id}/leaderboard", "200 200 200 200 200 200 200 401", params=lambda w: {"event_id": w.live}),
    Case("GET", "/events/{event_id}/leaderboard", "403 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.hidden}, note="a hidden board: admins only"),
    # the sealed record: seals and receipts are public (the receipt is the proof); voids are the organizer's
    Case("GET", "/events/{event_id}/rounds/{number}/seal", "200 200 200 200 200 200 200 200", params=lambda w: {"event_id": w.sealed, "number": 1}),
    Case("GET", "/events/{event_id}/receipts/{receipt}", "200 200 200 200 200 200 200 200", params=lambda w: {"event_id": w.live, "receipt": w.receipt}),
    Case("POST", "/events/{event_id}/votes/{vote_id}/void", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live, "vote_id": w.vote_to_void}, json=lambda w: {"reason": "fraud"}),
    Case("POST", "/attendees/{attendee_id}/void", "401 403 403 403 403 403 200 401", params=lambda w: {"attendee_id": w.attendee_to_void}, json=lambda w: {"reason": "duplicate"}),
    # SMS: Twilio's signature is the only credential
    Case("POST", "/sms/join", "200 200 200 200 200 200 200 200", form=inbound),
    Case("POST", "/sms/join", "403 403 403 403 403 403 403 403", form=inbound, unsigned_form=True, note="no signature: no role gets in"),
    Case("POST", "/sms/status", "204 204 204 204 204 204 204 204", form=delivery_report),
    Case("POST", "/sms/status", "403 403 403 403 403 403 403 403", form=delivery_report, unsigned_form=True),
    # messaging
    Case("POST", "/events/{event_id}/messages", "401 403 403 403 403 403 202 401", params=lambda w: {"event_id": w.live}, json=lambda w: {"channel": "sms", "messageType": "CUSTOM", "body": "Doors at 8"}),
    Case("GET", "/events/{event_id}/messages", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live}),
    Case("POST", "/events/{event_id}/messages", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live}, json=lambda w: {"channel": "sms", "messageType": "CUSTOM", "body": "Doors at 8"}, query={"dryRun": "true"}, note="a dry run: nothing queued"),
    # after the show: the brand sponsors `live` (privacy mode on: aggregates); developers see aggregate analytics
    Case("GET", "/events/{event_id}/report", "401 403 403 200 403 403 200 401", params=lambda w: {"event_id": w.live}),
    Case("GET", "/events/{event_id}/report", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live}, query={"dataset": "consent"}, note="the consent record: admins only, never the sponsor"),
    Case("GET", "/analytics/events/{event_id}", "401 403 403 200 200 200 200 401", params=lambda w: {"event_id": w.live}),
    Case("POST", "/events/{event_id}/recap", "401 403 403 403 403 403 201 401", params=lambda w: {"event_id": w.closed}),
    Case("GET", "/events/{event_id}/recap", "200 200 200 200 200 200 200 200", params=lambda w: {"event_id": w.closed}),
    Case("GET", "/recaps/{name}", "200 200 200 200 200 200 200 200", params=lambda w: {"name": w.recap_name}),
    # integrity: fraud signals, with personal data, for organizers only
    Case("GET", "/events/{event_id}/integrity", "401 403 403 403 403 403 200 401", params=lambda w: {"event_id": w.live}),
    # the audit log: admins only (read-only; it is append-only)
    Case("GET", "/audit", "401 403 403 403 403 403 200 401"),
    # pages: public, whatever the credential
    Case("GET", "/", "200 200 200 200 200 200 200 200"),
    Case("GET", "/console", "200 200 200 200 200 200 200 200"),
    Case("GET", "/e/{event_id:int}", "200 200 200 200 200 200 200 200", params=lambda w: {"event_id": w.published}),
    Case("GET", "/j/{keyword}", "200 200 200 200 200 200 200 200", params=lambda w: {"keyword": w.published_keyword}),
    Case("GET", "/b/{ballot_token}", "200 200 200 200 200 200 200 200", params=lambda w: {"ballot_token": "any-token"}),
    Case("GET", "/claim/{claim_token}", "200 200 200 200 200 200 200 200", params=lambda w: {"claim_token": w.artist_claim_token}),
    Case("GET", "/static/{path}", "200 200 200 200 200 200 200 200", params=lambda w: {"path": "css/base.css"}),
    # last: these change who the caller is
    Case("POST", "/artists/{artist_id}/claim", "401 200 200 200 200 403 200 401", params=lambda w: {"artist_id": w.unclaimed_artist_id}, json=lambda w: {"claimToken": w.unclaimed_claim_token}),
    Case("POST", "/auth/logout", "401 204 204 204 204 403 204 401"),
]  # fmt: skip


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, as declared (HEAD aside: Starlette adds it to GET routes).

    A path converter is left out (`{event_id:int}` is `{event_id}`): the vote's plain Starlette route
    shadows the FastAPI route of the same path, and the case of that path is answered by it.
    """
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Mount):
            found.add(("GET", f"{context.path}/{{path}}"))
            continue
        found |= {(method, bare(str(context.path))) for method in (context.methods or set()) - {"HEAD"}}
    return found


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    declared = app_routes(app)
    tabled = {(case.method, bare(case.route)) for case in CASES}
    assert sorted(declared - tabled) == [], "routes with no line in CASES: add one"
    assert sorted(tabled - declared) == [], "lines in CASES for routes the app does not have"


async def build_world(client: AsyncClient, runtime: Runtime, actors: Actors) -> World:
    w = World()
    made: dict[str, Actor] = {role: await actors.make(role) for role in ("fan", "brand", "developer", "admin")}
    admin = made["admin"]
    artist_user, owner, spare = await actors.make("fan"), await actors.make("fan"), await actors.make("fan")
    w.owner_id, w.spare_email, w.spare_refresh_token = owner.user_id, spare.email, spare.refresh_token
    w.spare_brand_id = (await actors.make("brand")).user_id

    async def event(status: str, **config: Any) -> dict[str, Any]:
        return await make_event(client, admin, status=status, **config)

    async def invite(event_id: int, **body: Any) -> dict[str, Any]:
        return ok(await client.post(f"/events/{event_id}/artists", json=body, headers=admin.headers), 201)

    async def admin_post(path: str) -> None:
        ok(await client.post(path, headers=admin.headers))

    w.draft, w.draft_to_publish, w.draft_to_archive = [(await event("draft"))["id"] for _ in range(3)]
    published = await event("published")
    w.published, w.published_keyword = published["id"], published["keyword"]
    w.published_to_start = (await event("published"))["id"]
    w.live, w.live_pending, w.live_round_open, w.live_to_close = [(await event("live"))["id"] for _ in range(4)]
    w.hidden = (await event("live", leaderboardVisibility="hidden"))["id"]

    # the artist caller: invited to the draft, claimed, then invited to the published and the live event
    invitation = await invite(w.draft, name="The Owls")
    w.artist_id, w.artist_claim_token = invitation["artistId"], invitation["inviteUrl"].rsplit("/", 1)[1]
    claim = {"claimToken": w.artist_claim_token}
    ok(await client.post(f"/artists/{w.artist_id}/claim", json=claim, headers=artist_user.headers))
    await invite(w.published, artistId=w.artist_id)
    await invite(w.live, artistId=w.artist_id)
    await admin_post(f"/events/{w.live}/artists/{w.artist_id}/accept")
    unclaimed = await invite(w.published, name="The Foxes")
    w.unclaimed_artist_id, w.unclaimed_claim_token = unclaimed["artistId"], unclaimed["inviteUrl"].rsplit("/", 1)[1]
    for event_id in (w.live, w.live_round_open, w.hidden):
        await admin_post(f"/events/{event_id}/rounds/1/open")

    # the brand sponsors the live event; a closed event with its recap page (rendered by the close)
    ok(
        await client.post(f"/events/{w.live}/sponsors", json={"userId": made["brand"].user_id}, headers=admin.headers),
        201,
    )
    closed = await event("live")
    w.closed = closed["id"]
    await admin_post(f"/events/{w.closed}/close")
    w.recap_name = ok(await client.get(f"/events/{w.closed}/recap"))["url"].rsplit("/", 1)[1]

    # attendees: the ballot caller's, one to export, one to erase, one waiting for its code
    ballot = await add_attendee(runtime, w.live)
    w.attendee_to_export = (await add_attendee(runtime, w.live)).attendee_id
    w.attendee_to_erase = (await add_attendee(runtime, w.live)).attendee_id
    w.attendee_to_confirm, body = await joined(client, runtime, w.published, new_phone())
    w.confirm_code = code_in(body)
    # a sealed round, a vote's receipt, a vote and an attendee to void
    w.sealed = (await event("live"))["id"]
    await admin_post(f"/events/{w.sealed}/rounds/1/open")
    await admin_post(f"/events/{w.sealed}/rounds/1/close")

    async def cast_vote() -> dict[str, Any]:
        voter = await add_attendee(runtime, w.live)
        vote = {"round": 1, "artistId": w.artist_id, "token": uuid.uuid4().hex}
        return ok(await client.post(f"/events/{w.live}/vote", json=vote, headers=voter.headers), 201)

    w.receipt, w.vote_to_void = (await cast_vote())["receipt"], (await cast_vote())["id"]
    w.attendee_to_void = (await add_attendee(runtime, w.live)).attendee_id

    keys = [
        ok(await client.post("/auth/api-keys", json={"name": n}, headers=made["developer"].headers), 201)
        for n in ("read", "spare")
    ]
    w.key_to_revoke = keys[1]["id"]
    w.callers = {role: actor.headers for role, actor in made.items()}
    w.callers |= {
        "anonymous": {},
        "artist": artist_user.headers,
        "api_key": {"Authorization": f"Bearer {keys[0]['key']}"},
        "ballot": ballot.headers,
    }
    return w


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_route_admits_exactly_its_callers(
    client: AsyncClient, runtime: Runtime, actors: Actors, caller: str, figures: Figures
) -> None:
    world = await build_world(client, runtime, actors)
    wrong: list[str] = []
    for case in CASES:
        path = case.path(world)
        headers = dict(world.callers[caller])
        if case.form is not None:
            form = case.form(world)
            if not case.unsigned_form:
                headers["X-Twilio-Signature"] = sign(path, form)
            r = await client.request(case.method, path, data=form, headers=headers)
        else:
            body = case.json(world) if case.json else None
            r = await client.request(case.method, path, json=body, headers=headers, params=case.query)
        expected = case.status_for(caller)
        figures.add("hostile cases tried")
        if r.status_code != expected:
            wrong.append(f"{case.method} {path} ({case.route}): {r.status_code}, expected {expected}: {r.text[:200]}")
        elif r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", (case.route, r.headers)
    assert wrong == [], "\n".join(wrong)
