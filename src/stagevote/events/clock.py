"""The clock of timed rounds: once a second, open and close the rounds whose time has come."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.events import service

log = structlog.get_logger(__name__)


class RoundClock:
    def __init__(self, runtime: Runtime, *, interval_seconds: float = 1.0) -> None:
        self._runtime = runtime
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        async with unit_of_work(self._runtime.sessionmaker) as session:
            changed = await service.apply_clock(session=session, runtime=self._runtime, now=utcnow())
        for round_ in changed:
            log.info("round_by_clock", event_id=round_.event_id, round=round_.number, status=round_.status)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stagevote-round-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("round_clock_failed")
            await asyncio.sleep(self._interval)
