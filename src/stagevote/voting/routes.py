"""HTTP routes of the voting domain: cast a vote with a ballot token, read the leaderboard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response, status

from stagevote.auth.dependencies import OptionalPrincipal
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.voting import service
from stagevote.voting.schemas import LeaderboardRead, VoteRead, VoteRequest

router = APIRouter(tags=["voting"])
BALLOT_SCHEME = {"type": "http", "scheme": "bearer", "description": "The ballot token of a confirmed attendee."}


def document_ballot_scheme(app: FastAPI) -> None:
    """Name the `ballot` security scheme in the OpenAPI document: the vote route reads its bearer token
    itself (`HTTPBearer` as a dependency costs the hot path a dependency), so FastAPI does not see it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).setdefault("ballot", BALLOT_SCHEME)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _ballot_token(request: Request) -> str | None:
    """The `Authorization: Bearer <token>` credentials, as `HTTPBearer` reads them, without a dependency."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


@router.post(
    "/events/{event_id}/vote",
    status_code=status.HTTP_201_CREATED,
    response_model=VoteRead,
    responses={200: {"model": VoteRead, "description": "The same token again: the vote it made, counted once"}},
    openapi_extra={"security": [{"ballot": []}]},
)
async def vote(event_id: int, body: VoteRequest, request: Request) -> Response:
    """Vote in the open round. 401 no or bad ballot token · 403 not confirmed or opted out · 409 event or
    round not open, or the quota is used · 422 the artist is not in the round."""
    # The hot path: no dependency but the body, and the answer serialised once, here.
    outcome = await service.vote_by_ballot(
        runtime=request.app.state.runtime,
        writer=request.app.state.vote_writer,
        event_id=event_id,
        ballot_token=_ballot_token(request),
        round_number=body.round,
        artist_id=body.artist_id,
        token=body.token,
    )
    return Response(
        outcome.vote.model_dump_json(by_alias=True),
        status_code=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        media_type="application/json",
    )


@router.get("/events/{event_id}/leaderboard", response_model=LeaderboardRead)
async def leaderboard(
    event_id: int,
    principal: OptionalPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    round_: Annotated[int | None, Query(alias="round", ge=1, description="Default: the current round")] = None,
) -> LeaderboardRead:
    return await service.leaderboard(
        session=session, runtime=runtime, event_id=event_id, round_number=round_, principal=principal
    )
