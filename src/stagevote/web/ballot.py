"""`GET /ballot`: what a ballot token stands for (event, language, whether it may vote), for the ballot page.

The ballot page knows only its token (the last segment of its URL). This public call, authorised by the
token itself like `POST /events/{id}/vote`, tells it which event to load and in which language to speak;
everything else it reads from the event's public endpoints.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from stagevote.attendees import service as attendees_service
from stagevote.core.errors import Forbidden, Unauthorized
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.core.schemas import Schema
from stagevote.core.security import InvalidToken, decode_jwt
from stagevote.events import service as events_service

router = APIRouter(tags=["voting"])
_ballot = HTTPBearer(auto_error=False, scheme_name="ballot", description="The ballot token of an attendee.")


class BallotRead(Schema):
    """What a ballot token stands for."""

    event_id: int
    language: Literal["en", "es"] = Field(description="The attendee's language, else the event's")
    may_vote: bool = Field(description="Whether a vote from this ballot counts now (the round aside)")
    reason: str | None = Field(description="Why not, when `mayVote` is false (not confirmed, opted out…)")


def _event_of(ballot_token: str, secret: str) -> int:
    try:
        return int(decode_jwt(ballot_token, secret=secret, purpose=attendees_service.BALLOT)["evt"])
    except (InvalidToken, KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("Invalid or expired ballot token; join again for a new ballot link.") from exc


@router.get("/ballot", response_model=BallotRead)
async def read_ballot(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_ballot)],
) -> BallotRead:
    """The event and language of a ballot (`Authorization: Bearer <ballotToken>`). 401 no, bad or expired
    token, or an attendee since erased · 404 the event is gone."""
    if credentials is None:
        raise Unauthorized("Reading a ballot needs `Authorization: Bearer <ballotToken>`.")
    event_id = _event_of(credentials.credentials, runtime.secret_key.get_secret_value())
    attendee = await attendees_service.attendee_for_ballot(
        session=session, runtime=runtime, ballot_token=credentials.credentials, event_id=event_id
    )
    event = await events_service.get_event(session=session, principal=None, event_id=event_id)
    reason = None
    try:
        attendees_service.ensure_may_vote(attendee=attendee, event=event, config=events_service.vote_config_of(event))
    except Forbidden as refusal:
        reason = refusal.detail
    language = attendees_service.language_of(attendee, event)
    return BallotRead(
        event_id=event_id, language="es" if language == "es" else "en", may_vote=reason is None, reason=reason
    )
