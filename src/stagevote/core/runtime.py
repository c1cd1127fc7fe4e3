"""The process-wide resources of one app (settings, database, cache, limiter, metrics) and their dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stagevote.config import Settings
from stagevote.core.cache import Cache, MemoryCache, RedisCache
from stagevote.core.db import create_engine, create_sessionmaker, unit_of_work
from stagevote.core.deferred import Deferred
from stagevote.core.hooks import TransactionHooks
from stagevote.core.memo import Memo
from stagevote.core.metrics import Metrics
from stagevote.core.queue import TaskQueue
from stagevote.core.ratelimit import RateLimiter
from stagevote.core.security import PasswordHashing
from stagevote.core.signals import Bus, Signals
from stagevote.core.tally import MemoryTally, RedisTally, Tally


@dataclass
class Runtime:
    """Everything a request may need beyond its own session; built once per app."""

    settings: Settings
    secret_key: SecretStr  # masked in reprs; `get_secret_value()` where a signature needs it
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    cache: Cache
    limiter: RateLimiter
    metrics: Metrics
    signals: Signals
    bus: Bus
    memo: Memo
    tally: Tally
    hooks: TransactionHooks
    queue: TaskQueue
    passwords: PasswordHashing = field(default_factory=lambda: PasswordHashing(concurrency=1, queue=8))
    # what a domain keeps per process beside these (e.g. analytics' live figures), under the domain's name
    extensions: dict[str, Any] = field(default_factory=dict)
    deferred: Deferred = field(default_factory=Deferred)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_engine(
            settings.database_url.get_secret_value(),
            pool_size=settings.db_pool_size,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
        # short timeouts: with Redis down or hung, a vote still commits and answers at once (its tally
        # increment fails and is repaired later), and the auth paths answer 503 (core/errors.py)
        reply, connect = settings.redis_timeout_seconds, settings.redis_connect_timeout_seconds
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url is not None else None
        # and no retry: a command is sent once (a retried tally increment would count twice; core/tally.py,
        # tests/core/test_tally_sent_once.py)
        no_retry = Retry(NoBackoff(), 0)
        redis = (
            Redis.from_url(redis_url, socket_timeout=reply, socket_connect_timeout=connect, retry=no_retry)
            if redis_url
            else None
        )
        return cls(
            settings=settings,
            secret_key=settings.resolved_secret_key(),
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            cache=RedisCache(redis, prefix=settings.redis_key_prefix) if redis is not None else MemoryCache(),
            limiter=RateLimiter.for_redis_url(
                redis_url,
                prefix=f"{settings.redis_key_prefix}limits",
                socket_timeout=reply,
                socket_connect_timeout=connect,
            ),
            metrics=Metrics(),
            signals=Signals(),
            bus=Bus(redis, channel=f"{settings.redis_key_prefix}bus"),
            memo=Memo(ttl_seconds=settings.hot_cache_seconds),
            tally=RedisTally(redis, prefix=f"{settings.redis_key_prefix}tally:")
            if redis is not None
            else MemoryTally(),
            hooks=TransactionHooks(),
            queue=TaskQueue(settings.broker_url.get_secret_value(), queue_name=f"{settings.redis_key_prefix}tasks"),
            passwords=PasswordHashing(
                concurrency=settings.password_hash_concurrency, queue=settings.password_hash_queue
            ),
        )

    async def start(self) -> None:
        await self.bus.start()
        await self.queue.start()

    async def close(self) -> None:
        await self.deferred.settle(within=5)
        await self.queue.stop()
        await self.bus.stop()
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in its threadpool, a hop that costs more than the
    # whole of a lean request
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; it ends (commit or rollback) before the answer is sent."""
    async with unit_of_work(runtime.sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
