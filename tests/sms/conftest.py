"""SMS test set-up: an app that knows a Twilio auth token, and phones that send it correctly signed texts."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
from httpx import AsyncClient, Response
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from stagevote.config import Settings
from tests.factories import Show, live_show, new_phone

# moved to tests/factories.py; still importable from here for branches written before the move
new_number = new_phone
__all__ = ["Show", "live_show", "new_number"]


AUTH_TOKEN = "test-token"
OUR_NUMBER = "+12025550000"
WEBHOOK = "/sms/join"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, plus the auth token Twilio signs its webhooks with."""
    return settings.model_copy(
        update={"twilio_auth_token": SecretStr(AUTH_TOKEN), "twilio_account_sid": "AC" + "0" * 32}
    )


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


@pytest.fixture
def phone(client: AsyncClient) -> Phone:
    return Phone(client, new_phone())


@pytest.fixture
def another_phone(client: AsyncClient) -> Phone:
    return Phone(client, new_phone())
