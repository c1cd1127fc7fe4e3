"""Voting fixtures: a live event with accepted artists, and attendees holding ballot tokens."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from httpx import AsyncClient

from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.core.security import encode_jwt
from tests.conftest import Actor
from tests.factories import event_body

_phones = itertools.count(5550100)


@dataclass
class Ballot:
    attendee_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


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
        async with unit_of_work(self.runtime.sessionmaker) as session:
            attendee = Attendee(
                event_id=self.event_id,
                phone_number=phone or f"+1202{next(_phones):07d}",
                confirmed_at=utcnow() if confirmed else None,
                opted_out=opted_out,
            )
            session.add(attendee)
            await session.flush()
        token = encode_jwt(
            {"att": attendee.id, "evt": self.event_id},
            secret=self.runtime.secret_key,
            purpose="ballot",
            lifetime=dt.timedelta(days=1),
        )
        return Ballot(attendee.id, token)

    async def vote(self, ballot: Ballot, artist: str, *, round_: int = 1, token: str | None = None) -> Any:
        body = {"round": round_, "artistId": self.artists[artist], "token": token or f"tok-{next(_phones)}"}
        return await self.client.post(f"/events/{self.event_id}/vote", json=body, headers=ballot.headers)

    async def admin_post(self, path: str) -> Any:
        r = await self.client.post(f"/events/{self.event_id}{path}", headers=self.admin.headers)
        assert r.status_code == 200, r.text
        return r.json()

    async def board(self, round_: int | None = None, headers: dict[str, str] | None = None) -> Any:
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


@pytest.fixture
async def stage(client: AsyncClient, runtime: Runtime, admin: Actor) -> Stage:
    return await build_stage(client, runtime, admin)
