"""Key-value cache adapters: Redis when configured, process memory on the embedded default."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class Cache(Protocol):
    """What stagevote asks of a cache: short-lived string values under a key."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl_seconds: int) -> None: ...

    async def add(self, key: str, value: str, *, ttl_seconds: int) -> bool:
        """Set `key` unless it holds a value: whether this call set it (one winner among all processes)."""

    async def delete(self, key: str) -> None: ...

    async def exists_any(self, *keys: str) -> bool: ...

    async def ping(self) -> bool: ...


class MemoryCache:
    """A cache in this process's memory; entries expire lazily on read."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: str, *, ttl_seconds: int) -> None:
        now = time.monotonic()
        if len(self._entries) > 10_000:  # keep memory bounded: drop what has expired
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
        self._entries[key] = (value, now + max(1, ttl_seconds))

    async def add(self, key: str, value: str, *, ttl_seconds: int) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_seconds=ttl_seconds)
        return True

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def exists_any(self, *keys: str) -> bool:
        for key in keys:
            if await self.get(key) is not None:
                return True
        return False

    async def ping(self) -> bool:
        return True


class RedisCache:
    """A cache in Redis, shared by every instance; keys live under `prefix`."""

    def __init__(self, redis: Redis, *, prefix: str = "stagevote:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(self._prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, *, ttl_seconds: int) -> None:
        await self._redis.set(self._prefix + key, value, ex=max(1, ttl_seconds))

    async def add(self, key: str, value: str, *, ttl_seconds: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, value, ex=max(1, ttl_seconds), nx=True))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def exists_any(self, *keys: str) -> bool:
        return bool(await self._redis.exists(*(self._prefix + k for k in keys)))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
