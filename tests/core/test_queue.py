"""The task queue's in-memory broker and its choice by URL (Redis and RabbitMQ: tests/distributed)."""

from __future__ import annotations

import pytest

from stagevote.config import ConfigurationError
from stagevote.core.queue import TaskQueue


async def test_the_in_memory_broker_runs_tasks_in_this_process() -> None:
    queue = TaskQueue("memory://", queue_name="test")
    ran: list[int] = []

    async def task(n: int) -> None:
        ran.append(n)

    queue.register("t", task)
    await queue.start()
    try:
        assert queue.in_process
        for n in range(3):
            await queue.enqueue("t", n)
        await queue.broker.wait_all()  # type: ignore[attr-defined]
    finally:
        await queue.stop()
    assert sorted(ran) == [0, 1, 2]


def test_an_unknown_broker_scheme_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="BROKER_URL"):
        TaskQueue("kafka://somewhere", queue_name="test")
