"""HTTP routes of the audit domain: `GET /audit`, the log of admin actions (read-only: it is append-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from stagevote.audit import service
from stagevote.audit.schemas import AuditEntryRead
from stagevote.auth.dependencies import AdminPrincipal
from stagevote.core.runtime import SessionDep
from stagevote.core.schemas import MAX_INT, Page, Paging

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=Page[AuditEntryRead])
async def list_audit(
    _: AdminPrincipal,
    session: SessionDep,
    page: Paging,
    event_id: Annotated[int | None, Query(alias="eventId", ge=1, le=MAX_INT, description="Only this event")] = None,
    actor: Annotated[int | None, Query(ge=1, le=MAX_INT, description="Only this user's actions (a user id)")] = None,
    action: Annotated[str | None, Query(max_length=64, description="Only this action, e.g. `event.published`")] = None,
) -> Page[AuditEntryRead]:
    """Every recorded admin action, newest first: who (`actorId`), what (`action`, `target`, `changes`), from
    which client address, when. Event lifecycle, rounds opened and closed, broadcasts, role changes, API keys
    created and revoked, exports and erasures. The log is append-only: no call changes or removes a row."""
    entries, total = await service.list_entries(
        session=session, event_id=event_id, actor_id=actor, action=action, limit=page.limit, offset=page.offset
    )
    return Page(
        items=[AuditEntryRead.model_validate(e) for e in entries], total=total, limit=page.limit, offset=page.offset
    )
