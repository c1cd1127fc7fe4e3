"""HTTP routes of the events domain: /events, lifecycle transitions, rounds, sponsors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from stagevote.audit.service import Caller
from stagevote.auth.dependencies import AdminPrincipal, OptionalPrincipal
from stagevote.core.network import ClientAddressDep
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.core.schemas import Page, Paging, Timestamp
from stagevote.events import service
from stagevote.events.models import Event, EventStatus
from stagevote.events.schemas import (
    EventCreate,
    EventPublic,
    EventRead,
    EventUpdate,
    RoundRead,
    SponsorLink,
    SponsorRead,
)

router = APIRouter(tags=["events"])


def _view(event: Event, *, admin: bool) -> EventRead | EventPublic:
    return EventRead.model_validate(event) if admin else EventPublic.model_validate(event)


@router.post("/events", status_code=status.HTTP_201_CREATED, response_model=EventRead)
async def create_event(
    body: EventCreate, principal: AdminPrincipal, client: ClientAddressDep, session: SessionDep
) -> EventRead:
    caller = Caller.of(principal.user_id, client)
    event = await service.create_event(session=session, principal=principal, caller=caller, data=body)
    return EventRead.model_validate(event)


@router.get("/events", response_model=Page[EventRead | EventPublic])
async def list_events(
    principal: OptionalPrincipal,
    session: SessionDep,
    page: Paging,
    status_: Annotated[EventStatus | None, Query(alias="status")] = None,
    from_: Annotated[Timestamp | None, Query(alias="from", description="Events ending at or after this time")] = None,
    to: Annotated[Timestamp | None, Query(description="Events starting at or before this time")] = None,
) -> Page[EventRead | EventPublic]:
    events, total = await service.list_events(
        session=session,
        principal=principal,
        status=status_,
        starts_before=to,
        ends_after=from_,
        limit=page.limit,
        offset=page.offset,
    )
    admin = principal is not None and principal.is_admin
    return Page(items=[_view(e, admin=admin) for e in events], total=total, limit=page.limit, offset=page.offset)


@router.get("/events/{event_id}", response_model=EventRead | EventPublic)
async def get_event(event_id: int, principal: OptionalPrincipal, session: SessionDep) -> EventRead | EventPublic:
    event = await service.get_event(session=session, principal=principal, event_id=event_id)
    return _view(event, admin=principal is not None and principal.is_admin)


@router.put("/events/{event_id}", response_model=EventRead)
async def update_event(
    event_id: int,
    body: EventUpdate,
    principal: AdminPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> EventRead:
    caller = Caller.of(principal.user_id, client)
    event = await service.update_event(session=session, runtime=runtime, caller=caller, event_id=event_id, changes=body)
    return EventRead.model_validate(event)


def _transition_route(action: service.Transition) -> None:
    async def run(
        event_id: int, principal: AdminPrincipal, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep
    ) -> EventRead:
        caller = Caller.of(principal.user_id, client)
        event = await service.transition(
            session=session, runtime=runtime, caller=caller, event_id=event_id, action=action
        )
        return EventRead.model_validate(event)

    run.__name__ = f"{action}_event"
    sources = service.TRANSITIONS[action][0]
    router.add_api_route(
        f"/events/{{event_id}}/{action}",
        run,
        methods=["POST"],
        response_model=EventRead,
        summary=f"{action.title()} the event",
        description=f"Allowed from: {', '.join(sorted(s.value for s in sources))}; 409 otherwise.",
    )


for _action in service.TRANSITIONS:
    _transition_route(_action)


@router.get("/events/{event_id}/rounds", response_model=Page[RoundRead])
async def list_rounds(
    event_id: int, principal: OptionalPrincipal, session: SessionDep, page: Paging
) -> Page[RoundRead]:
    rounds, total = await service.list_rounds(
        session=session, principal=principal, event_id=event_id, limit=page.limit, offset=page.offset
    )
    return Page(items=[RoundRead.model_validate(r) for r in rounds], total=total, limit=page.limit, offset=page.offset)


@router.post("/events/{event_id}/rounds/{number}/open", response_model=RoundRead)
async def open_round(
    event_id: int,
    number: int,
    principal: AdminPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RoundRead:
    caller = Caller.of(principal.user_id, client)
    round_ = await service.open_round(session=session, runtime=runtime, caller=caller, event_id=event_id, number=number)
    return RoundRead.model_validate(round_)


@router.post("/events/{event_id}/rounds/{number}/close", response_model=RoundRead)
async def close_round(
    event_id: int,
    number: int,
    principal: AdminPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RoundRead:
    caller = Caller.of(principal.user_id, client)
    round_ = await service.close_round(
        session=session, runtime=runtime, caller=caller, event_id=event_id, number=number
    )
    return RoundRead.model_validate(round_)


@router.post("/events/{event_id}/sponsors", status_code=status.HTTP_201_CREATED, response_model=SponsorRead)
async def link_sponsor(event_id: int, body: SponsorLink, _: AdminPrincipal, session: SessionDep) -> SponsorRead:
    link, email = await service.link_sponsor(session=session, event_id=event_id, user_id=body.user_id)
    return SponsorRead(user_id=link.user_id, email=email, linked_at=link.linked_at)


@router.get("/events/{event_id}/sponsors", response_model=Page[SponsorRead])
async def list_sponsors(event_id: int, _: AdminPrincipal, session: SessionDep, page: Paging) -> Page[SponsorRead]:
    rows, total = await service.list_sponsors(session=session, event_id=event_id, limit=page.limit, offset=page.offset)
    items = [SponsorRead(user_id=link.user_id, email=email, linked_at=link.linked_at) for link, email in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
