"""The pages people in the room use: landing, venue screen, web join, fan ballot, artist claim, organizer console.

Each page is a server-rendered shell (Jinja2, autoescaped) plus a small ES module from `/static/js`; what
moves (standings, rounds, votes, the console's data) comes from the public JSON API and the `/live`
Socket.IO feed, as for any other client. The server renders only what any visitor of the URL may read
anyway (an event's public title and keyword, an invitation's artist and event), so the first paint needs
no round trip. A ballot or claim token is never written into a page: the script reads it from the URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import phonenumbers
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stagevote import __version__
from stagevote.artists import service as artists_service
from stagevote.config import Settings
from stagevote.core.errors import NotFound
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.events import service as events_service
from stagevote.web.qr import qr_svg
from stagevote.web.security import NO_FRAMING, page_headers

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)


def render(
    template: str,
    *,
    status_code: int = 200,
    secret_in_url: bool = False,
    frame_ancestors: str = NO_FRAMING,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("lang", "en")
    context.setdefault("script", None)
    html = _templates.get_template(template).render(version=__version__, **context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers=page_headers(secret_in_url=secret_in_url, frame_ancestors=frame_ancestors),
    )


def missing(message: str, *, secret_in_url: bool = False) -> HTMLResponse:
    return render("missing.html", status_code=404, secret_in_url=secret_in_url, title="Not found", message=message)


def join_number(settings: Settings) -> str | None:
    """The number the venue screen asks fans to text: `SCREEN_JOIN_NUMBER`, else `TWILIO_FROM` when Twilio
    carries the SMS; None when fans cannot text us (the console provider), so the screen offers the web join
    only. An E.164 number is shown in international format (`+1 202-555-0100`), anything else (a short
    code) as written."""
    raw = settings.screen_join_number or (settings.twilio_from if settings.sms_provider == "twilio" else None)
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, settings.default_phone_region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@router.get("/")
async def landing() -> HTMLResponse:
    return render("landing.html", title="stagevote", script="landing.js")


@router.get("/console")
async def console() -> HTMLResponse:
    return render("console.html", title="stagevote console", script="console.js")


@router.get("/e/{event_id:int}")
async def screen(event_id: int, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """The venue screen: what the public may see of the event (drafts do not exist for it)."""
    try:
        event = await events_service.get_event(session=session, principal=None, event_id=event_id)
    except NotFound:
        return missing("There is no such event, or it is not published yet.")
    settings = runtime.settings
    join_url = f"{settings.public_url}/j/{event.keyword}"
    return render(
        "screen.html",
        frame_ancestors=settings.screen_frame_ancestors,
        title=event.title,
        lang=event.default_language,
        script="screen.js",
        event=event,
        join_url=join_url,
        join_url_shown=join_url.split("://", 1)[-1],
        join_number=join_number(settings),
        qr=qr_svg(join_url),
    )


@router.get("/j/{keyword}")
async def join(keyword: str, session: SessionDep) -> HTMLResponse:
    """The web join (the QR code's target): phone number, code, then the ballot."""
    event = await events_service.get_joinable_event_by_keyword(session=session, keyword=keyword)
    if event is None:
        return missing(f"No event takes {keyword.upper()[:40]} right now.")
    return render(
        "join.html",
        title=f"Join {event.title}",
        lang=event.default_language,
        script="join.js",
        event=event,
    )


@router.get("/b/{ballot_token}")
async def ballot(ballot_token: str) -> HTMLResponse:
    """The fan ballot. The page is the same for every token: its script reads the token from the URL."""
    return render("ballot.html", secret_in_url=True, title="Ballot", script="ballot.js")


@router.get("/claim/{claim_token}")
async def claim(claim_token: str, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    """An artist's invitation link: sign in or up, claim the profile, accept or decline."""
    found = await artists_service.invitation_of_claim_token(session=session, runtime=runtime, claim_token=claim_token)
    if found is None:
        return missing(
            "This invitation link is not valid or has expired: ask the organizer for a new one.", secret_in_url=True
        )
    return render(
        "claim.html",
        secret_in_url=True,
        title=f"{found.artist.name} at {found.event.title}",
        script="claim.js",
        artist=found.artist,
        event=found.event,
        invitation=found.invitation,
    )
