"""The rules of events: lifecycle transitions, what may change in each status, rounds, sponsors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.audit import service as audit
from stagevote.audit.service import Caller
from stagevote.auth import service as auth_service
from stagevote.auth.models import Role
from stagevote.auth.principal import Principal
from stagevote.core.db import after_commit, utcnow
from stagevote.core.errors import Conflict, NotFound, Unprocessable
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event, EventSponsor, EventStatus, Round, RoundStatus
from stagevote.events.repository import EventRepository, RoundRepository, SponsorRepository
from stagevote.events.schemas import EventCreate, EventUpdate, RoundConfig, VoteConfig

Transition = Literal["publish", "start", "close", "archive"]

TRANSITIONS: dict[Transition, tuple[frozenset[EventStatus], EventStatus]] = {
    "publish": (frozenset({EventStatus.DRAFT}), EventStatus.PUBLISHED),
    "start": (frozenset({EventStatus.PUBLISHED}), EventStatus.LIVE),
    "close": (frozenset({EventStatus.LIVE}), EventStatus.CLOSED),
    "archive": (frozenset({EventStatus.DRAFT, EventStatus.CLOSED}), EventStatus.ARCHIVED),
}
# what the audit log calls each transition
TRANSITION_ACTIONS: dict[Transition, str] = {
    "publish": "event.published",
    "start": "event.started",
    "close": "event.closed",
    "archive": "event.archived",
}

_ALL_FIELDS = frozenset(EventUpdate.model_fields)
# What an organizer may still change in each status; sending a field unchanged is always fine.
EDITABLE: dict[EventStatus, frozenset[str]] = {
    EventStatus.DRAFT: _ALL_FIELDS,
    EventStatus.PUBLISHED: _ALL_FIELDS,
    EventStatus.LIVE: frozenset({"title", "venue", "end_date", "vote_config"}),
    EventStatus.CLOSED: frozenset({"title", "venue"}),
    EventStatus.ARCHIVED: frozenset(),
}
# Rules fans are voting under: fixed once the event is live.
_FIXED_WHILE_LIVE = ("votes_per_round", "allow_vote_change", "require_confirmation", "sms_voting")
KEYWORD_TAKEN = "This keyword is already used by another event that is not archived."
# cluster-wide (bus): an event, its rounds or its line-up changed; drop cached copies
EVENT_CHANGED = "event.changed"
# in-process (signals): tell the live screens
EVENT_STATUS = "event.status"
ROUND_STATUS = "round.status"
# in the unit of work (hooks): let other domains add their rows to the same commit
ROUND_OPENED = "round.opened"  # {eventId, number}
ROUND_CLOSED = "round.closed"  # {eventId, number}
EVENT_CLOSED = "event.closed"  # {eventId}
CLOCK_TICK = "clock.tick"  # {now}: once a second, on one instance at a time per due row


async def _round_hooks(session: AsyncSession, runtime: Runtime, round_: Round) -> None:
    topic = ROUND_OPENED if round_.status == RoundStatus.OPEN.value else ROUND_CLOSED
    await runtime.hooks.run(topic, session, {"eventId": round_.event_id, "number": round_.number})


def announce_change(
    *, session: AsyncSession, runtime: Runtime, event_id: int, status: str | None = None, round_: Round | None = None
) -> None:
    """Once this unit of work commits: every instance forgets its copy, and live screens hear of it."""
    round_payload = {"eventId": event_id, "number": round_.number, "status": round_.status} if round_ else None

    async def tell() -> None:
        await runtime.bus.publish(EVENT_CHANGED, {"eventId": event_id})
        if status is not None:
            await runtime.signals.publish(EVENT_STATUS, {"eventId": event_id, "status": status})
        if round_payload is not None:
            await runtime.signals.publish(ROUND_STATUS, round_payload)

    after_commit(session, tell)


def vote_config_of(event: Event) -> VoteConfig:
    return VoteConfig.model_validate(event.vote_config)


def _stored(config: VoteConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


async def create_event(*, session: AsyncSession, principal: Principal, caller: Caller, data: EventCreate) -> Event:
    events = EventRepository(session)
    if await events.keyword_taken(data.keyword):
        raise Conflict(KEYWORD_TAKEN, slug="keyword-taken")
    event = Event(
        title=data.title,
        start_date=data.start_date,
        end_date=data.end_date,
        venue=data.venue,
        access_type=data.access_type.value,
        keyword=data.keyword,
        default_language=data.default_language,
        vote_config=_stored(data.vote_config),
        status=EventStatus.DRAFT.value,
        created_by=principal.user_id,
    )
    try:
        await events.add(event)
    except IntegrityError as exc:  # a concurrent create took the keyword between check and insert
        raise Conflict(KEYWORD_TAKEN, slug="keyword-taken") from exc
    await _sync_rounds(session=session, event=event, old=None, new=data.vote_config)
    await audit.record_by(
        session,
        caller,
        action="event.created",
        target=f"event:{event.id}",
        changes={"keyword": event.keyword, "status": event.status},
        event_id=event.id,
    )
    return event


async def list_events(
    *,
    session: AsyncSession,
    principal: Principal | None,
    status: EventStatus | None,
    starts_before: dt.datetime | None,
    ends_after: dt.datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Event], int]:
    return await EventRepository(session).list_readable(
        principal, status=status, starts_before=starts_before, ends_after=ends_after, limit=limit, offset=offset
    )


async def get_event(*, session: AsyncSession, principal: Principal | None, event_id: int) -> Event:
    """The event if this caller may see it; 404 otherwise (a draft does not exist for the public)."""
    event = await EventRepository(session).get_readable(event_id, principal)
    if event is None:
        raise NotFound(f"No event {event_id}.")
    return event


JOINABLE = frozenset({EventStatus.PUBLISHED, EventStatus.LIVE})


async def get_joinable_event_by_keyword(*, session: AsyncSession, keyword: str) -> Event | None:
    """The published or live event fans join with this keyword (any case), or None."""
    return await EventRepository(session).get_by_keyword(keyword.strip(), statuses=JOINABLE)


async def get_event_for_change(*, session: AsyncSession, event_id: int) -> Event:
    """The event, locked for this unit of work, for a caller already allowed to change it."""
    event = await EventRepository(session).get_for_update(event_id)
    if event is None:
        raise NotFound(f"No event {event_id}.")
    return event


async def update_event(
    *, session: AsyncSession, runtime: Runtime, caller: Caller, event_id: int, changes: EventUpdate
) -> Event:
    event = await get_event_for_change(session=session, event_id=event_id)
    status = EventStatus(event.status)
    sent = changes.model_dump(exclude_unset=True)
    current = EventUpdate.model_validate(event, from_attributes=True).model_dump()
    changed = {name: value for name, value in sent.items() if value is not None and value != current.get(name)}
    if "venue" in sent and sent["venue"] is None and event.venue is not None:
        changed["venue"] = None
    refused = sorted(set(changed) - EDITABLE[status])
    if refused:
        names = ", ".join(_camel(f) for f in refused)
        raise Conflict(f"While the event is {status.value}, these cannot change: {names}.", slug="not-editable")

    start = changed.get("start_date", event.start_date)
    end = changed.get("end_date", event.end_date)
    if end <= start:
        raise Unprocessable.field("endDate", "must be after startDate")
    if "keyword" in changed and await EventRepository(session).keyword_taken(
        changed["keyword"], except_event_id=event.id
    ):
        raise Conflict(KEYWORD_TAKEN, slug="keyword-taken")
    if "vote_config" in changed and changes.vote_config is not None:
        old = vote_config_of(event)
        new = changes.vote_config
        if status is EventStatus.LIVE:
            fixed = [f for f in _FIXED_WHILE_LIVE if getattr(old, f) != getattr(new, f)]
            if fixed:
                names = ", ".join(f"voteConfig.{_camel(f)}" for f in fixed)
                raise Conflict(f"While the event is live, these cannot change: {names}.", slug="not-editable")
        await _sync_rounds(session=session, event=event, old=old, new=new)
        changed["vote_config"] = _stored(new)
    for name, value in changed.items():
        setattr(event, name, value.value if name == "access_type" else value)
    try:
        await EventRepository(session).flush()
    except IntegrityError as exc:
        raise Conflict(KEYWORD_TAKEN, slug="keyword-taken") from exc
    if changed:  # the fields that changed and their new values (an event holds no personal data)
        await audit.record_by(
            session,
            caller,
            action="event.updated",
            target=f"event:{event.id}",
            changes={
                "fields": sorted(_camel(f) for f in changed),
                "to": changes.model_dump(mode="json", by_alias=True, include=set(changed)),
            },
            event_id=event.id,
        )
    announce_change(session=session, runtime=runtime, event_id=event.id)
    return event


async def transition(
    *, session: AsyncSession, runtime: Runtime, caller: Caller, event_id: int, action: Transition
) -> Event:
    event = await get_event_for_change(session=session, event_id=event_id)
    sources, target = TRANSITIONS[action]
    before = event.status
    if EventStatus(event.status) not in sources:
        allowed = " or ".join(sorted(s.value for s in sources))
        raise Conflict(
            f"Cannot {action} an event that is {event.status}; it must be {allowed}.", slug="invalid-transition"
        )
    closed_round = None
    if target is EventStatus.CLOSED:
        # the open round, or a timed one the clock has not opened in the table yet: either took votes
        now = utcnow()
        closed_round = next(
            (
                r
                for r in await RoundRepository(session).list_for_event(event.id)
                if r.status == RoundStatus.OPEN.value or effective_round_status(r, now) is RoundStatus.OPEN
            ),
            None,
        )
        if closed_round is not None:
            _close(closed_round)
    if target is EventStatus.PUBLISHED and await EventRepository(session).keyword_taken(
        event.keyword, except_event_id=event.id
    ):
        raise Conflict(KEYWORD_TAKEN, slug="keyword-taken")
    event.status = target.value
    try:
        await EventRepository(session).flush()
    except IntegrityError as exc:  # archived events free their keyword; nothing else may clash
        raise Conflict(KEYWORD_TAKEN, slug="keyword-taken") from exc
    if closed_round is not None:
        await _round_hooks(session, runtime, closed_round)
    if target is EventStatus.CLOSED:
        await runtime.hooks.run(EVENT_CLOSED, session, {"eventId": event.id})
    moved: dict[str, Any] = {"from": before, "to": event.status}
    if closed_round is not None:
        moved["closedRound"] = closed_round.number
    await audit.record_by(
        session, caller, action=TRANSITION_ACTIONS[action], target=f"event:{event.id}", changes=moved, event_id=event.id
    )
    announce_change(session=session, runtime=runtime, event_id=event.id, status=event.status, round_=closed_round)
    return event


async def list_rounds(
    *, session: AsyncSession, principal: Principal | None, event_id: int, limit: int, offset: int
) -> tuple[Sequence[Round], int]:
    await get_event(session=session, principal=principal, event_id=event_id)
    return await RoundRepository(session).page_for_event(event_id, limit=limit, offset=offset)


async def open_round(*, session: AsyncSession, runtime: Runtime, caller: Caller, event_id: int, number: int) -> Round:
    event = await get_event_for_change(session=session, event_id=event_id)
    round_ = await _round_of_live_event(session=session, event=event, number=number)
    if round_.status != RoundStatus.PENDING.value:
        raise Conflict(f"Round {number} is {round_.status}; only a pending round opens.", slug="round-not-pending")
    rounds = RoundRepository(session)
    already = await rounds.get_open(event.id)
    if already is not None:
        raise Conflict(f"Round {already.number} is open; close it first.", slug="round-already-open")
    round_.status = RoundStatus.OPEN.value
    round_.opened_at = utcnow()
    try:
        await rounds.flush()
    except IntegrityError as exc:  # another request opened a round at the same moment
        raise Conflict("Another round was opened at the same time.", slug="round-already-open") from exc
    await _record_round(session, caller, round_, "round.opened")
    await _round_hooks(session, runtime, round_)
    announce_change(session=session, runtime=runtime, event_id=event.id, round_=round_)
    return round_


async def close_round(*, session: AsyncSession, runtime: Runtime, caller: Caller, event_id: int, number: int) -> Round:
    event = await get_event_for_change(session=session, event_id=event_id)
    round_ = await _round_of_live_event(session=session, event=event, number=number)
    if round_.status != RoundStatus.OPEN.value:
        raise Conflict(f"Round {number} is {round_.status}; only an open round closes.", slug="round-not-open")
    _close(round_)
    await RoundRepository(session).flush()
    await _record_round(session, caller, round_, "round.closed")
    await _round_hooks(session, runtime, round_)
    announce_change(session=session, runtime=runtime, event_id=event.id, round_=round_)
    return round_


async def link_sponsor(*, session: AsyncSession, event_id: int, user_id: int) -> tuple[EventSponsor, str]:
    await get_event_for_change(session=session, event_id=event_id)
    user = await auth_service.get_user(session=session, user_id=user_id)
    if user is None or user.role != Role.BRAND.value:
        raise Unprocessable.field("userId", "must be the id of a user with the brand role")
    sponsors = SponsorRepository(session)
    if await sponsors.is_sponsor(event_id, user_id):
        raise Conflict("This brand already sponsors the event.", slug="sponsor-linked")
    try:
        link = await sponsors.add(EventSponsor(event_id=event_id, user_id=user_id))
    except IntegrityError as exc:
        raise Conflict("This brand already sponsors the event.", slug="sponsor-linked") from exc
    return link, user.email


async def list_sponsors(
    *, session: AsyncSession, event_id: int, limit: int, offset: int
) -> tuple[Sequence[tuple[EventSponsor, str]], int]:
    if await EventRepository(session).get(event_id) is None:
        raise NotFound(f"No event {event_id}.")
    return await SponsorRepository(session).page_for_event(event_id, limit=limit, offset=offset)


async def is_sponsor(*, session: AsyncSession, event_id: int, user_id: int) -> bool:
    return await SponsorRepository(session).is_sponsor(event_id, user_id)


def effective_round_status(round_: Round, now: dt.datetime) -> RoundStatus:
    """A round's state as the clock sees it: a timed round is open from `opensAt` until `closesAt`.

    The clock task writes these changes to the table too; this makes the vote path exact to the
    second even before that task has run.
    """
    status = RoundStatus(round_.status)
    if status is RoundStatus.CLOSED:
        return status
    if round_.closes_at is not None and now >= round_.closes_at:
        return RoundStatus.CLOSED if status is RoundStatus.OPEN or round_.opens_at is not None else status
    if status is RoundStatus.PENDING and round_.opens_at is not None and now >= round_.opens_at:
        return RoundStatus.OPEN
    return status


async def round_status_for_vote(
    *, session: AsyncSession, event_id: int, number: int, now: dt.datetime
) -> RoundStatus | None:
    """The round's state in the table at `now` (not an instance's copy of it), held until the caller's unit
    of work commits: a close waits for the vote, so the seal made when the round closes holds every vote
    the round took. None: no such round."""
    round_ = await RoundRepository(session).get_held_for_vote(event_id, number)
    return effective_round_status(round_, now) if round_ is not None else None


async def rounds_of(*, session: AsyncSession, event_id: int) -> Sequence[Round]:
    return await RoundRepository(session).list_for_event(event_id)


async def rounds_active_since(*, session: AsyncSession, since: dt.datetime, now: dt.datetime) -> list[tuple[int, int]]:
    """(event id, round number) of every round that may have taken votes since `since`."""
    return await RoundRepository(session).active_since(since, now)


async def get_event_unchecked(*, session: AsyncSession, event_id: int) -> Event | None:
    """The event by id, whoever asks: for callers that decide visibility themselves (the vote path)."""
    return await EventRepository(session).get(event_id)


async def apply_clock(*, session: AsyncSession, runtime: Runtime, now: dt.datetime) -> list[Round]:
    """Open and close timed rounds whose time has come; safe to run on every instance at once.

    The due rows are locked in one order (another instance's clock waits, then finds them changed), so
    each change is made and announced once. A timed round does not open while another round of its
    event is open: it waits for it to close.
    """
    rounds = RoundRepository(session)
    changed: list[Round] = []
    for round_ in await rounds.due(now):
        target = effective_round_status(round_, now)
        if target is RoundStatus.CLOSED:
            _close(round_)
        elif target is RoundStatus.OPEN:
            if await rounds.get_open(round_.event_id) is not None:
                continue
            round_.status = RoundStatus.OPEN.value
            round_.opened_at = now
        else:
            continue
        await rounds.flush()
        await _round_hooks(session, runtime, round_)
        announce_change(session=session, runtime=runtime, event_id=round_.event_id, round_=round_)
        changed.append(round_)
    await runtime.hooks.run(CLOCK_TICK, session, {"now": now})
    return changed


async def _round_of_live_event(*, session: AsyncSession, event: Event, number: int) -> Round:
    round_ = await RoundRepository(session).get_by_number(event.id, number)
    if round_ is None:
        raise NotFound(f"Event {event.id} has no round {number}.")
    if event.status != EventStatus.LIVE.value:
        raise Conflict(f"Rounds open and close only while the event is live; it is {event.status}.", slug="not-live")
    return round_


async def _record_round(session: AsyncSession, caller: Caller, round_: Round, action: str) -> None:
    await audit.record_by(
        session,
        caller,
        action=action,
        target=f"round:{round_.event_id}/{round_.number}",
        changes={"number": round_.number, "status": round_.status},
        event_id=round_.event_id,
    )


def _close(round_: Round) -> None:
    round_.status = RoundStatus.CLOSED.value
    round_.closed_at = utcnow()


async def _sync_rounds(*, session: AsyncSession, event: Event, old: VoteConfig | None, new: VoteConfig) -> None:
    """Make the rounds table match voteConfig; a round that has started keeps its number and its rules."""
    rounds = RoundRepository(session)
    existing = {r.number: r for r in await rounds.list_for_event(event.id)}
    for config in new.rounds:
        round_ = existing.pop(config.number, None)
        if round_ is None:
            await rounds.add(
                Round(
                    event_id=event.id,
                    number=config.number,
                    name=config.name,
                    status=RoundStatus.PENDING.value,
                    opens_at=config.opens_at,
                    closes_at=config.closes_at,
                )
            )
            continue
        before = old.round(config.number) if old else None
        _check_started_round(round_, before, config)
        round_.name = config.name
        round_.opens_at = config.opens_at
        round_.closes_at = config.closes_at
    for leftover in existing.values():
        if leftover.status != RoundStatus.PENDING.value:
            raise Conflict(f"Round {leftover.number} has started; it cannot be removed.", slug="round-started")
        await rounds.delete(leftover)
    await rounds.flush()


def _check_started_round(round_: Round, before: RoundConfig | None, after: RoundConfig) -> None:
    if round_.status == RoundStatus.PENDING.value or before is None:
        return
    moved = before.artist_ids != after.artist_ids or before.opens_at != after.opens_at
    if round_.status == RoundStatus.CLOSED.value:
        moved = moved or before.closes_at != after.closes_at
    if moved:
        raise Conflict(
            f"Round {round_.number} is {round_.status}: its artists and times are fixed.", slug="round-started"
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
