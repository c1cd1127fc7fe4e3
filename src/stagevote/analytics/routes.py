"""HTTP routes of the analytics domain: an event's figures as JSON, or as a stream of server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from stagevote.analytics import service
from stagevote.analytics.schemas import AnalyticsRead
from stagevote.auth.dependencies import CurrentPrincipal
from stagevote.core.runtime import RuntimeDep, SessionDep

router = APIRouter(tags=["analytics"])
EVENT_STREAM = "text/event-stream"


@router.get(
    "/analytics/events/{event_id}",
    response_model=AnalyticsRead,
    responses={
        200: {
            "description": "The figures (JSON); with `Accept: text/event-stream`, a stream of `analytics` events",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}, "example": "event: analytics\ndata: {...}\n\n"}},
        }
    },
)
async def event_analytics(
    event_id: int, request: Request, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> AnalyticsRead | Response:
    """The event's figures: attendees (joined, confirmed, opted out), votes (total, by round, by artist, per
    minute) and messages by channel and status, at most a second old. Admins see them exact; the event's
    sponsors (in privacy mode) and developers see the aggregate view, where groups of fewer than 5, and the
    figures that would reveal them from a total, are null.

    With `Accept: text/event-stream`: server-sent events named `analytics`, each carrying this JSON, the first
    at once, then one after each change of votes, attendees or messages, at most one a second, with
    keep-alive comments between. 404 unknown event (or a draft this caller cannot see) · 403 not allowed,
    or a sponsor while the event's privacy mode is off."""
    event, view = await service.view_for(session=session, principal=principal, event_id=event_id)
    if EVENT_STREAM in request.headers.get("accept", ""):
        live = service.live_figures(runtime)
        return EventSourceResponse(
            _frames(live.stream(event.id, view)),
            ping=runtime.settings.sse_ping_seconds,
            headers={"Cache-Control": "no-store"},
        )
    return await service.figures_for(session=session, runtime=runtime, event_id=event.id, view=view)


async def _frames(figures: AsyncIterator[AnalyticsRead]) -> AsyncIterator[ServerSentEvent]:
    async for read in figures:
        yield ServerSentEvent(data=read.model_dump_json(by_alias=True), event="analytics")
