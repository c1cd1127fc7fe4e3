"""The current standings of a round for everyone who asks: computed once, handed to every asker.

A board is reused while nothing that could move it was heard since its tally was read: no vote on
this instance, no `BOARD_CHANGED` from another, no change to the event (and for five seconds at
most). That is safe for a screen that joined its room before asking: any change after the read
makes this instance emit to the room, so the screen gets it. Otherwise askers wait for one
computation per batch (a batch starts only once the one before it finished, so each is answered
with standings read after it asked). A doors-open burst of thousands costs one tally read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.voting import service as voting_service
from stagevote.voting.context import vote_context

log = structlog.get_logger(__name__)
Board = dict[str, Any]  # a leaderboard body as sent (camelCase JSON)
REUSE_SECONDS = 5.0
COMPUTE_TIMEOUT_SECONDS = 10.0


class Boards:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._waiting: dict[tuple[int, int], list[asyncio.Future[Board | None]]] = {}
        self._runners: dict[tuple[int, int], asyncio.Task[None]] = {}
        self._changes: dict[int, int] = {}  # by event: how many changes were heard
        self._last: dict[tuple[int, int], tuple[int, float, Board | None]] = {}  # changes heard before the read, when
        runtime.signals.subscribe(voting_service.VOTES_CHANGED, self._on_change)
        runtime.signals.subscribe(events_service.ROUND_STATUS, self._on_change)
        runtime.signals.subscribe(events_service.EVENT_STATUS, self._on_change)
        runtime.bus.subscribe(voting_service.BOARD_CHANGED, self._on_change)
        runtime.bus.subscribe(events_service.EVENT_CHANGED, self._on_change)

    async def _on_change(self, payload: dict[str, Any]) -> None:
        self.changed(int(payload["eventId"]))

    def changed(self, event_id: int) -> None:
        self._changes[event_id] = self._changes.get(event_id, 0) + 1

    async def current(self, event_id: int, round_number: int) -> Board | None:
        """The standings of the round now, or None when the event or the round is gone."""
        key = (event_id, round_number)
        last = self._last.get(key)
        if (
            last is not None
            and last[0] == self._changes.get(event_id, 0)
            and time.monotonic() - last[1] < REUSE_SECONDS
        ):
            return last[2]
        answer: asyncio.Future[Board | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(answer)
        if key not in self._runners:
            self._runners[key] = asyncio.create_task(self._run(key), name=f"stagevote-board-{event_id}-{round_number}")
        return await answer

    async def _run(self, key: tuple[int, int]) -> None:
        batch: list[asyncio.Future[Board | None]] = []
        try:
            while batch := self._waiting.pop(key, []):
                changes, read_at = self._changes.get(key[0], 0), time.monotonic()
                try:
                    async with asyncio.timeout(COMPUTE_TIMEOUT_SECONDS):  # a stuck read must not hold every later asker
                        board = await self._compute(*key)
                except Exception as exc:
                    for answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                else:
                    if len(self._last) >= 10_000:
                        self._last.clear()
                    self._last[key] = (changes, read_at, board)
                    for answer in batch:
                        if not answer.done():
                            answer.set_result(board)
        finally:
            del self._runners[key]
            for answer in batch + self._waiting.pop(key, []):  # stopped half way: nobody is left hanging
                if not answer.done():
                    answer.set_exception(RuntimeError("the live stream is stopping"))

    async def _compute(self, event_id: int, round_number: int) -> Board | None:
        context = await vote_context(session=None, runtime=self._runtime, event_id=event_id)
        if context is None or round_number not in context.rounds:
            return None
        board = await voting_service.standings(
            session=None, runtime=self._runtime, context=context, number=round_number
        )
        return board.model_dump(mode="json", by_alias=True)

    async def stop(self) -> None:
        runners = list(self._runners.values())
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
