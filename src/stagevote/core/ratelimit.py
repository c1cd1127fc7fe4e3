"""Rate limits (moving window) on the `limits` library, in Redis or in memory."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from stagevote.core.errors import TooManyRequests


@dataclass(frozen=True)
class Spent:
    """One use counted against a limit: whether it fit, how many are left, and when the window frees one."""

    allowed: bool
    remaining: int
    retry_after: int


class RateLimiter:
    """Counts hits per (limit, identifiers) and refuses with 429 and `Retry-After` past the limit."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def for_redis_url(
        cls,
        redis_url: str | None,
        *,
        prefix: str = "stagevote",
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
    ) -> RateLimiter:
        """On Redis when given, with the app's own client's timeouts (a hung Redis fails fast: 503)."""
        if redis_url is None:
            return cls(MemoryStorage())
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        return cls(
            RedisStorage(
                uri,
                implementation="redispy",
                key_prefix=prefix,
                socket_timeout=socket_timeout,  # type: ignore[arg-type]  # None: redis-py's default, none
                socket_connect_timeout=socket_connect_timeout,  # type: ignore[arg-type]
            )
        )

    async def hit(self, limit: str, *identifiers: str, what: str) -> None:
        """Count one attempt; raise TooManyRequests when `limit` is exceeded for `identifiers`."""
        item = parse(limit)
        if await self._strategy.hit(item, *identifiers):
            return
        stats = await self._strategy.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(f"Too many {what}; try again in {retry_after} s.", retry_after=retry_after)

    async def spend(self, limit: str, *identifiers: str) -> Spent:
        """Count one use of `limit` for `identifiers` and say what is left; nothing is raised."""
        item = parse(limit)
        allowed = await self._strategy.hit(item, *identifiers)
        stats = await self._strategy.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return Spent(allowed, stats.remaining if allowed else 0, retry_after)

    async def acquire(self, per_second: float, *identifiers: str) -> None:
        """Wait until one more use fits in `per_second` (shared by every instance on Redis)."""
        item = parse(f"{max(1, round(per_second))}/second")
        while not await self._strategy.hit(item, *identifiers):
            stats = await self._strategy.get_window_stats(item, *identifiers)
            await asyncio.sleep(max(0.01, min(1.0, stats.reset_time - time.time())))

    async def reset(self) -> None:
        await self._storage.reset()
