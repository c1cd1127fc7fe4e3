"""Side effects that follow a commit but run beside the requests that made it, and a way to wait for them.

The vote path's group commit answers its requests as soon as a batch has committed; the batch's
tally update and signals run here, off every request's path. A reader that must see its own
writes (the leaderboard read by the same process right after a vote) settles first: it waits for
the effects already under way, never for later ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Deferred:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, effect: Coroutine[Any, Any, None], *, name: str) -> None:
        """Start `effect` now, in the background; a failure is logged, never raised."""
        task = asyncio.create_task(self._logged(effect, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, *, within: float) -> None:
        """Wait (at most `within` seconds) for the effects that are under way now."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    @staticmethod
    async def _logged(effect: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await effect
        except Exception:  # what it follows has committed: a failed effect is logged, like an after_commit
            log.exception("deferred_effect_failed", effect=name)
