"""Browser tests: the real server on a loopback port, Debian's chromium driven by Playwright, a fake Twilio.

The server is the app of the `app` fixture (so `client`, `actors` and `runtime` act on the same database)
served by uvicorn with Socket.IO in front, as `stagevote serve` does. Fans' texts go to the loopback fake
Twilio, where a test reads the code a fan received. Each page is watched for uncaught errors and CSP
violations, and can be checked with axe-core (vendored, injected by the test, never served).

Chromium: `/usr/bin/chromium` (Debian's package; `make test` installs it when missing), or the path in
`STAGEVOTE_CHROMIUM`. Without it these tests skip, saying so. Screenshots and axe reports go to
`STAGEVOTE_TEST_ARTIFACTS` (default `var/test-artifacts`), under `e2e/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import socketio
import uvicorn
from aiohttp import web
from fastapi import FastAPI
from pydantic import SecretStr

from stagevote.config import Settings
from tests.messaging.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, FakeTwilio, _serve
from tests.realtime.test_live import free_port

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None

CHROMIUM = Path(os.environ.get("STAGEVOTE_CHROMIUM", "/usr/bin/chromium"))
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("STAGEVOTE_TEST_ARTIFACTS", "var/test-artifacts")) / "e2e"
AXE_SOURCE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREEN = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000  # how long a page may take to show a change; generous: the machine is shared


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages)
    runner, fake.port = await _serve(app)
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(settings: Settings, twilio: FakeTwilio, port: int) -> Settings:
    return settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "sms_provider": "twilio",
            "twilio_api_url": twilio.url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_from": OUR_NUMBER,
        }
    )


class LiveServer:
    """The app behind Socket.IO (what `stagevote serve` runs), served by uvicorn on a loopback port; a test
    may stop it (every connection drops) and start it again on the same port."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.asgi = socketio.ASGIApp(app.state.live, other_asgi_app=app, socketio_path="socket.io")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._served: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(self.asgi, host="127.0.0.1", port=self.port, log_config=None, lifespan="off")
        self._served = uvicorn.Server(config)
        self._task = asyncio.create_task(self._served.serve())
        for _ in range(250):
            if self._served.started:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the server did not start")

    async def stop(self) -> None:
        if self._served is not None and self._task is not None:
            self._served.should_exit = True
            await self._task
            self._served = self._task = None


@pytest.fixture
async def live_server(app: FastAPI, port: int) -> AsyncIterator[LiveServer]:
    served = LiveServer(app, port)
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


@pytest.fixture
def server(live_server: LiveServer) -> str:
    """The base URL of the running server."""
    return live_server.url


@pytest.fixture
async def browser(server: str) -> AsyncIterator[Browser]:
    """Debian's chromium, headless (closed before the server stops)."""
    if async_playwright is None:
        pytest.skip("playwright is not installed: `make install` installs the dev extra")
    if not HAVE_CHROMIUM:
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's package (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Watched:
    """A page and what went wrong in it: uncaught errors and Content-Security-Policy refusals."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.problems, self.problems


async def open_page(browser: Browser, url: str, *, phone: bool = False) -> Watched:
    """A new page in its own context (a screen at 1920×1080, or a phone at 390×844 with touch)."""
    context: BrowserContext = (
        await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-US")
        if phone
        else await browser.new_context(viewport=SCREEN, locale="en-US")
    )
    page = await context.new_page()
    watched = Watched(page)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            watched.problems.append(f"csp: {message.text}")

    page.on("console", console)
    await page.goto(url)
    return watched


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.evaluate("Promise.all(document.getAnimations().map((a) => a.finished))")  # bars at rest
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def assert_accessible(page: Page, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation (the full report is kept)."""
    await page.evaluate(AXE_SOURCE.read_text())
    results = await page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(results, indent=1))
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"


async def code_sent_to(twilio: FakeTwilio, number: str) -> str:
    """The 6-digit code in the latest text the fake Twilio took for `number`."""
    for _ in range(250):
        for form in reversed(twilio.to(number)):
            found = re.search(r"\b(\d{6})\b", form["Body"])
            if found:
                return found.group(1)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no code was texted to {number}: {twilio.received}")
