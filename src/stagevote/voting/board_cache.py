"""What `GET /events/{id}/leaderboard` answers the public, kept for one second, encoded once, with an ETag.

Phones that want the live board poll it; with `Cache-Control: public, max-age=1` a CDN or nginx in
front absorbs them, and behind it each instance serves a poll from this copy: no unit of work, no
tally read, no serialisation. A copy is dropped early when this instance takes a vote for the event,
when any instance says its standings moved (the live stream's `BOARD_CHANGED`, at most every 50 ms)
or when the event changed, so a fan's own vote shows at once on the instance that took it and within
a second everywhere. Only answers anyone may see are kept: never an admin's view.

The ETag is weak and covers the standings, not `updatedAt`: a poll that would show the same standings
again is answered 304 Not Modified, however often the copy was rebuilt in between.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.voting.schemas import LeaderboardRead
from stagevote.voting.service import BOARD_CHANGED, VOTES_CHANGED

TTL_SECONDS = 1.0


@dataclass(frozen=True)
class CachedBoard:
    body: bytes
    etag: str
    expires: float


@dataclass
class _Store:
    boards: dict[tuple[int, int | None], CachedBoard] = field(default_factory=dict)


_stores: dict[int, _Store] = {}  # by id(runtime); a runtime's entry goes when the runtime does


def _store(runtime: Runtime) -> _Store:
    store = _stores.get(id(runtime))
    if store is None:
        store = _stores[id(runtime)] = _Store()
        weakref.finalize(runtime, _stores.pop, id(runtime), None)
    return store


def get(runtime: Runtime, event_id: int, round_number: int | None) -> CachedBoard | None:
    """The copy of this board (`round_number` None: the current round), if it is less than a second old."""
    cached = _store(runtime).boards.get((event_id, round_number))
    if cached is None or cached.expires <= time.monotonic():
        return None
    return cached


def put(runtime: Runtime, event_id: int, round_number: int | None, board: LeaderboardRead) -> CachedBoard:
    body = board.model_dump_json(by_alias=True).encode()
    standings = board.model_dump_json(by_alias=True, exclude={"updated_at"}).encode()
    cached = CachedBoard(
        body, f'W/"{hashlib.blake2b(standings, digest_size=12).hexdigest()}"', time.monotonic() + TTL_SECONDS
    )
    boards = _store(runtime).boards
    if len(boards) > 10_000:
        boards.clear()
    boards[(event_id, round_number)] = cached
    return cached


def forget(runtime: Runtime, event_id: int) -> None:
    boards = _store(runtime).boards
    for key in [k for k in boards if k[0] == event_id]:
        del boards[key]


def matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2) of an If-None-Match header with our ETag."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def install(runtime: Runtime) -> None:
    """Drop an event's copies when a vote lands here, its standings move anywhere, or it changes."""

    async def drop(payload: dict[str, Any]) -> None:
        forget(runtime, int(payload["eventId"]))

    runtime.signals.subscribe(VOTES_CHANGED, drop)
    runtime.bus.subscribe(BOARD_CHANGED, drop)
    runtime.bus.subscribe(events_service.EVENT_CHANGED, drop)
