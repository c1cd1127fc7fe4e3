"""The current standings of a round for everyone who asks at once: one computation per batch of askers.

Each asker is answered with standings computed after it asked (a batch starts only once the one
before it finished), so a screen that joined its room and then asked cannot be handed standings
older than its joining, while a thousand screens subscribing together cost one tally read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from stagevote.core.runtime import Runtime
from stagevote.voting import service as voting_service
from stagevote.voting.context import vote_context

log = structlog.get_logger(__name__)
Board = dict[str, Any]  # a leaderboard body as sent (camelCase JSON)


class Boards:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._waiting: dict[tuple[int, int], list[asyncio.Future[Board | None]]] = {}
        self._runners: dict[tuple[int, int], asyncio.Task[None]] = {}

    async def current(self, event_id: int, round_number: int) -> Board | None:
        """The standings of the round now, or None when the event or the round is gone."""
        key = (event_id, round_number)
        answer: asyncio.Future[Board | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(answer)
        if key not in self._runners:
            self._runners[key] = asyncio.create_task(self._run(key), name=f"stagevote-board-{event_id}-{round_number}")
        return await answer

    async def _run(self, key: tuple[int, int]) -> None:
        batch: list[asyncio.Future[Board | None]] = []
        try:
            while batch := self._waiting.pop(key, []):
                try:
                    board = await self._compute(*key)
                except Exception as exc:
                    for answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                else:
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
