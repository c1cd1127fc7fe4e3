"""Counters per key (Redis sorted sets, or process memory), exact even while they are being rebuilt.

A key exists only once it was seeded from the source of truth; an increment to a missing key is not
applied to it. Each change carries a marker (e.g. "vote id:artist"), and every count of the source is
taken inside a *count window* opened first (`begin`):

- While a window is open on a key, every increment to that key is also written to the key's change
  log (applied to the counters too when they exist). Closing the window (`seed` or `repair`) replays
  the log entries written since the window opened, except those whose marker the count already
  includes (the changes it read recent enough to still have an increment on its way, within
  `RECENT_SECONDS`), and writes the result in the same atomic step.
- So a change committed after the count (its increment, necessarily later than its commit, lands in
  the window: either in the log, or on the counters once they were written) is counted once, and so
  is a change the count saw whose increment is late (its marker is skipped, in the replay and, via
  the key's `:counted` set, when it lands afterwards). The race this closes: a vote committed after
  the seed's count whose increment reached the missing key before the seed was written used to be
  dropped, leaving the board one short for good.
- `seed` writes only a missing key (SET NX, in effect); `repair` rewrites an existing key, so a
  reconciler can compare it with a fresh count without fighting the live increments (they are in
  the log), and leaves a missing key to the next read's seed.

Both are one Lua script on Redis (all keys named in KEYS: the counters, the `:counted` set, the
`:log` list and the `:readers` sorted set of open windows with their deadlines), one critical section
in memory. A window not closed within `WINDOW_SECONDS` (a process that died mid-count) expires; an
expired window's seed or repair is refused and the next one is done afresh.

An increment that fails (Redis down) is remembered (`missed_since`): the reconciler repairs the keys
it may have left short as soon as Redis answers again.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

SEEDED = "_seeded"  # a member every seeded key holds, so an empty tally still exists
TTL_SECONDS = 7 * 24 * 3600
# How late an increment may land after its change was made: a count marks the changes of this last
# stretch as counted, so that their increments, if still on their way, are skipped. An increment is
# sent right after its commit, and a call that Redis does not answer in REDIS_TIMEOUT_SECONDS fails
# (no retry: the reconciler repairs it), so seconds are plenty; only a Redis that stalls longer and
# then runs the increment could count a change twice, until the next periodic pass repairs it. Each
# marker of the stretch is sent with a count and kept in Redis: at 3,700 votes a second, 30 s made
# ~100k, and the repair held Redis for ~70 ms.
RECENT_SECONDS = 10
WINDOW_SECONDS = 30  # the longest a count (a seed, a repair) may take before its window expires

# is a count window open on this key? (KEYS[4]: its readers, by deadline in ms). A function every
# increment script starts with: one EXISTS on a key that is almost always absent.
_WINDOW_OPEN = """
local function window_open()
  if redis.call('EXISTS', KEYS[4]) == 0 then return false end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  return redis.call('ZCARD', KEYS[4]) > 0
end
local function log_changes(from, to)
  local i = from
  while i <= to do
    local j = math.min(i + 999, to)
    redis.call('RPUSH', KEYS[3], unpack(ARGV, i, j))
    i = j + 1
  end
  redis.call('PEXPIRE', KEYS[3], WINDOW_MS)
end
""".replace("WINDOW_MS", str(WINDOW_SECONDS * 1000))
_INCREMENT = (
    _WINDOW_OPEN
    + """
