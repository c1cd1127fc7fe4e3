"""What the vote path knows about an event (status, rules, rounds, line-up), cached in process.

The rows it holds are detached snapshots: read them, never change them.

Each instance keeps a copy for `hot_cache_seconds` and drops it as soon as the bus says the
event, one of its rounds or its line-up changed; so a vote costs no query for any of this.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.artists import service as artists_service
from stagevote.artists.service import Performer
from stagevote.core.db import detach, unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import Event, Round, RoundStatus
from stagevote.events.schemas import VoteConfig


@dataclass(frozen=True)
class VoteContext:
    event: Event
    config: VoteConfig
    rounds: dict[int, Round]
    performers: dict[int, Performer]

    @property
    def event_id(self) -> int:
        return self.event.id

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

    def by_vote_code(self, code: str) -> Performer | None:
        wanted = code.strip().upper()
        return next((p for p in self.performers.values() if p.vote_code.upper() == wanted), None)


def _key(event_id: int) -> str:
    return f"vote-context:{event_id}"


async def vote_context(*, session: AsyncSession, runtime: Runtime, event_id: int) -> VoteContext | None:
    cached = runtime.memo.get(_key(event_id))
    if isinstance(cached, VoteContext):
        return cached
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None:
        return None
    rounds = {r.number: r for r in await events_service.rounds_of(session=session, event_id=event_id)}
    performers = {p.artist_id: p for p in await artists_service.accepted_performers(session=session, event_id=event_id)}
    # kept beyond this unit of work: out of the session, so its rollback cannot expire them
    detach(session, event, *rounds.values())
    context = VoteContext(event, events_service.vote_config_of(event), rounds, performers)
    runtime.memo.put(_key(event_id), context)
    return context


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
        runtime.memo.forget(_key(int(payload["eventId"])))

    runtime.bus.subscribe(events_service.EVENT_CHANGED, forget)
