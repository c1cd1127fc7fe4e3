"""HTTP routes of the recaps domain: render an event's recap page, say where it is, serve it from a folder."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import FileResponse

from stagevote.auth.dependencies import AdminPrincipal
from stagevote.core.errors import NotFound
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.recaps import service
from stagevote.recaps.schemas import RecapRead
from stagevote.recaps.storage import storage_for

router = APIRouter(tags=["recaps"])
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=300",
}


@router.post("/events/{event_id}/recap", status_code=status.HTTP_201_CREATED, response_model=RecapRead)
async def render_recap(event_id: int, principal: AdminPrincipal, session: SessionDep, runtime: RuntimeDep) -> RecapRead:
    """Render the event's recap page again (it is rendered by itself when the event closes) and store it: the
    event, each round's winner and standings, turnout, votes per minute. The first render sends the RECAP
    message to each attendee whose ballot counts. 404 unknown event · 409 the event has not closed · 503 the
    storage (folder or bucket) refused the page, with `Retry-After`."""
    recap = await service.publish(session=session, runtime=runtime, event_id=event_id)
    return RecapRead(url=recap.url)


@router.get("/events/{event_id}/recap", response_model=RecapRead)
async def get_recap(event_id: int, session: SessionDep) -> RecapRead:
    """Where the event's recap page is. 404 unknown event, or no page yet (it comes with the close)."""
    return RecapRead(url=await service.recap_url(session=session, event_id=event_id))


@router.get("/recaps/{name}", response_class=FileResponse, include_in_schema=False)
async def recap_page(name: str, runtime: RuntimeDep) -> FileResponse:
    """A recap page from the folder of `STAGEVOTE_RECAP_STORAGE=file://…` (404 with S3 storage)."""
    path = storage_for(runtime.settings).local_path(name)
    if path is None or not path.is_file():
        raise NotFound("No such recap page.")
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
