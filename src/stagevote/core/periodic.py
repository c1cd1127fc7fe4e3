"""Background work of a process: a loop run as a task, or a tick repeated at an interval, stopped gracefully.

Stopping asks the loop to finish (a tick under way completes its unit of work) and only cancels it
after a grace period: a task cancelled in the middle of a database query can hold up shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine

import structlog

log = structlog.get_logger(__name__)
STOP_GRACE_SECONDS = 2.0


class Background:
    """A loop `run(stopping)` as a named task; it must return soon after `stopping` is set."""

    def __init__(self, name: str, run: Callable[[asyncio.Event], Coroutine[object, object, None]]) -> None:
        self._name = name
        self._run = run
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(self._stopping), name=self._name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            log.warning("background_task_cancelled", task=self._name)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep for `seconds`, or less if asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


class Periodic(Background):
    """`tick()` every `interval_seconds`; a failing tick is logged and the next one runs as planned."""

    def __init__(self, name: str, tick: Callable[[], Awaitable[object]], *, interval_seconds: float) -> None:
        self._tick = tick
        self.interval_seconds = interval_seconds
        super().__init__(name, self._loop)

    async def _loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self._tick()
            except Exception:
                log.exception("periodic_tick_failed", task=self._name)
            await pause(stopping, self.interval_seconds)
