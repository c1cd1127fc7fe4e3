"""The clock of timed rounds: once a second, open and close the rounds whose time has come."""

from __future__ import annotations

import structlog

from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.periodic import Periodic
from stagevote.core.runtime import Runtime
from stagevote.events import service

log = structlog.get_logger(__name__)


class RoundClock(Periodic):
    def __init__(self, runtime: Runtime, *, interval_seconds: float = 1.0) -> None:
        self._runtime = runtime
        super().__init__("stagevote-round-clock", self.tick, interval_seconds=interval_seconds)

    async def tick(self) -> None:
        async with unit_of_work(self._runtime.sessionmaker) as session:
            changed = await service.apply_clock(session=session, runtime=self._runtime, now=utcnow())
        for round_ in changed:
            log.info("round_by_clock", event_id=round_.event_id, round=round_.number, status=round_.status)
