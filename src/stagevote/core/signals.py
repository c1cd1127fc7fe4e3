"""In-process and cluster-wide notifications: who wants to hear that an event, a round or a tally changed.

`Signals` stays inside one process (the instance that made a change tells its own Socket.IO
broadcaster, which reaches every instance's clients through the Socket.IO Redis manager).
`Bus` reaches every instance (Redis pub/sub; in memory on the embedded default), for what each
instance must do itself, such as dropping a cached copy of an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Signals:
    """Topic → handlers within this process; a failing handler is logged and does not stop the others."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(topic, ())):
            try:
                await handler(payload)
            except Exception:
                log.exception("signal_handler_failed", topic=topic)


class Bus(Signals):
    """Signals that every instance hears: through Redis pub/sub when configured, else in process."""

    def __init__(self, redis: Redis | None, *, channel: str) -> None:
        super().__init__()
        self._redis = redis
        self._channel = channel
        self._listener: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self._redis is None:
            await super().publish(topic, payload)
            return
        await self._redis.publish(self._channel, json.dumps({"topic": topic, "payload": payload}))

    async def start(self) -> None:
        """Listen in the background; an unreachable Redis is retried there, never fatal here."""
        if self._redis is None or self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(self._redis), name="stagevote-bus")

    async def _listen(self, redis: Redis) -> None:
        while not self._stopping.is_set():
            pubsub: Any = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                while not self._stopping.is_set():
                    message = await pubsub.get_message(timeout=0.5)
                    if message is not None:
                        await self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: listen again in a moment (what was missed was a cache hint)
                log.warning("bus_listen_failed", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), timeout=1.0)

    async def _deliver(self, raw: Any) -> None:
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            return
        await Signals.publish(self, str(data.get("topic")), dict(data.get("payload") or {}))

    async def stop(self) -> None:
        """Stop listening now; a listener stuck in Redis I/O is given two seconds, then left behind."""
        if self._listener is None:
            return
        self._stopping.set()
        self._listener.cancel()
        await asyncio.wait({self._listener}, timeout=2.0)
        self._listener = None
