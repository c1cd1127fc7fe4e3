"""The task queue's in-memory broker and its choice by URL (Redis and RabbitMQ: tests/distributed)."""

from __future__ import annotations

import asyncio

import pytest

from stagevote.config import ConfigurationError
from stagevote.core import queue as queue_module
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


async def test_stopping_the_in_memory_queue_leaves_no_task_running(monkeypatch: pytest.MonkeyPatch) -> None:
    # a task still running after its app stopped would hold what it holds (a database connection) for good
    monkeypatch.setattr(queue_module, "STOP_GRACE_SECONDS", 0.2)
    queue = TaskQueue("memory://", queue_name="test")
    quick_done = asyncio.Event()
    slow_started = asyncio.Event()
    outcome: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0.05)
        quick_done.set()

    async def slow() -> None:
        slow_started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            outcome.append("cancelled")  # where a unit of work rolls back
            raise

    queue.register("quick", quick)
    queue.register("slow", slow)
    await queue.start()
    await queue.enqueue("quick")
    await queue.enqueue("slow")
    await slow_started.wait()
    running = set(queue.broker._running_tasks)  # type: ignore[attr-defined]
    await queue.stop()
    assert quick_done.is_set()  # given its moment to finish
    assert outcome == ["cancelled"]
    assert all(task.done() for task in running)


def test_an_unknown_broker_scheme_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="BROKER_URL"):
        TaskQueue("kafka://somewhere", queue_name="test")
