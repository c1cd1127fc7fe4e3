"""SMS test set-up: an app that knows a Twilio auth token, and phones that send it correctly signed texts."""

from __future__ import annotations

import itertools
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient, Response
from twilio.request_validator import RequestValidator

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import make_event
from tests.conftest import Actor
from tests.http import ok

AUTH_TOKEN = "test-token"
OUR_NUMBER = "+12025550000"
WEBHOOK = "/sms/join"
_numbers = itertools.count(2000)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, plus the auth token Twilio signs its webhooks with."""
    return settings.model_copy(update={"twilio_auth_token": AUTH_TOKEN, "twilio_account_sid": "AC" + "0" * 32})


def sign(path: str, params: dict[str, str], *, token: str = AUTH_TOKEN) -> str:
    """What Twilio puts in X-Twilio-Signature: our public URL of the path, and the form, signed with `token`."""
    return str(RequestValidator(token).compute_signature(f"http://testserver{path}", params))


def reply_of(r: Response) -> str | None:
    """The text of a TwiML answer (None for an empty `<Response/>`)."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(r.text)  # noqa: S314  (our own answer)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None


@dataclass
class Phone:
    """A fan's phone texting our number through Twilio."""

    client: AsyncClient
    number: str

    async def send(self, body: str, *, sid: str | None = None) -> Response:
        params = {
            "MessageSid": sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": "AC" + "0" * 32,
            "From": self.number,
            "To": OUR_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": sign(WEBHOOK, params)}
        return await self.client.post(WEBHOOK, data=params, headers=headers)

    async def text(self, body: str, *, sid: str | None = None) -> str | None:
        """Send `body`; the reply's text."""
        return reply_of(await self.send(body, sid=sid))


def new_number() -> str:
    return f"+1202555{next(_numbers) % 10000:04d}"


@pytest.fixture
def phone(client: AsyncClient) -> Phone:
    return Phone(client, new_number())


@pytest.fixture
def another_phone(client: AsyncClient) -> Phone:
    return Phone(client, new_number())


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
