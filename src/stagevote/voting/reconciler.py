"""The tally's reconciler: leaderboards checked against the votes table, periodically and when Redis returns.

A leaderboard is a cache of the votes table (`core/tally.py`), and a cache can go wrong: an
increment lost while Redis was down (the vote stood, its answer was 201), a process that died
between a commit and its increment, a change of vote whose marker repeats an older one. The
reconciler runs in every app process, beside the round clock:

- every `probe_seconds` (1 s) it pings the tally's store. A failure is remembered; the first ping
  that answers after one (Redis is back), or an increment of this process that failed since the last
  pass, starts a pass over the rounds active since then, at once;
- every `TALLY_RECONCILE_SECONDS` (30 s) a pass covers the rounds open now or closed since the last
  periodic pass (only they can take votes: a closed round's tally moves no more). One process of the
  deployment makes each period's pass: the first to claim the period in the shared cache.

A pass recounts each round inside a tally window and repairs it in one atomic step
(`voting.service.reconcile_round`): votes landing meanwhile are neither lost nor counted twice. A
tally that is not seeded (Redis restarted empty) is left to the next read, which seeds it. A pass
that fails is owed: the next tick tries again from the same point. Several processes may reconcile
the same round at once; each repair is exact, so they agree.
"""

from __future__ import annotations

import datetime as dt
import time

import structlog

from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.periodic import Periodic
from stagevote.core.runtime import Runtime
from stagevote.core.tally import RECENT_SECONDS
from stagevote.events import service as events_service
from stagevote.voting import service

log = structlog.get_logger(__name__)
MARGIN_SECONDS = RECENT_SECONDS  # a pass reaches this far before the moment it starts from


class TallyReconciler(Periodic):
    def __init__(self, runtime: Runtime, *, every_seconds: float, probe_seconds: float = 1.0) -> None:
        self._runtime = runtime
        self._every = every_seconds
        self._down_since: float | None = None
        self._last_periodic: float | None = None
        self._owed: float | None = None  # the start of a pass not done yet (epoch seconds)
        super().__init__("stagevote-tally-reconciler", self.tick, interval_seconds=probe_seconds)

    def start(self) -> None:
        if self._every > 0:
            super().start()

    async def tick(self) -> int:
        """Probe the store; run a pass if one is due: how many artists' counts it corrected."""
        now = time.time()
        try:
            await self._runtime.tally.ping()
        except Exception as exc:
            if self._down_since is None:
                self._down_since = now
                log.warning("tally_unreachable", error=str(exc) or type(exc).__name__)
            return 0
        if self._down_since is not None:
            log.info("tally_reachable_again", down_seconds=round(now - self._down_since, 1))
        marks = [m for m in (self._owed, self._runtime.tally.take_missed(), self._down_since) if m is not None]
        self._down_since = None
        if self._last_periodic is None or now - self._last_periodic >= self._every:
            if await self._periodic_turn(now):
                marks.append(self._last_periodic if self._last_periodic is not None else now - self._every)
            self._last_periodic = now
        if not marks:
            return 0
        self._owed = min(marks)
        corrected = await self.reconcile(since=self._owed - MARGIN_SECONDS)
        self._owed = None
        return corrected

    async def _periodic_turn(self, now: float) -> bool:
        """Whether this process makes this period's pass: one process of the deployment does (the first to
        claim the period in the shared cache); each pass recounts the open rounds, and at thousands of
        votes a second every process doing it cost the database as many recounts. Without an answer
        from the cache, this process makes it (a repair is exact, two at once agree)."""
        period = int(now // self._every)
        try:
            return await self._runtime.cache.add(f"tally-reconcile:{period}", "1", ttl_seconds=int(self._every * 2) + 1)
        except Exception:  # the pass matters more than the claim
            return True

    async def reconcile(self, *, since: float) -> int:
        """Repair the tally of every round active since `since` (epoch seconds)."""
        runtime = self._runtime
        async with unit_of_work(runtime.sessionmaker) as session:
            rounds = await events_service.rounds_active_since(
                session=session, since=dt.datetime.fromtimestamp(since, dt.UTC), now=utcnow()
            )
        corrected = 0
        for event_id, number in rounds:
            corrected += await service.reconcile_round(runtime=runtime, event_id=event_id, number=number)
        return corrected
