"""A seeded show for reports, analytics and recaps: three rounds, three artists (one named like a formula),
votes from the web and by SMS, fans who opted out and fans whose data was erased; known phones and e-mails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select

from stagevote.app import create_server_app
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import code_in
from tests.conftest import Actor
from tests.factories import Show, WebFan, live_show, new_phone, web_fan
from tests.http import ok
from tests.messaging.conftest import settle
from tests.realtime.test_live import free_port
from tests.sms.conftest import AUTH_TOKEN, Phone

# moved to tests/factories.py; still importable from here for branches written before the move
__all__ = ["WebFan", "web_fan"]


FORMULA_ARTIST = '=HYPERLINK("http://evil.example/","Bears")'
FORMULA_EMAIL = "=fan@example.com"
ROUNDS = [{"number": 1, "name": "Heats"}, {"number": 2, "name": "Semis"}, {"number": 3, "name": "Final"}]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, plus the Twilio auth token the SMS fans' texts are signed with."""
    return settings.model_copy(
        update={
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_account_sid": "AC" + "0" * 32,
            "sse_ping_seconds": 0.5,
        }
    )


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    """A second instance of the whole server (Socket.IO in front of the API) on a loopback port, on the same
    database as the `app` fixture; its base URL."""
    application = create_server_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(250):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Frame:
    """One server-sent event: its name and its data (a comment, such as a keep-alive ping, has no name)."""

    event: str | None
    data: str
    comment: str | None = None
    at: float = 0.0

    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    """Reads a server-sent event stream over real HTTP in the background, frame by frame."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = {"Accept": "text/event-stream", **headers}
        self.frames: list[Frame] = []
        self.status: int | None = None
        self.raw: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventStream:
        self._task = asyncio.create_task(self._read())
        for _ in range(250):
            if self.status is not None:
                break
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        timeout = httpx.Timeout(5, read=60)
        async with httpx.AsyncClient(timeout=timeout) as http, http.stream("GET", self.url, headers=self.headers) as r:
            self.status = r.status_code
            event: str | None = None
            data: list[str] = []
            async for line in r.aiter_lines():
                self.raw.append(line)
                if line.startswith(":"):
                    self.frames.append(Frame(None, "", line[1:].strip(), time.monotonic()))
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and (event or data):
                    self.frames.append(Frame(event, "\n".join(data), None, time.monotonic()))
                    event, data = None, []

    def named(self, name: str = "analytics") -> list[Frame]:
        return [f for f in self.frames if f.event == name]

    async def wait_for(self, predicate: Callable[[Frame], bool], within: float) -> Frame:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching frame within {within}s; got {self.frames}")


@dataclass
class Seeded:
    """The seeded show and the personal data it holds (which no sponsor may ever see)."""

    show: Show
    admin: Actor
    web: list[WebFan]
    sms: list[Phone]
    erased: list[int] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)

    @property
    def event_id(self) -> int:
        return self.show.id

    @property
    def phones(self) -> list[str]:
        return [f.phone for f in self.web] + [p.number for p in self.sms]

    @property
    def emails(self) -> list[str]:
        return [f.email for f in self.web]

    def secrets(self) -> list[str]:
        """Every phone (E.164, and without +1) and e-mail of the show: what must never reach a sponsor."""
        return [*self.phones, *(p.removeprefix("+1") for p in self.phones), *self.emails]


async def web_vote(client: AsyncClient, show: Show, fan: WebFan, artist: str, round_: int) -> None:
    body = {"round": round_, "artistId": show.artists[artist], "token": uuid.uuid4().hex}
    ok(await client.post(f"/events/{show.id}/vote", json=body, headers=fan.headers), 201)


async def sms_vote(phone: Phone, show: Show, artist: str) -> None:
    assert "counted" in (await phone.text(f"VOTE {show.codes[artist]}") or "")


async def next_round(client: AsyncClient, show: Show, admin: Actor, number: int) -> None:
    ok(await client.post(f"/events/{show.id}/rounds/{number - 1}/close", headers=admin.headers))
    ok(await client.post(f"/events/{show.id}/rounds/{number}/open", headers=admin.headers))


async def seed_show(client: AsyncClient, runtime: Runtime, admin: Actor, **config: Any) -> Seeded:
    """14 web fans and 6 SMS fans vote over three rounds; then two numbers text STOP and two fans are erased.

    Round 1: Owls 9 web + 3 SMS, Foxes 5 web, the formula artist 3 SMS · round 2: Owls 4, Foxes 8, the
    formula artist 1 web + 5 SMS · round 3: Owls 11 web, Foxes 5 SMS. The event stays live, round 3 open.
    """
    show = await live_show(client, runtime, admin, names=("Owls", "Foxes", FORMULA_ARTIST), rounds=ROUNDS, **config)
    web = [await web_fan(runtime, show.id, email=FORMULA_EMAIL if n == 0 else None) for n in range(14)]
    sms = [Phone(client, new_phone()) for _ in range(6)]
    for phone in sms:
        code = code_in(await phone.text(f"JOIN {show.keyword}") or "")
        assert "/b/" in (await phone.text(code) or "")
    seeded = Seeded(show, admin, web, sms)

    for n, fan in enumerate(web):
        await web_vote(client, show, fan, "Owls" if n < 9 else "Foxes", 1)
    for n, phone in enumerate(sms):
        await sms_vote(phone, show, "Owls" if n < 3 else FORMULA_ARTIST)
    for number in (sms[5].number, web[12].phone):  # two numbers text STOP after round 1
        await Phone(client, number).text("STOP")
        seeded.opted_out.append(number)

    await next_round(client, show, admin, 2)
    for n, fan in enumerate(web[:12] + web[13:]):
        await web_vote(client, show, fan, "Owls" if n < 4 else "Foxes" if n < 12 else FORMULA_ARTIST, 2)
    for phone in sms[:5]:
        await sms_vote(phone, show, FORMULA_ARTIST)

    await next_round(client, show, admin, 3)
    for fan in web[:11]:
        await web_vote(client, show, fan, "Owls", 3)
    for phone in sms[:5]:
        await sms_vote(phone, show, "Foxes")

    sms_five = await attendee_id_of(runtime, show.id, sms[5].number)
    for attendee_id in (web[11].attendee_id, sms_five):  # one who voted on the web, one who texted STOP
        r = await client.delete(f"/attendees/{attendee_id}", headers=admin.headers)
        assert r.status_code == 204, r.text
        seeded.erased.append(attendee_id)
    await settle(runtime)
    return seeded


async def attendee_id_of(runtime: Runtime, event_id: int, phone: str) -> int:
    async with unit_of_work(runtime.sessionmaker) as session:
        found = await session.scalar(
            select(Attendee.id).where(Attendee.event_id == event_id, Attendee.phone_number == phone)
        )
    assert found is not None
    return int(found)


async def brand_of(client: AsyncClient, actors: Any, event_id: int, admin: Actor) -> Actor:
    """A brand user linked to the event as its sponsor."""
    brand: Actor = await actors.make("brand")
    ok(await client.post(f"/events/{event_id}/sponsors", json={"userId": brand.user_id}, headers=admin.headers), 201)
    return brand
