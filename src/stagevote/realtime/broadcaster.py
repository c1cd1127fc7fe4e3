"""Tell live screens what changed: leaderboards at an adaptive rate, round and event changes at once.

Leaderboards. A vote marks its (event, round) changed: the instance that took it tells its own
screens and, through the bus, every other instance (at most every `ANNOUNCE_SECONDS`). Each
instance then emits to its own sockets only: at once on the first change (leading edge), then at
most once per `live_emit_seconds` (0.25 s), or once per `live_busy_emit_seconds` (1 s) when this
instance holds `live_busy_room` leaderboard sockets or more for the event; a change during a wait
is emitted when the wait ends, so the last state always arrives. The standings are computed once
per emit (`Boards`) and written to every socket as the same frame (`FanOut`). Full standings, not
deltas: a board is a few hundred bytes, what costs is the write per socket, and a full board lets
a client that missed one emit be right again with the next.

Round and event changes are rare and go out at once to the `round` and `event` rooms of every
instance through the Socket.IO Redis manager (each instance writing with `FanOut`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import socketio
import structlog

from stagevote.core.db import utcnow
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.realtime.boards import Boards
from stagevote.realtime.rooms import NAMESPACE, event_room, public_room, round_room, staff_room
from stagevote.voting import service as voting_service
from stagevote.voting.context import vote_context

log = structlog.get_logger(__name__)

BOARD_CHANGED = voting_service.BOARD_CHANGED  # bus: every instance re-emits that leaderboard to its sockets
ANNOUNCE_SECONDS = 0.05


class Throttle:
    """Per key: `action(key)` at once on the first mark, then at most once per `interval(key)` seconds
    while marks keep coming, and once more after the last mark."""

    def __init__(self, name: str, action: Callable[[Any], Awaitable[None]], interval: Callable[[Any], float]) -> None:
        self._name = name
        self._action = action
        self._interval = interval
        self._marked: set[Hashable] = set()
        self._pumps: dict[Hashable, asyncio.Task[None]] = {}

    def mark(self, key: Hashable) -> None:
        self._marked.add(key)
        if key not in self._pumps:
            self._pumps[key] = asyncio.create_task(self._pump(key), name=f"{self._name}-{key}")

    async def _pump(self, key: Hashable) -> None:
        loop = asyncio.get_running_loop()
        try:
            while key in self._marked:
                self._marked.discard(key)  # before the action reads the state: a later mark means another round
                started = loop.time()
                try:
                    await self._action(key)
                except Exception:
                    log.exception("live_action_failed", action=self._name, key=str(key))
                await asyncio.sleep(max(0.0, started + self._interval(key) - loop.time()))
        finally:
            del self._pumps[key]

    async def stop(self) -> None:
        pumps = list(self._pumps.values())
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._marked.clear()


class Broadcaster:
    def __init__(self, sio: socketio.AsyncServer, runtime: Runtime, boards: Boards) -> None:
        settings = runtime.settings
        self._sio = sio
        self._runtime = runtime
        self._boards = boards
        self._busy_room = settings.live_busy_room
        self._interval = settings.live_emit_seconds
        self._busy_interval = max(settings.live_busy_emit_seconds, settings.live_emit_seconds)
        self._emits = Throttle("stagevote-live-emit", self._emit_leaderboard, self._emit_interval)
        self._announces = Throttle("stagevote-live-announce", self._announce, lambda _: ANNOUNCE_SECONDS)
        self._running = False
        runtime.signals.subscribe(voting_service.VOTES_CHANGED, self._on_votes)
        runtime.signals.subscribe(events_service.ROUND_STATUS, self._on_round)
        runtime.signals.subscribe(events_service.EVENT_STATUS, self._on_event)
        runtime.bus.subscribe(BOARD_CHANGED, self._on_board_changed)

    def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(self._emits.stop(), self._announces.stop(), self._boards.stop())

    def mark(self, event_id: int, round_number: int) -> None:
        """This instance's screens, and (soon) every other instance's, get the round's fresh standings."""
        if self._running:
            self._emits.mark((event_id, round_number))
            self._announces.mark((event_id, round_number))

    async def _on_votes(self, payload: dict[str, Any]) -> None:
        self.mark(int(payload["eventId"]), int(payload["round"]))

    async def _on_board_changed(self, payload: dict[str, Any]) -> None:
        if self._running:
            self._emits.mark((int(payload["eventId"]), int(payload["round"])))

    async def _announce(self, key: tuple[int, int]) -> None:
        await self._runtime.bus.publish(BOARD_CHANGED, {"eventId": key[0], "round": key[1]})

    async def _on_round(self, payload: dict[str, Any]) -> None:
        event_id = int(payload["eventId"])
        await self._sio.emit("round", payload, room=round_room(event_id), namespace=NAMESPACE)
        self.mark(event_id, int(payload["number"]))  # a closed round may now be visible to the public

    async def _on_event(self, payload: dict[str, Any]) -> None:
        await self._sio.emit("event", payload, room=event_room(int(payload["eventId"])), namespace=NAMESPACE)

    def local_watchers(self, event_id: int) -> int:
        """Leaderboard sockets of the event on this instance."""
        rooms = self._sio.manager.rooms.get(NAMESPACE, {})
        return sum(len(rooms.get(room, ())) for room in (public_room(event_id), staff_room(event_id)))

    def _emit_interval(self, key: tuple[int, int]) -> float:
        return self._busy_interval if self.local_watchers(key[0]) >= self._busy_room else self._interval

    async def _emit_leaderboard(self, key: tuple[int, int]) -> None:
        event_id, round_number = key
        if self.local_watchers(event_id) == 0:
            return
        board = await self._boards.current(event_id, round_number)
        context = await vote_context(session=None, runtime=self._runtime, event_id=event_id)
        if board is None or context is None:
            return
        public = voting_service.may_see_leaderboard(context, round_number, None, utcnow())
        rooms = [staff_room(event_id), public_room(event_id)] if public else staff_room(event_id)
        # this instance's sockets only: every instance was told through the bus and emits for itself
        await self._sio.emit("leaderboard", board, room=rooms, namespace=NAMESPACE, ignore_queue=True)
