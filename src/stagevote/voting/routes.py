"""HTTP routes of the voting domain: cast a vote with a ballot token, read the leaderboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stagevote.attendees import service as attendees_service
from stagevote.auth.dependencies import OptionalPrincipal
from stagevote.core.errors import Unauthorized
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.voting import board_cache, service
from stagevote.voting.schemas import LeaderboardRead, VoteRead, VoteRequest

router = APIRouter(tags=["voting"])
_ballot = HTTPBearer(auto_error=False, scheme_name="ballot", description="The ballot token of a confirmed attendee.")


@router.post(
    "/events/{event_id}/vote",
    status_code=status.HTTP_201_CREATED,
    response_model=VoteRead,
    responses={200: {"model": VoteRead, "description": "The same token again: the vote it made, counted once"}},
)
async def vote(
    event_id: int,
    body: VoteRequest,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_ballot)],
) -> VoteRead:
    """Vote in the open round. 401 no or bad ballot token · 403 not confirmed or opted out · 409 event or
    round not open, or the quota is used · 422 the artist is not in the round."""
    if credentials is None:
        raise Unauthorized("Voting needs `Authorization: Bearer <ballotToken>`.")
    attendee = await attendees_service.attendee_for_ballot(
        session=session, runtime=runtime, ballot_token=credentials.credentials, event_id=event_id
    )
    outcome = await service.cast_vote(
        session=session,
        runtime=runtime,
        event_id=event_id,
        attendee=attendee,
        round_number=body.round,
        artist_id=body.artist_id,
        vote_code=None,
        token=body.token,
        channel="web",
    )
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return VoteRead.model_validate(outcome.vote)


@router.get(
    "/events/{event_id}/leaderboard",
    response_model=LeaderboardRead,
    responses={304: {"description": "`If-None-Match` names the standings this would show again"}},
)
async def leaderboard(
    event_id: int,
    principal: OptionalPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    round_: Annotated[int | None, Query(alias="round", ge=1, description="Default: the current round")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The standings. What the public may see is served from a one-second copy with `Cache-Control:
    public, max-age=1` and a weak `ETag` (304 to `If-None-Match`), so a CDN or nginx can absorb
    thousands of polling phones; an admin's view (it may show hidden boards) is `private, no-store`."""
    admin = principal is not None and principal.is_admin
    cached = None if admin else board_cache.get(runtime, event_id, round_)
    if cached is None:
        board = await service.leaderboard(
            session=session, runtime=runtime, event_id=event_id, round_number=round_, principal=principal
        )
        if admin:
            return Response(
                board.model_dump_json(by_alias=True),
                media_type="application/json",
                headers={"Cache-Control": "private, no-store"},
            )
        cached = board_cache.put(runtime, event_id, round_, board)
    headers = {"Cache-Control": f"public, max-age={int(board_cache.TTL_SECONDS)}", "ETag": cached.etag}
    if board_cache.matches(if_none_match, cached.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(cached.body, media_type="application/json", headers=headers)
