"""The task queue: taskiq, one task code, the broker chosen by `BROKER_URL`.

- `memory://` (the embedded default): tasks run in this process, as asyncio tasks (`wait_all` waits for
  them, and for the tasks they enqueue).
- `redis://…` / `rediss://…`: Redis streams with a consumer group (a task a dead worker had taken is
  handed to another after `idle_timeout`); `stagevote worker` consumes.
- `amqp://…`: RabbitMQ (aio-pika); `stagevote worker` consumes.
- SQS: taskiq has community brokers for SQS; see the README for the deployment note.
Delivery is at least once whatever the broker: every task must be safe to run twice (the outbox
claims its row with a conditional update, so a second run finds nothing to do). A task should not wait
long: Redis streams hand a task read but unacknowledged for `idle_timeout` to another worker (the
outbox waits for the providers' rate limits before it enqueues, never inside a task).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika.exchange import Exchange
from taskiq_aio_pika.queue import Queue
from taskiq_redis import RedisStreamBroker

from stagevote.config import ConfigurationError

TaskFunction = Callable[..., Awaitable[None]]


STOP_GRACE_SECONDS = 1.0  # how long a stopping in-process queue lets running tasks finish (deliveries: outbox)


class InProcessBroker(InMemoryBroker):
    """taskiq's in-memory broker, whose `wait_all` also waits for the tasks that tasks enqueue meanwhile,
    and whose shutdown leaves no task running behind it."""

    async def wait_all(self) -> None:
        while self._running_tasks:
            await asyncio.gather(*list(self._running_tasks), return_exceptions=True)
            await asyncio.sleep(0)  # let finished tasks' callbacks leave the set

    async def shutdown(self) -> None:
        """Let running tasks finish for a moment, then cancel and await the rest.

        A task left running outlives its event loop: one inside a unit of work then holds its database
        connection (and, on SQLite, the write lock) until the process ends.
        """
        running = set(self._running_tasks)
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await super().shutdown()


def create_broker(url: str, *, queue_name: str) -> AsyncBroker:
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return InProcessBroker(await_inplace=False)
    if scheme in ("redis", "rediss"):
        return RedisStreamBroker(url, queue_name=queue_name, consumer_group_name=queue_name, idle_timeout=60_000)
    if scheme in ("amqp", "amqps"):
        return AioPikaBroker(url, exchange=Exchange(name=queue_name), task_queues=[Queue(name=queue_name)])
    raise ConfigurationError(
        f"STAGEVOTE_BROKER_URL scheme '{scheme}' is not supported: use memory://, redis://, rediss:// or amqp://"
    )


class TaskQueue:
    """The broker, the tasks registered on it, and a way to enqueue them by name."""

    def __init__(self, url: str, *, queue_name: str) -> None:
        self.url = url
        self.broker = create_broker(url, queue_name=queue_name)
        self.in_process = isinstance(self.broker, InMemoryBroker)
        self._tasks: dict[str, Any] = {}
        self._started = False

    def register(self, name: str, function: TaskFunction) -> None:
        self._tasks[name] = self.broker.register_task(function, task_name=name)

    async def enqueue(self, name: str, *args: Any) -> None:
        await self._tasks[name].kiq(*args)

    async def start(self) -> None:
        if not self._started:
            await self.broker.startup()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.broker.shutdown()
            self._started = False
