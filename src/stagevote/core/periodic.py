"""Background work of a process: a coroutine run as a task, or a tick repeated at an interval, stopped on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine

import structlog

log = structlog.get_logger(__name__)


class Background:
    """One long-running coroutine as a named task: `start()` it, `stop()` cancels it and waits."""

    def __init__(self, name: str, run: Callable[[], Coroutine[object, object, None]]) -> None:
        self._name = name
        self._coroutine = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._coroutine(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Periodic(Background):
    """`tick()` every `interval_seconds`; a failing tick is logged and the next one runs as planned."""

    def __init__(self, name: str, tick: Callable[[], Awaitable[object]], *, interval_seconds: float) -> None:
        self._tick = tick
        self.interval_seconds = interval_seconds
        super().__init__(name, self._loop)

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:
                log.exception("periodic_tick_failed", task=self._name)
            await asyncio.sleep(self.interval_seconds)
