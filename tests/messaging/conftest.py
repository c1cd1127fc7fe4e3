"""A loopback server that speaks Twilio's Messages API, and an app whose SMS provider is Twilio pointed at it."""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from stagevote.config import Settings

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "twilio-secret-token"
OUR_NUMBER = "+12025550000"
UNREACHABLE_NUMBER = "+12025559999"  # the fake answers 400 (error 21211) for this one


@dataclass
class FakeTwilio:
    """Twilio's `POST /2010-04-01/Accounts/{sid}/Messages.json`: checks basic auth and the form like Twilio does."""

    port: int = 0
    received: list[dict[str, str]] = field(default_factory=list)
    _sids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def messages(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.match_info["sid"] != ACCOUNT_SID or request.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.received.append(form)
        if not form.get("To") or not form.get("Body"):
            return web.json_response(
                {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}, status=400
            )
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return web.json_response(
                {"code": 21603, "message": "A 'From' phone number is required.", "status": 400}, status=400
            )
        if form["To"] == UNREACHABLE_NUMBER:
            message = f"The 'To' number {form['To']} is not a valid phone number."
            return web.json_response({"code": 21211, "message": message, "status": 400}, status=400)
        sid = f"SM{next(self._sids):032x}"
        return web.json_response(
            {"sid": sid, "account_sid": ACCOUNT_SID, "to": form["To"], "body": form["Body"], "status": "queued"},
            status=201,
        )


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(settings: Settings, twilio: FakeTwilio) -> Settings:
    return settings.model_copy(
        update={
            "sms_provider": "twilio",
            "twilio_api_url": twilio.url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from": OUR_NUMBER,
        }
    )
