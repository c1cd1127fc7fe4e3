"""HTTP routes of the voting domain: cast a vote with a ballot token, read the leaderboard, seals, receipts, voids."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from stagevote.audit.service import Caller
from stagevote.auth.dependencies import AdminPrincipal, OptionalPrincipal
from stagevote.core.network import ClientAddressDep
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.voting import board_cache, seals, service, voids
from stagevote.voting.schemas import (
    AttendeeVoidRead,
    LeaderboardRead,
    ReceiptRead,
    SealRead,
    VoidRequest,
    VoteRead,
    VoteRequest,
    VoteVoidRead,
)

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
    # `hot_vote` below serves this path for every integer event id; this route documents it, and
    # answers what that one does not match (an event id that is not a number: 422)
    return await _answer_vote(request, event_id, body)


async def _hot_vote(request: Request) -> Response:
    """`POST /events/{event_id}/vote` as a plain Starlette endpoint, matched before every other route.

    FastAPI's per-request machinery (dependencies, body fields, response validation) costs the vote
    path more than the vote itself; here the body is parsed and validated in one pydantic call, and
    a bad one raises the same RequestValidationError, answered by the same problem handler.
    """
    request.scope["route"] = hot_vote  # FastAPI's router names only its own routes; the metrics want this one
    try:
        body = VoteRequest.model_validate_json(await _body(request))
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    return await _answer_vote(request, request.path_params["event_id"], body)


async def _body(request: Request) -> bytes:
    """The request body, read from `receive` as `Request.body` reads it, without its async generator."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer_vote(request: Request, event_id: int, body: VoteRequest) -> Response:
    outcome = await service.vote_by_ballot(
        runtime=request.app.state.runtime,
        writer=request.app.state.vote_writer,
        event_id=event_id,
        ballot_token=_ballot_token(request),
        round_number=body.round,
        artist_id=body.artist_id,
        token=body.token,
    )
    # the answer serialised once, by pydantic, without FastAPI validating it again
    return Response(
        outcome.vote.model_dump_json(by_alias=True),
        status_code=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        media_type="application/json",
    )


hot_vote = Route("/events/{event_id:int}/vote", _hot_vote, methods=["POST"], include_in_schema=False)


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
    await service.settle_own_votes(runtime)  # read your own writes: the copy is dropped once a vote counts
    cached = None if admin else board_cache.get(runtime, event_id, round_)
    if cached is None:
        board = await service.leaderboard(
            session=session,
            runtime=runtime,
            event_id=event_id,
            round_number=round_,
            principal=principal,
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


@router.get("/events/{event_id}/rounds/{number}/seal", response_model=SealRead)
async def round_seal(event_id: int, number: int, session: SessionDep) -> SealRead:
    """The Merkle root a closed round was sealed with (anyone). 404 unknown event or round · 409 while the
    round is not closed (and so not sealed)."""
    return await seals.get_seal(session=session, event_id=event_id, number=number)


@router.get("/events/{event_id}/receipts/{receipt}", response_model=ReceiptRead)
async def receipt(event_id: int, receipt: str, session: SessionDep, runtime: RuntimeDep) -> ReceiptRead:
    """A vote by its receipt (whoever holds it): round, artist, `counted` or `voided` (and why), and its
    proof of inclusion in the round's seal; before the seal `proof` is empty and `root` null. 404 unknown."""
    return await seals.get_receipt(session=session, runtime=runtime, event_id=event_id, receipt=receipt)


@router.post("/events/{event_id}/votes/{vote_id}/void", response_model=VoteVoidRead)
async def void_vote(
    event_id: int,
    vote_id: int,
    body: VoidRequest,
    principal: AdminPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> VoteVoidRead:
    """Void one vote (admin): it stays, no longer counted; the tally, reports and its receipt follow. Voiding
    twice keeps the first reason. 404 no such vote in the event · 422 a reason not in `VoidReason`."""
    caller = Caller.of(principal.user_id, client)
    return await voids.void_vote(
        session=session, runtime=runtime, caller=caller, event_id=event_id, vote_id=vote_id, body=body
    )


@router.post("/attendees/{attendee_id}/void", response_model=AttendeeVoidRead)
async def void_attendee(
    attendee_id: int,
    body: VoidRequest,
    principal: AdminPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AttendeeVoidRead:
    """Void every vote of an attendee (admin) and refuse their next ones (403 `attendee-voided`). 404 unknown."""
    caller = Caller.of(principal.user_id, client)
    return await voids.void_attendee(
        session=session, runtime=runtime, caller=caller, attendee_id=attendee_id, body=body
    )
