"""What the vote path knows about an event (status, rules, rounds, line-up), cached in process.

The rows it holds are detached snapshots: read them, never change them.

Each instance keeps a copy for `hot_cache_seconds` and drops it as soon as the bus says the
event, one of its rounds or its line-up changed; so a vote costs no query for any of this.
Concurrent misses of one event by callers without a session (the live stream) share one load
(single flight): a thousand screens subscribing at doors-open cost one load, not a thousand; and
once the copy has merely aged out (the bus said nothing), they keep using it while one refresh runs
in the background, so the live stream does not queue for the database behind a burst of votes. A
load that started before the bus said the event changed is not kept, and callers arriving after
that change do not wait for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.artists import service as artists_service
from stagevote.artists.service import Performer
from stagevote.attendees import service as attendees_service
from stagevote.attendees.service import BallotRule
from stagevote.core.db import detach, unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import Event, Round, RoundStatus
from stagevote.events.schemas import VoteConfig

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VoteContext:
    event: Event
    config: VoteConfig
    rounds: dict[int, Round]
    performers: dict[int, Performer]

    @functools.cached_property
    def event_id(self) -> int:
        return self.event.id

    @functools.cached_property
    def ballot_rule(self) -> BallotRule:
        """Who may vote, as the group commit's statement checks it (a copy's event does not change)."""
        return attendees_service.ballot_rule(event=self.event, config=self.config)

    def round_status(self, number: int, now: dt.datetime) -> RoundStatus | None:
        round_ = self.rounds.get(number)
        return events_service.effective_round_status(round_, now) if round_ is not None else None

    def open_round(self, now: dt.datetime) -> int | None:
        return next((n for n in sorted(self.rounds) if self.round_status(n, now) is RoundStatus.OPEN), None)

    def current_round(self, now: dt.datetime) -> int:
        """The open round, else the last one that opened, else the first."""
        open_now = self.open_round(now)
        if open_now is not None:
            return open_now
        started = [
            n
            for n, r in self.rounds.items()
            if r.opened_at is not None or self.round_status(n, now) is RoundStatus.CLOSED
        ]
        return max(started) if started else min(self.rounds, default=1)

    def candidates(self, number: int) -> list[Performer]:
        """The artists fans may vote for in a round: its `artistIds`, or every accepted artist."""
        config = self.config.round(number)
        if config is None or config.artist_ids is None:
            return list(self.performers.values())
        return [self.performers[a] for a in config.artist_ids if a in self.performers]

    def candidate_ids(self, number: int) -> frozenset[int]:
        """`candidates` as artist ids, worked out once per round of this copy (the vote path asks on every vote)."""
        known = self._candidate_ids.get(number)
        if known is None:
            known = self._candidate_ids[number] = frozenset(p.artist_id for p in self.candidates(number))
        return known

    @functools.cached_property
    def _candidate_ids(self) -> dict[int, frozenset[int]]:
        return {}

    def by_vote_code(self, code: str) -> Performer | None:
        wanted = code.strip().upper()
        return next((p for p in self.performers.values() if p.vote_code.upper() == wanted), None)


def _key(event_id: int) -> str:
    return f"vote-context:{event_id}"


@dataclass
class _Flight:
    generation: int
    done: asyncio.Future[VoteContext | None]


@dataclass
class _Loads:
    """One runtime's loads under way, how many times the bus said each event changed, and the last copy
    kept of each event (with the count it was loaded under) for the live stream to use while it refreshes."""

    flights: dict[int, _Flight] = field(default_factory=dict)
    generations: dict[int, int] = field(default_factory=dict)
    last: dict[int, tuple[int, VoteContext]] = field(default_factory=dict)
    refreshes: set[asyncio.Task[VoteContext | None]] = field(default_factory=set)


_loads: dict[int, _Loads] = {}  # by id(runtime); a runtime's entry goes when the runtime does


def _loads_of(runtime: Runtime) -> _Loads:
    loads = _loads.get(id(runtime))
    if loads is None:
        loads = _loads[id(runtime)] = _Loads()
        weakref.finalize(runtime, _loads.pop, id(runtime), None)
    return loads


async def vote_context(*, session: AsyncSession | None, runtime: Runtime, event_id: int) -> VoteContext | None:
    """The event's copy; on a miss it is loaded with `session`.

    Without a session (the live stream) a miss never waits for the database while the last copy kept
    is still current (the bus has not said the event changed since): that copy is answered and a
    refresh starts in the background. Otherwise such callers share one load under way, in a unit of
    work of its own. A caller with a session never waits for another's load: it may hold a connection,
    and callers holding connections while waiting for a load that needs one could take the whole pool.
    """
    cached = runtime.memo.get(_key(event_id))
    if isinstance(cached, VoteContext):
        return cached
    loads = _loads_of(runtime)
    generation = loads.generations.get(event_id, 0)
    if session is None:
        known = loads.last.get(event_id)
        if known is not None and known[0] == generation:
            if event_id not in loads.flights:
                refresh = asyncio.create_task(_lead(None, runtime, loads, event_id, generation))
                loads.refreshes.add(refresh)
                refresh.add_done_callback(_refreshed(loads))
            return known[1]
        flight = loads.flights.get(event_id)
        if flight is not None and flight.generation == generation:
            # its failure is ours too: a thousand followers retrying one by one would hold the pool
            return await asyncio.shield(flight.done)
    return await _lead(session, runtime, loads, event_id, generation)


def _refreshed(loads: _Loads) -> Callable[[asyncio.Task[VoteContext | None]], None]:
    def done(task: asyncio.Task[VoteContext | None]) -> None:
        loads.refreshes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("vote_context_refresh_failed", exc_info=task.exception())

    return done


async def _lead(
    session: AsyncSession | None, runtime: Runtime, loads: _Loads, event_id: int, generation: int
) -> VoteContext | None:
    """Load the copy, letting callers without a session wait for this load instead of starting theirs."""
    flight = _Flight(generation, asyncio.get_running_loop().create_future())
    loads.flights[event_id] = flight
    try:
        if session is not None:
            context = await _load(session, event_id)
        else:
            async with unit_of_work(runtime.sessionmaker) as own:
                context = await _load(own, event_id)
    except BaseException as exc:
        flight.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the load was cancelled"))
        flight.done.exception()  # retrieved: nobody may be following this flight
        raise
    finally:
        if loads.flights.get(event_id) is flight:
            del loads.flights[event_id]
    if context is not None and loads.generations.get(event_id, 0) == generation:
        runtime.memo.put(_key(event_id), context)
        if len(loads.last) >= 10_000:
            loads.last.clear()
        loads.last[event_id] = (generation, context)
    flight.done.set_result(context)
    return context


async def _load(session: AsyncSession, event_id: int) -> VoteContext | None:
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None:
        return None
    rounds = {r.number: r for r in await events_service.rounds_of(session=session, event_id=event_id)}
    performers = {p.artist_id: p for p in await artists_service.accepted_performers(session=session, event_id=event_id)}
    # kept beyond this unit of work: out of the session, so its rollback cannot expire them
    detach(session, event, *rounds.values())
    return VoteContext(event, events_service.vote_config_of(event), rounds, performers)


async def current_vote_context(*, runtime: Runtime, event_id: int) -> VoteContext | None:
    """`vote_context` without a session of the caller's: the copy, or loaded in a unit of work of its own.

    One load per event at a time: the requests that miss the copy together (it expires every few
    seconds, under load) wait for that one load instead of each reading the event again.
    """
    cached = runtime.memo.get(_key(event_id))
    if isinstance(cached, VoteContext):
        return cached
    loading = runtime.memo.get(_loading_key(event_id))
    if isinstance(loading, asyncio.Future):
        context: VoteContext | None = await asyncio.shield(loading)
        return context
    future: asyncio.Future[VoteContext | None] = asyncio.get_running_loop().create_future()
    runtime.memo.put(_loading_key(event_id), future)
    try:
        async with unit_of_work(runtime.sessionmaker) as session:
            context = await vote_context(session=session, runtime=runtime, event_id=event_id)
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: the waiters (if any) raise it themselves
        raise
    else:
        future.set_result(context)
        return context
    finally:
        runtime.memo.forget(_loading_key(event_id))


def _loading_key(event_id: int) -> str:
    return f"vote-context-loading:{event_id}"


def install(runtime: Runtime) -> None:
    """Drop an instance's copy whenever any instance says the event changed."""

    async def forget(payload: dict[str, Any]) -> None:
        event_id = int(payload["eventId"])
        loads = _loads_of(runtime)
        loads.generations[event_id] = loads.generations.get(event_id, 0) + 1
        loads.last.pop(event_id, None)
        runtime.memo.forget(_key(event_id))

    runtime.bus.subscribe(events_service.EVENT_CHANGED, forget)
