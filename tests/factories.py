"""Factories for the suite: request bodies (valid by default, any field overridable), phone numbers, and the
rows a test starts from: events in any status, a live stage with artists and an open round, ballots.

Everything here goes through the app's own API or services (a ballot token is issued by the attendees
service, never assembled from claim names), so a test built on it breaks only when behaviour does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from httpx import AsyncClient, Response

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event
from tests.conftest import Actor
from tests.http import ok

_counter = itertools.count(1)


def event_body(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    start = dt.datetime(2026, 12, 1, 19, 0, tzinfo=dt.UTC) + dt.timedelta(days=n)
    body: dict[str, Any] = {
        "title": f"Battle of the Bands #{n}",
        "startDate": start.isoformat(),
        "endDate": (start + dt.timedelta(hours=4)).isoformat(),
        "venue": "The Roundhouse",
        "accessType": "public",
        "keyword": f"ROCK{n}X",
        "voteConfig": {"rounds": [{"number": 1, "name": "Heats"}, {"number": 2, "name": "Final"}]},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}  # an override of None leaves the field out


# --- phone numbers ---------------------------------------------------------------------------------------

# The one source of fans' numbers: +1 <area> 555-NNNN, never one a test writes by hand (those use area 202,
# as do our own number +12025550000 and the fake Twilio's unreachable +12025559999). Each test worker is its
# own process with its own database, so a counter per process is unique where it matters.
_AREAS = ("312", "415", "617", "206", "305", "512", "718", "404", "503", "720")
_phones = itertools.count()


def new_phone() -> str:
    """A valid US number in E.164 that no other call in this process returns."""
    n = next(_phones)
    if n >= len(_AREAS) * 10_000:
        raise RuntimeError("tests.factories.new_phone ran out of numbers: add area codes")
    return f"+1{_AREAS[n // 10_000]}555{n % 10_000:04d}"


# --- events --------------------------------------------------------------------------------------------------

LIFECYCLE = {
    "draft": [],
    "published": ["publish"],
    "live": ["publish", "start"],
    "closed": ["publish", "start", "close"],
    "archived": ["archive"],
}


async def make_event(
    client: AsyncClient,
    admin: Actor,
    *,
    status: str = "published",
    access: str = "public",
    language: str = "en",
    keyword: str | None = None,
    **vote_config: Any,
) -> dict[str, Any]:
    """An event in `status`, of `access` type; `vote_config` overrides voteConfig fields (camelCase)."""
    overrides: dict[str, Any] = {"accessType": access, "defaultLanguage": language}
    if keyword is not None:
        overrides["keyword"] = keyword
    if vote_config:
        overrides["voteConfig"] = {"rounds": [{"number": 1, "name": "Final"}], **vote_config}
    event = ok(await client.post("/events", json=event_body(**overrides), headers=admin.headers), 201)
    for action in LIFECYCLE[status]:
        event = ok(await client.post(f"/events/{event['id']}/{action}", headers=admin.headers))
    return event


# --- attendees and their ballots -------------------------------------------------------------------------


@dataclass
class Ballot:
    attendee_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def add_attendee(
    runtime: Runtime,
    event_id: int,
    *,
    confirmed: bool = True,
    opted_out: bool = False,
    phone: str | None = None,
    email: str | None = None,
) -> Ballot:
    """An attendee row (as a join and confirm would leave it) and the ballot token the app gives it."""
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = Attendee(
            event_id=event_id,
            phone_number=phone or new_phone(),
            email=email,
            confirmed_at=utcnow() if confirmed else None,
            opted_out=opted_out,
        )
        session.add(attendee)
        await session.flush()
        event = await session.get(Event, event_id)
        assert event is not None, f"no event {event_id}"
        token = attendees_service.ballot_token_for(runtime=runtime, attendee=attendee, event=event)
    return Ballot(attendee.id, token)


@dataclass
class Stage:
    """A live event, its accepted artists (by name), and a way to hand out ballots."""

    client: AsyncClient
    runtime: Runtime
    admin: Actor
    event_id: int
    artists: dict[str, int] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)

    async def ballot(self, *, confirmed: bool = True, opted_out: bool = False, phone: str | None = None) -> Ballot:
        return await add_attendee(self.runtime, self.event_id, confirmed=confirmed, opted_out=opted_out, phone=phone)

    async def vote(self, ballot: Ballot, artist: str, *, round_: int = 1, token: str | None = None) -> Response:
        body = {"round": round_, "artistId": self.artists[artist], "token": token or f"tok-{uuid.uuid4().hex}"}
        return await self.client.post(f"/events/{self.event_id}/vote", json=body, headers=ballot.headers)

    async def admin_post(self, path: str) -> Any:
        r = await self.client.post(f"/events/{self.event_id}{path}", headers=self.admin.headers)
        assert r.status_code == 200, r.text
        return r.json()

    async def board(self, round_: int | None = None, headers: dict[str, str] | None = None) -> Response:
        params = {"round": round_} if round_ else {}
        return await self.client.get(f"/events/{self.event_id}/leaderboard", params=params, headers=headers or {})


async def build_stage(
    client: AsyncClient,
    runtime: Runtime,
    admin: Actor,
    *,
    names: tuple[str, ...] = ("Owls", "Foxes", "Bears"),
    **config: Any,
) -> Stage:
    """A live event with two rounds (`config` overrides voteConfig), `names` accepted, round 1 open."""
    vote_config = {"rounds": [{"number": 1, "name": "Heats"}, {"number": 2, "name": "Final"}], **config}
    created = await client.post("/events", json=event_body(voteConfig=vote_config), headers=admin.headers)
    assert created.status_code == 201, created.text
    stage = Stage(client, runtime, admin, created.json()["id"])
    for name in names:
        invited = await client.post(f"/events/{stage.event_id}/artists", json={"name": name}, headers=admin.headers)
        artist_id = invited.json()["artistId"]
        stage.artists[name] = artist_id
        stage.codes[name] = invited.json()["voteCode"]
        accepted = await client.post(f"/events/{stage.event_id}/artists/{artist_id}/accept", headers=admin.headers)
        assert accepted.status_code == 200
    await stage.admin_post("/publish")
    await stage.admin_post("/start")
    await stage.admin_post("/rounds/1/open")
    return stage


@dataclass
class Show:
    """A live event with accepted artists and round 1 open: `codes` maps artist names to vote codes."""

    event: dict[str, Any]
    artists: dict[str, int]
    codes: dict[str, str]

    @property
    def id(self) -> int:
        event_id: int = self.event["id"]
        return event_id

    @property
    def keyword(self) -> str:
        keyword: str = self.event["keyword"]
        return keyword


async def live_show(
    client: AsyncClient,
    runtime: Runtime,
    admin: Actor,
    *,
    names: tuple[str, ...] = ("Owls", "Foxes"),
    open_round: bool = True,
    **event: Any,
) -> Show:
    """`make_event` (its keyword arguments), then `names` invited and accepted, started, round 1 open."""
    created = await make_event(client, admin, status="published", **event)
    show = Show(created, {}, {})
    for name in names:
        invited = ok(await client.post(f"/events/{show.id}/artists", json={"name": name}, headers=admin.headers), 201)
        show.artists[name] = invited["artistId"]
        show.codes[name] = invited["voteCode"]
        accept = f"/events/{show.id}/artists/{invited['artistId']}/accept"
        ok(await client.post(accept, headers=admin.headers))
    ok(await client.post(f"/events/{show.id}/start", headers=admin.headers))
    if open_round:
        ok(await client.post(f"/events/{show.id}/rounds/1/open", headers=admin.headers))
    return show


@dataclass
class WebFan:
    """A fan who joined on the web and confirmed the phone, holding a ballot token."""

    attendee_id: int
    phone: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def web_fan(runtime: Runtime, event_id: int, *, email: str | None = None) -> WebFan:
    phone = new_phone()
    email = email or f"fan-{uuid.uuid4().hex[:8]}@example.com"
    ballot = await add_attendee(runtime, event_id, phone=phone, email=email)
    return WebFan(ballot.attendee_id, phone, email, ballot.token)
