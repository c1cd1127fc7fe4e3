"""The pages' HTTP side: security headers, no token in any page, the `GET /ballot` call, 404 pages, the
join number and QR code of the screen, and ballot tokens kept out of the access log."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import segno
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError

from stagevote.app import create_app
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.web.pages import join_number
from tests.conftest import Actor
from tests.e2e.conftest import LiveServer
from tests.factories import Stage, build_stage
from tests.realtime.test_live import free_port

JWT = re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}")


@pytest.fixture
async def stage(client: AsyncClient, runtime: Runtime, admin: Actor) -> Stage:
    return await build_stage(client, runtime, admin)


async def page_urls(client: AsyncClient, stage: Stage) -> dict[str, str]:
    """Every page, with the token it carries in its URL (if any)."""
    keyword = (await client.get(f"/events/{stage.event_id}")).json()["keyword"]
    invited = await client.post(
        f"/events/{stage.event_id}/artists", json={"name": "Late Addition"}, headers=stage.admin.headers
    )
    claim_url = invited.json()["inviteUrl"].removeprefix("http://testserver")
    ballot = await stage.ballot()
    return {
        "landing": "/",
        "console": "/console",
        "screen": f"/e/{stage.event_id}",
        "join": f"/j/{keyword}",
        "ballot": f"/b/{ballot.token}",
        "claim": claim_url,
        "missing": "/e/999999",
    }


def directives(policy: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in (p.strip() for p in policy.split(";")) if d}


async def test_every_page_sends_a_strict_policy_and_carries_no_inline_script(client: AsyncClient, stage: Stage) -> None:
    for name, url in (await page_urls(client, stage)).items():
        r = await client.get(url)
        assert r.status_code == (404 if name == "missing" else 200), (name, r.text)
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        policy = directives(r.headers["content-security-policy"])
        assert policy["script-src"] == "'self'", name
        assert policy["style-src"] == "'self'", name
        assert policy["frame-ancestors"] == "'none'", name
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'", name
        assert "unsafe" not in r.headers["content-security-policy"], name
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        html = r.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{name}: an inline script"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{name}: an inline event handler"
        assert not re.search(r"\sstyle\s*=", html), f"{name}: an inline style"
        carries_token = name in ("ballot", "claim")
        assert r.headers["referrer-policy"] == ("no-referrer" if carries_token else "same-origin"), name
        if carries_token:
            assert r.headers["cache-control"] == "no-store"


async def test_no_page_holds_a_token_not_even_the_one_its_url_carries(client: AsyncClient, stage: Stage) -> None:
    urls = await page_urls(client, stage)
    for name, url in urls.items():
        html = (await client.get(url)).text
        assert not JWT.search(html), f"{name} holds a token: {JWT.search(html)}"
    ballot_token = urls["ballot"].rsplit("/", 1)[1]
    claim_token = urls["claim"].rsplit("/", 1)[1]
    assert ballot_token not in (await client.get(urls["ballot"])).text
    assert claim_token not in (await client.get(urls["claim"])).text


async def test_static_assets_are_served_with_their_type_and_never_sniffed(client: AsyncClient) -> None:
    for path, media_type in (
        ("/static/js/ballot.js", "text/javascript"),
        ("/static/vendor/socket.io-client/socket.io.esm.min.js", "text/javascript"),
        ("/static/css/screen.css", "text/css"),
    ):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(media_type), path
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_the_screen_shows_the_number_to_text_and_a_qr_code_of_the_web_join(
    client: AsyncClient, stage: Stage, settings: Settings
) -> None:
    keyword = (await client.get(f"/events/{stage.event_id}")).json()["keyword"]
    html = (await client.get(f"/e/{stage.event_id}")).text
    assert "Scan to join" in html  # the console SMS provider: nobody can text us, the web join it is
    assert "Text <strong" not in html
    join_url = f"{settings.public_url}/j/{keyword}"
    drawn = segno.make(join_url, error="m", micro=False).svg_inline(
        scale=1, border=2, dark="#000", light="#fff", omitsize=True, svgclass="qr"
    )
    assert drawn in html  # the QR code encodes exactly the web join link


def test_the_number_on_the_screen_is_the_one_fans_text() -> None:
    base = Settings(sms_provider="twilio", twilio_from="+12025550000")
    assert join_number(base) == "+1 202-555-0000"
    assert join_number(base.model_copy(update={"screen_join_number": "+44 20 7946 0000"})) == "+44 20 7946 0000"
    assert join_number(base.model_copy(update={"screen_join_number": "55555"})) == "55555"  # a short code
    assert join_number(base.model_copy(update={"sms_provider": "console"})) is None
    assert join_number(Settings(sms_provider="twilio", twilio_messaging_service_sid="MG1")) is None


async def test_the_screen_may_be_framed_where_the_setting_allows_and_nowhere_else(
    settings: Settings, stage: Stage
) -> None:
    allowed = Settings(screen_frame_ancestors=" 'self'  https://obs.example.com ").screen_frame_ancestors
    framed = create_app(settings.model_copy(update={"screen_frame_ancestors": allowed}))
    transport = ASGITransport(app=framed)
    async with LifespanManager(framed), AsyncClient(transport=transport, base_url="http://testserver") as http:
        screen = await http.get(f"/e/{stage.event_id}")
        console = await http.get("/console")
    assert directives(screen.headers["content-security-policy"])["frame-ancestors"] == "'self' https://obs.example.com"
    assert "x-frame-options" not in screen.headers
    assert directives(console.headers["content-security-policy"])["frame-ancestors"] == "'none'"
    for bad in ("https://a.example; script-src *", "'unsafe-inline'", "", "https://a.example,https://b"):
        with pytest.raises(ValidationError):
            Settings(screen_frame_ancestors=bad)


async def test_pages_of_what_does_not_exist_are_404_pages(client: AsyncClient, stage: Stage, admin: Actor) -> None:
    draft = (await client.post("/events", json={**_draft_body(), "keyword": "DRAFTONLY"}, headers=admin.headers)).json()
    for url in (f"/e/{draft['id']}", "/e/424242", "/j/DRAFTONLY", "/j/NOSUCHWORD", "/claim/not-a-token"):
        r = await client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert "content-security-policy" in r.headers
    assert (await client.get("/claim/not-a-token")).headers["referrer-policy"] == "no-referrer"
    await stage.admin_post("/close")
    keyword = (await client.get(f"/events/{stage.event_id}")).json()["keyword"]
    assert (await client.get(f"/j/{keyword}")).status_code == 404  # a closed event takes no one


def _draft_body() -> dict[str, object]:
    return {
        "title": "Draft Night",
        "startDate": "2026-12-24T19:00:00Z",
        "endDate": "2026-12-24T23:00:00Z",
    }


async def test_a_ballot_token_tells_its_event_language_and_whether_it_may_vote(
    client: AsyncClient, stage: Stage, runtime: Runtime
) -> None:
    assert (await client.get("/ballot")).status_code == 401
    assert (await client.get("/ballot", headers={"Authorization": "Bearer nonsense"})).status_code == 401
    ballot = await stage.ballot()
    r = await client.get("/ballot", headers=ballot.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"eventId": stage.event_id, "language": "en", "mayVote": True, "reason": None}

    unconfirmed = await stage.ballot(confirmed=False)
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await session.get(Attendee, unconfirmed.attendee_id)
        assert attendee is not None
        attendee.language_pref = "es"
    r = await client.get("/ballot", headers=unconfirmed.headers)
    assert r.json()["language"] == "es"
    assert r.json()["mayVote"] is False
    assert "Confirm your phone number" in r.json()["reason"]
    assert "/ballot" in (await client.get("/openapi.json")).json()["paths"]


@pytest.fixture
async def uvicorn_server(app: FastAPI) -> AsyncIterator[str]:
    served = LiveServer(app, free_port())
    await served.start()
    try:
        yield served.url
    finally:
        await served.stop()


async def test_ballot_and_claim_tokens_never_reach_the_access_log(
    uvicorn_server: str, client: AsyncClient, stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    urls = await page_urls(client, stage)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with httpx.AsyncClient(base_url=uvicorn_server) as http:
        for name in ("ballot", "claim"):
            assert (await http.get(f"{urls[name]}?from=sms")).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any('"GET /b/[redacted]?from=sms HTTP/1.1" 200' in line for line in lines), lines
    assert any('"GET /claim/[redacted]?from=sms HTTP/1.1" 200' in line for line in lines), lines
    for name in ("ballot", "claim"):
        token = urls[name].rsplit("/", 1)[1]
        assert not any(token in line for line in lines), name
