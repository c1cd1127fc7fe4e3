"""The fan journey by SMS: NUDGE when a round opens and before a timed one closes, RESULTS at each close, RECAP.

Each handler runs inside the unit of work of the action that triggers it (opening or closing a
round or the event, the clock's tick: `core.hooks`), so the messages are written with the action
and go out only if it commits. Every message has a dedupe key naming what caused it
(`NUDGE:{event}:{round}:open:{attendee}`, `…:closing:…`, `RESULTS:{event}:{round|final}:{attendee}`,
`RECAP:{event}:{attendee}`): a trigger that fires twice (two instances, a retried request) sends once.

Who hears what: NUDGE goes to the attendees whose ballot counts (confirmed, or needing no confirmation,
as pre-registered numbers of a hybrid event) and who have not voted in the round; RESULTS and RECAP to
all whose ballot counts. Opted-out and erased attendees get nothing. NUDGE, RECAP and the RESULTS of a round
the fan did not vote in are marketing: capped, and held through quiet hours (`broadcasts.screen`).
A round closed by closing the event sends no round RESULTS: the event's final RESULTS (its last round's
standings) say it once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees import service as attendees_service
from stagevote.core.db import after_commit, utcnow
from stagevote.core.errors import Conflict, NotFound
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import Event, EventStatus
from stagevote.messaging.broadcasts import (
    Outgoing,
    context_of,
    queue_many,
    reach,
    results_text,
    voters_of,
    yield_now,
)
from stagevote.messaging.repository import MessageRepository
from stagevote.messaging.texts import text

# the longest `nudgeMinutesBeforeClose` voteConfig allows
LONGEST_NUDGE = dt.timedelta(minutes=1440)
RoundKey = tuple[int, int]


def minutes_left(closes_at: dt.datetime, now: dt.datetime) -> int:
    """Whole minutes until `closes_at`, rounded up: a nudge never says less time than is left."""
    return max(1, -(-int((closes_at - now).total_seconds()) // 60))


async def _live_event(session: AsyncSession, event_id: int) -> Event | None:
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    return event if event is not None and event.status == EventStatus.LIVE.value else None


async def _nudge(
    session: AsyncSession,
    runtime: Runtime,
    event: Event,
    number: int,
    moment: Literal["open", "closing"],
    minutes: int = 0,
) -> int:
    """NUDGE the attendees whose ballot counts and who have not voted in round `number`; how many now."""
    audience = await attendees_service.audience(session=session, event=event, who="not_voted", round_number=number)
    messages = []
    for n, attendee in enumerate(reach(audience, "sms").attendees, start=1):
        await yield_now(n)
        token = attendees_service.ballot_token_for(runtime=runtime, attendee=attendee, event=event)
        body = text(
            "nudge_open" if moment == "open" else "nudge_closing",
            attendees_service.language_of(attendee, event),
            kw=event.keyword,
            round=number,
            minutes=minutes,
            url=attendees_service.ballot_url(runtime, token),
        )
        messages.append(Outgoing(attendee, body, f"NUDGE:{event.id}:{number}:{moment}:{attendee.id}"))
    queued = await queue_many(session=session, runtime=runtime, channel="sms", message_type="NUDGE", messages=messages)
    return len(queued.ids)


async def nudge_on_open(*, session: AsyncSession, runtime: Runtime, event_id: int, number: int) -> int:
    """A round opened: nudge who may vote in it and has not yet."""
    event = await _live_event(session, event_id)
    return 0 if event is None else await _nudge(session, runtime, event, number, "open")


async def nudge_before_close(
    *, session: AsyncSession, runtime: Runtime, now: dt.datetime, done: set[RoundKey] | None = None
) -> int:
    """Nudge the non-voters of each open timed round that closes within its event's `nudgeMinutesBeforeClose`.

    Runs on every clock tick: `done` remembers (past this unit of work's commit) the rounds this
    process has handled, so each costs one pass per process; the dedupe keys make it one per round.
    A round that opened inside its nudge window was nudged when it opened, and is not nudged again.
    """
    queued = 0
    handled: list[RoundKey] = []
    seen: set[RoundKey] = set()
    for round_, event in await MessageRepository(session).open_rounds_closing(after=now, until=now + LONGEST_NUDGE):
        key = (event.id, round_.number)
        seen.add(key)
        minutes = events_service.vote_config_of(event).nudge_minutes_before_close
        if (done is not None and key in done) or minutes == 0 or round_.closes_at is None:
            continue
        window_opens = round_.closes_at - dt.timedelta(minutes=minutes)
        if now < window_opens:
            continue
        if round_.opened_at is None or round_.opened_at < window_opens:
            left = minutes_left(round_.closes_at, now)
            queued += await _nudge(session, runtime, event, round_.number, "closing", left)
        handled.append(key)
    if done is not None and (handled or not done <= seen):

        async def remember() -> None:
            done.intersection_update(seen)  # rounds that closed (or moved their close away) are forgotten
            done.update(handled)

        after_commit(session, remember)
    return queued


async def _results(session: AsyncSession, runtime: Runtime, event: Event, number: int | None) -> int:
    """RESULTS of round `number`, or with None the event's final ones (the standings of its last round)."""
    context = await context_of(session, event)
    final = number is None
    number = context.current_round(utcnow()) if number is None else number
    key, values = await results_text(session=session, runtime=runtime, context=context, number=number, final=final)
    audience = await attendees_service.audience(session=session, event=event, who="confirmed")
    voters = await voters_of(session, context, None if final else number)  # to the others, RESULTS are marketing
    what = "final" if final else str(number)
    messages = [
        Outgoing(
            attendee,
            text(key, attendees_service.language_of(attendee, event), **values),
            f"RESULTS:{event.id}:{what}:{attendee.id}",
            marketing=attendee.id not in voters,
        )
        for attendee in reach(audience, "sms").attendees
    ]
    queued = await queue_many(
        session=session, runtime=runtime, channel="sms", message_type="RESULTS", messages=messages
    )
    return len(queued.ids)


async def results_on_round_close(*, session: AsyncSession, runtime: Runtime, event_id: int, number: int) -> int:
    """A round closed while the event goes on: its top 3 (or, leaderboard hidden, that it closed)."""
    event = await _live_event(session, event_id)
    return 0 if event is None else await _results(session, runtime, event, number)


async def results_on_event_close(*, session: AsyncSession, runtime: Runtime, event_id: int) -> int:
    """The event closed: the final results, the standings of its last round."""
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None or event.status != EventStatus.CLOSED.value:
        return 0
    return await _results(session, runtime, event, None)


async def send_recap(session: AsyncSession, runtime: Runtime, event_id: int, url: str) -> int:
    """RECAP: the recap page's `url` to each attendee whose ballot counts, once each; how many were queued now.

    For the recap page to call when it is first rendered (after the event closed), in that unit of
    work. 404 unknown event · 409 an event not closed (or archived) yet.
    """
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None:
        raise NotFound(f"No event {event_id}.")
    if event.status not in (EventStatus.CLOSED.value, EventStatus.ARCHIVED.value):
        raise Conflict(f"The event is {event.status}; a recap follows its close.", slug="event-not-closed")
    audience = await attendees_service.audience(session=session, event=event, who="confirmed")
    messages = [
        Outgoing(
            attendee,
            text("recap", attendees_service.language_of(attendee, event), kw=event.keyword, url=url),
            f"RECAP:{event.id}:{attendee.id}",
        )
        for attendee in reach(audience, "sms").attendees
    ]
    queued = await queue_many(session=session, runtime=runtime, channel="sms", message_type="RECAP", messages=messages)
    return len(queued.ids)


def install(runtime: Runtime) -> None:
    """Subscribe the journey to the events domain's hooks."""
    nudged_before_close: set[RoundKey] = set()

    async def round_opened(session: AsyncSession, payload: dict[str, Any]) -> None:
        await nudge_on_open(
            session=session, runtime=runtime, event_id=int(payload["eventId"]), number=int(payload["number"])
        )

    async def round_closed(session: AsyncSession, payload: dict[str, Any]) -> None:
        await results_on_round_close(
            session=session, runtime=runtime, event_id=int(payload["eventId"]), number=int(payload["number"])
        )

    async def event_closed(session: AsyncSession, payload: dict[str, Any]) -> None:
        await results_on_event_close(session=session, runtime=runtime, event_id=int(payload["eventId"]))

    async def clock_tick(session: AsyncSession, payload: dict[str, Any]) -> None:
        await nudge_before_close(session=session, runtime=runtime, now=payload["now"], done=nudged_before_close)

    runtime.hooks.subscribe(events_service.ROUND_OPENED, round_opened)
    runtime.hooks.subscribe(events_service.ROUND_CLOSED, round_closed)
    runtime.hooks.subscribe(events_service.EVENT_CLOSED, event_closed)
    runtime.hooks.subscribe(events_service.CLOCK_TICK, clock_tick)