if window_open() then
  redis.call('RPUSH', KEYS[3], ARGV[1], math.floor((#ARGV - 1) / 2))
  log_changes(2, #ARGV)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 2 end
for i = 2, #ARGV, 2 do redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i]) end
return 1
"""
)
# the same, for many changes to one key at once (the vote path's group commit): the changes whose
# marker the seed has not counted, summed per member. ARGV: (marker, n, member, delta × n)...
_INCREMENT_MANY = (
    _WINDOW_OPEN
    + """
if window_open() then log_changes(1, #ARGV) end
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
)
# open a count window: ARGV reader id, window ms; the log's length now is where its replay starts
_BEGIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return redis.call('LLEN', KEYS[3])
"""
# close a window: write the count plus the logged changes it does not include. ARGV: reader id,
# log offset, mode ('seed': only a missing key; 'repair': only an existing one), SEEDED, key ttl,
# number of counts, :counted ttl, (member, count) × n, the counted markers joined by commas (one
# argument: a busy round's are a hundred thousand, and packing each as an argument held the event loop)
# Returns -1 (window expired: nothing written), 0 (nothing to write), or the members corrected
# (a seed: 1).
_CLOSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = redis.call('ZSCORE', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local function done(result)
  if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('DEL', KEYS[3]) end
  return result
end
if not deadline or tonumber(deadline) < now then return done(-1) end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if (ARGV[3] == 'seed') == exists then return done(0) end
local counts = {}
local pairs_end = 7 + 2 * tonumber(ARGV[6])
for i = 8, pairs_end, 2 do counts[ARGV[i]] = tonumber(ARGV[i + 1]) end
local counted = {}
local marks = {}
for m in string.gmatch(ARGV[pairs_end + 1] or '', '[^,]+') do
  counted[m] = true
  marks[#marks + 1] = m
end
local log = redis.call('LRANGE', KEYS[3], tonumber(ARGV[2]), -1)
local i = 1
while i <= #log do
  local n = tonumber(log[i + 1])
  if not counted[log[i]] then
    for j = i + 2, i + 2 * n, 2 do counts[log[j]] = (counts[log[j]] or 0) + tonumber(log[j + 1]) end
  end
  i = i + 2 + 2 * n
end
local corrected = 1
if exists then
  corrected = 0
  local current = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local seen = {}
  for k = 1, #current, 2 do
    if current[k] ~= ARGV[4] then
      seen[current[k]] = true
      if tonumber(current[k + 1]) ~= (counts[current[k]] or 0) then corrected = corrected + 1 end
    end
  end
  for member, count in pairs(counts) do
    if not seen[member] and count ~= 0 then corrected = corrected + 1 end
  end
end
if corrected > 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZADD', KEYS[1], 0, ARGV[4])
  for member, count in pairs(counts) do redis.call('ZADD', KEYS[1], count, member) end
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
if #marks > 0 then
  for k = 1, #marks, 1000 do
    redis.call('SADD', KEYS[2], unpack(marks, k, math.min(k + 999, #marks)))
  end
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
return done(corrected)
"""


Change = tuple[str, str, dict[str, int]]  # (key, marker, member → delta): one `increment`


@dataclass(frozen=True)
class Window:
    """An open count window of one key: who opened it, and where in the change log it began."""

    key: str
    reader: str
    offset: int


class Tally(Protocol):
    async def increment(self, key: str, changes: dict[str, int], *, marker: str) -> bool:
        """Apply `member → delta` if the key is seeded and the seed has not counted `marker` already."""

    async def increment_many(self, changes: Sequence[Change]) -> None:
        """`increment` each of `changes`, in one call (a Redis pipeline)."""

    async def read(self, key: str) -> dict[str, int] | None:
        """The counts of a seeded key, or None when it must be seeded first."""

    async def begin(self, key: str) -> Window:
        """Open a count window on `key`: call it before counting the source of truth. (A marker, here and
        below, is a short token without a comma: `{vote id}:{artist id}`.)"""

    async def seed(self, window: Window, counts: dict[str, int], *, counted_markers: list[str]) -> None:
        """Create the key with `counts` (which include the changes `counted_markers` name) and the
        changes logged since `begin`, unless it exists."""

    async def repair(self, window: Window, counts: dict[str, int], *, counted_markers: list[str]) -> int:
        """Rewrite an existing key as `seed` would write it: how many members were wrong (0: it was
        exact, or missing, or the window expired)."""

    async def drop(self, key: str) -> None: ...

    async def ping(self) -> None:
        """Raise when the tally's store does not answer."""

    def take_missed(self) -> float | None:
        """When (epoch seconds) an increment first failed since the last call, if one did; clears it."""


class MemoryTally:
    def __init__(self) -> None:
        self._keys: dict[str, dict[str, int]] = {}
        self._counted: dict[str, tuple[float, set[str]]] = {}
        self._logs: dict[str, list[tuple[str, dict[str, int]]]] = {}
        self._readers: dict[str, dict[str, float]] = {}
        self._ids = itertools.count()

    def _window_open(self, key: str) -> bool:
        readers = self._readers.get(key)
        if not readers:
            return False
        now = time.monotonic()
        for reader in [r for r, deadline in readers.items() if deadline < now]:
            del readers[reader]
        return bool(readers)

    async def increment(self, key: str, changes: dict[str, int], *, marker: str) -> bool:
        if self._window_open(key):
            self._logs.setdefault(key, []).append((marker, dict(changes)))
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

    async def begin(self, key: str) -> Window:
        self._window_open(key)  # forget expired readers
        reader = str(next(self._ids))
        self._readers.setdefault(key, {})[reader] = time.monotonic() + WINDOW_SECONDS
        return Window(key, reader, len(self._logs.get(key, [])))

    async def seed(self, window: Window, counts: dict[str, int], *, counted_markers: list[str]) -> None:
        self._close(window, counts, counted_markers, seed=True)

    async def repair(self, window: Window, counts: dict[str, int], *, counted_markers: list[str]) -> int:
        return max(0, self._close(window, counts, counted_markers, seed=False))

    def _close(self, window: Window, counts: dict[str, int], counted_markers: list[str], *, seed: bool) -> int:
        key = window.key
        readers = self._readers.get(key, {})
        deadline = readers.pop(window.reader, None)
        log = self._logs.get(key, [])[window.offset :]
        if not self._window_open(key):
            self._readers.pop(key, None)
            self._logs.pop(key, None)
        if deadline is None or deadline < time.monotonic():
            return -1
        current = self._keys.get(key)
        if seed == (current is not None):
            return 0
        target = dict(counts)
        markers = set(counted_markers)
        for marker, changes in log:
            if marker not in markers:
                for member, delta in changes.items():
                    target[member] = target.get(member, 0) + delta
        corrected = 1 if current is None else _differences(current, target)
        if corrected:
            self._keys[key] = target
        expires = time.monotonic() + 2 * RECENT_SECONDS
        previous = self._counted.get(key)
        if previous is not None and previous[0] > time.monotonic():
            markers |= previous[1]
        self._counted[key] = (expires, markers)
        return corrected

    async def drop(self, key: str) -> None:
        self._keys.pop(key, None)
        self._counted.pop(key, None)

    async def ping(self) -> None:
        return None

    def take_missed(self) -> float | None:
        return None


def _differences(current: dict[str, int], target: dict[str, int]) -> int:
    return sum(1 for member in current.keys() | target.keys() if current.get(member, 0) != target.get(member, 0))


class RedisTally:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._increment = redis.register_script(_INCREMENT)
        self._increment_many = redis.register_script(_INCREMENT_MANY)
        self._begin = redis.register_script(_BEGIN)
        self._close = redis.register_script(_CLOSE)
        self._missed_since: float | None = None

    def _keys(self, key: str) -> list[str]:
        base = self._prefix + key
        return [base, base + ":counted", base + ":log", base + ":readers"]

    def _missed(self) -> None:
        if self._missed_since is None:
            self._missed_since = time.time()

    def take_missed(self) -> float | None:
        missed, self._missed_since = self._missed_since, None
        return missed

    async def increment(self, key: str, changes: dict[str, int], *, marker: str) -> bool:
        args: list[str | int] = [marker]
        for member, delta in changes.items():
            args += [member, delta]
        try:
            return int(await self._increment(keys=self._keys(key), args=args)) == 1
        except Exception:
            self._missed()
            raise

    async def increment_many(self, changes: Sequence[Change]) -> None:
        by_key: dict[str, list[str | int]] = defaultdict(list)
        for key, marker, members in changes:
            args = by_key[key]
            args += [marker, len(members)]
            for member, delta in members.items():
                args += [member, delta]
        try:
            if len(by_key) == 1:
                ((key, args),) = by_key.items()
                await self._increment_many(keys=self._keys(key), args=args)
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, args in by_key.items():
                    await self._increment_many(keys=self._keys(key), args=args, client=pipe)
                await pipe.execute()
        except Exception:
            self._missed()
            raise

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

    async def begin(self, key: str) -> Window:
        reader = uuid.uuid4().hex
        offset = await self._begin(keys=self._keys(key), args=[reader, WINDOW_SECONDS * 1000])
        return Window(key, reader, int(offset))

    async def seed(self, window: Window, counts: dict[str, int], *, counted_markers: list[str]) -> None:
        await self._close_window(window, "seed", counts, counted_markers)

    async def repair(self, window: Window, counts: dict[str, int], *, counted_markers: list[str]) -> int:
        return max(0, await self._close_window(window, "repair", counts, counted_markers))

    async def _close_window(self, window: Window, mode: str, counts: dict[str, int], markers: list[str]) -> int:
        args: list[str | int] = [
            window.reader,
            window.offset,
            mode,
            SEEDED,
            TTL_SECONDS,
            len(counts),
            2 * RECENT_SECONDS,
        ]
        for member, count in counts.items():
            args += [member, count]
        args.append(",".join(markers))  # a marker never holds a comma (`{vote id}:{artist id}`)
        return int(await self._close(keys=self._keys(window.key), args=args))

    async def drop(self, key: str) -> None:
        await self._redis.delete(*self._keys(key))

    async def ping(self) -> None:
        await self._redis.ping()
