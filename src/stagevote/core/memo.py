"""A small in-process cache with a time limit, for what the hot path reads on every request."""

from __future__ import annotations

import time
from typing import Any


class Memo:
    """Values kept for `ttl_seconds`, dropped early by `forget` (e.g. when the bus says they changed)."""

    def __init__(self, *, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
