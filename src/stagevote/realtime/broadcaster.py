"""Tell live screens what changed, coalesced: a few leaderboard emits per second per event at most.

A vote only marks its (event, round) dirty; a ticker emits the fresh standings of every dirty
round once per tick, so the last state is always delivered and a burst of votes costs one emit.
The instance that took the vote emits, and the Socket.IO Redis manager carries it to the clients
of every instance.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
import structlog

from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.periodic import Background, pause
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.realtime.rooms import NAMESPACE, public_room, staff_room
from stagevote.voting import service as voting_service
from stagevote.voting.context import vote_context

log = structlog.get_logger(__name__)


class Broadcaster:
    def __init__(self, sio: socketio.AsyncServer, runtime: Runtime, *, interval_seconds: float) -> None:
        self._sio = sio
        self._runtime = runtime
        self._interval = interval_seconds
        self._dirty: set[tuple[int, int]] = set()
        self._wake = asyncio.Event()
        self._background = Background("stagevote-broadcaster", self._run)
        runtime.signals.subscribe(voting_service.VOTES_CHANGED, self._on_votes)
        runtime.signals.subscribe(events_service.ROUND_STATUS, self._on_round)
        runtime.signals.subscribe(events_service.EVENT_STATUS, self._on_event)

    async def _on_votes(self, payload: dict[str, Any]) -> None:
        self.mark(int(payload["eventId"]), int(payload["round"]))

    async def _on_round(self, payload: dict[str, Any]) -> None:
        event_id = int(payload["eventId"])
        await self._emit_to_both("round", payload, event_id)
        self.mark(event_id, int(payload["number"]))  # a closed round may now be visible to the public

    async def _on_event(self, payload: dict[str, Any]) -> None:
        await self._emit_to_both("event", payload, int(payload["eventId"]))

    def mark(self, event_id: int, round_number: int) -> None:
        self._dirty.add((event_id, round_number))
        self._wake.set()

    async def _emit_to_both(self, name: str, payload: dict[str, Any], event_id: int) -> None:
        await self._sio.emit(name, payload, room=public_room(event_id), namespace=NAMESPACE)
        await self._sio.emit(name, payload, room=staff_room(event_id), namespace=NAMESPACE)

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await _first_of(self._wake, stopping)
            if stopping.is_set():
                return
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for event_id, round_number in sorted(dirty):
                try:
                    await self._emit_leaderboard(event_id, round_number)
                except Exception:
                    log.exception("leaderboard_emit_failed", event_id=event_id, round=round_number)
            await pause(stopping, self._interval)  # the coalescing window

    async def _emit_leaderboard(self, event_id: int, round_number: int) -> None:
        async with unit_of_work(self._runtime.sessionmaker) as session:
            context = await vote_context(session=session, runtime=self._runtime, event_id=event_id)
            if context is None or round_number not in context.rounds:
                return
            board = await voting_service.standings(
                session=session, runtime=self._runtime, context=context, number=round_number
            )
        body = board.model_dump(mode="json", by_alias=True)
        await self._sio.emit("leaderboard", body, room=staff_room(event_id), namespace=NAMESPACE)
        if voting_service.may_see_leaderboard(context, round_number, None, utcnow()):
            await self._sio.emit("leaderboard", body, room=public_room(event_id), namespace=NAMESPACE)


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until one of `events` is set."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
