"""Hooks that run inside a unit of work: a domain announces what happened, others add their rows to the same commit.

This is how an action and the messages it causes are written in one transaction without the
acting domain knowing the messaging domain: events says "round opened" to the session's hooks,
and messaging, which subscribed at start-up, writes its NUDGE rows before the commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Hook = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]


class TransactionHooks:
    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = defaultdict(list)

    def subscribe(self, topic: str, hook: Hook) -> None:
        self._hooks[topic].append(hook)

    async def run(self, topic: str, session: AsyncSession, payload: dict[str, Any]) -> None:
        """Run every hook of `topic` in `session`; an error aborts the unit of work like any other."""
        for hook in list(self._hooks.get(topic, ())):
            await hook(session, payload)
