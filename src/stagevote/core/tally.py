"""Counters per key (Redis sorted sets, or process memory), exact even while they are being rebuilt.

A key exists only once it was seeded from the source of truth; an increment to a missing key is
dropped (the next read seeds the key from the database, which already holds that change). One race
remains in that scheme: a change that is in the database when the seed reads it, but whose own
increment arrives after the seed was written, would count twice. So each increment carries a
marker (e.g. "vote id:artist"), and the seed records the markers of the changes it read that are
recent enough to still have an increment on its way (a short window, `RECENT_SECONDS`): an
increment whose marker the seed already counted is skipped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

SEEDED = "_seeded"  # a member every seeded key holds, so an empty tally still exists
TTL_SECONDS = 7 * 24 * 3600
RECENT_SECONDS = 30

_INCREMENT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 2 end
for i = 2, #ARGV, 2 do redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i]) end
return 1
"""
# the same, for many changes to one key at once (the vote path's group commit): the changes whose
# marker the seed has not counted, summed per member
_INCREMENT_MANY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local check = redis.call('EXISTS', KEYS[2]) == 1
local sums = {}
local applied = 0
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  if not check or redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
    for j = i + 2, i + 2 * n, 2 do sums[ARGV[j]] = (sums[ARGV[j]] or 0) + tonumber(ARGV[j + 1]) end
    applied = applied + 1
  end
  i = i + 2 + 2 * n
end
for member, delta in pairs(sums) do redis.call('ZINCRBY', KEYS[1], delta, member) end
return applied
"""
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local pairs_end = 4 + tonumber(ARGV[3]) * 2
redis.call('ZADD', KEYS[1], 0, ARGV[1])
for i = 5, pairs_end, 2 do redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
for i = pairs_end + 1, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
if #ARGV > pairs_end then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1
"""


Change = tuple[str, str, dict[str, int]]  # (key, marker, member → delta): one `increment`


class Tally(Protocol):
    async def increment(self, key: str, changes: dict[str, int], *, marker: str) -> bool:
        """Apply `member → delta` if the key is seeded and the seed has not counted `marker` already."""

    async def increment_many(self, changes: Sequence[Change]) -> None:
        """`increment` each of `changes`, in one call (a Redis pipeline)."""

    async def read(self, key: str) -> dict[str, int] | None:
        """The counts of a seeded key, or None when it must be seeded first."""

    async def seed(self, key: str, counts: dict[str, int], *, counted_markers: list[str]) -> None:
        """Create the key with `counts` (which include the changes `counted_markers` name), unless it exists."""

    async def drop(self, key: str) -> None: ...


class MemoryTally:
    def __init__(self) -> None:
        self._keys: dict[str, dict[str, int]] = {}
        self._counted: dict[str, tuple[float, set[str]]] = {}

    async def increment(self, key: str, changes: dict[str, int], *, marker: str) -> bool:
        counts = self._keys.get(key)
        if counts is None:
            return False
        counted = self._counted.get(key)
        if counted is not None and counted[0] > time.monotonic() and marker in counted[1]:
            return False
        for member, delta in changes.items():
            counts[member] = counts.get(member, 0) + delta
        return True

    async def increment_many(self, changes: Sequence[Change]) -> None:
        for key, marker, members in changes:
            await self.increment(key, members, marker=marker)

    async def read(self, key: str) -> dict[str, int] | None:
        counts = self._keys.get(key)
        return dict(counts) if counts is not None else None

    async def seed(self, key: str, counts: dict[str, int], *, counted_markers: list[str]) -> None:
        if key in self._keys:
            return
        self._keys[key] = dict(counts)
        self._counted[key] = (time.monotonic() + 2 * RECENT_SECONDS, set(counted_markers))

    async def drop(self, key: str) -> None:
        self._keys.pop(key, None)
        self._counted.pop(key, None)


class RedisTally:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._increment = redis.register_script(_INCREMENT)
        self._increment_many = redis.register_script(_INCREMENT_MANY)
        self._seed = redis.register_script(_SEED)

    def _keys(self, key: str) -> list[str]:
        return [self._prefix + key, self._prefix + key + ":counted"]

    async def increment(self, key: str, changes: dict[str, int], *, marker: str) -> bool:
        args: list[str | int] = [marker]
        for member, delta in changes.items():
            args += [member, delta]
        return int(await self._increment(keys=self._keys(key), args=args)) == 1

    async def increment_many(self, changes: Sequence[Change]) -> None:
        by_key: dict[str, list[str | int]] = defaultdict(list)
        for key, marker, members in changes:
            args = by_key[key]
            args += [marker, len(members)]
            for member, delta in members.items():
                args += [member, delta]
        if len(by_key) == 1:
            ((key, args),) = by_key.items()
            await self._increment_many(keys=self._keys(key), args=args)
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, args in by_key.items():
                await self._increment_many(keys=self._keys(key), args=args, client=pipe)
            await pipe.execute()

    async def read(self, key: str) -> dict[str, int] | None:
        rows = await self._redis.zrange(self._prefix + key, 0, -1, withscores=True)
        if not rows:
            return None
        counts: dict[str, int] = {}
        for row in rows:
            member, score = row[0], row[1]
            counts[member.decode() if isinstance(member, bytes) else str(member)] = int(score)
        counts.pop(SEEDED, None)
        return counts

    async def seed(self, key: str, counts: dict[str, int], *, counted_markers: list[str]) -> None:
        args: list[str | int] = [SEEDED, TTL_SECONDS, len(counts), 2 * RECENT_SECONDS]
        for member, count in counts.items():
            args += [member, count]
        args += counted_markers
        await self._seed(keys=self._keys(key), args=args)

    async def drop(self, key: str) -> None:
        await self._redis.delete(*self._keys(key))
