"""HTTP routes of the integrity domain: an event's fraud signals, for its organizers."""

from __future__ import annotations

from fastapi import APIRouter

from stagevote.auth.dependencies import AdminPrincipal
from stagevote.core.runtime import SessionDep
from stagevote.core.schemas import Page, Paging
from stagevote.integrity import service
from stagevote.integrity.schemas import IntegrityFlag

router = APIRouter(tags=["integrity"])


@router.get("/events/{event_id}/integrity", response_model=Page[IntegrityFlag])
async def event_integrity(
    event_id: int, principal: AdminPrincipal, session: SessionDep, page: Paging
) -> Page[IntegrityFlag]:
    """Signals of fraud in the event's joins and votes, newest first, each with its reason and the attendee
    and/or votes it names (`POST /attendees/{id}/void`, `POST /events/{id}/votes/{voteId}/void` act on them):
    bursts of numbers from one block, numbers that are not mobiles, many web joins from one address, joins
    seconds before a timed round closed, an artist's vote spikes. Computed on request. 404 unknown event."""
    flags = await service.flags_of_event(session=session, principal=principal, event_id=event_id)
    items = flags[page.offset : page.offset + page.limit]
    return Page(items=items, total=len(flags), limit=page.limit, offset=page.offset)
