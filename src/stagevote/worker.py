"""`stagevote worker`: a process that delivers queued messages and keeps the clocks (sweeper, timed rounds).

It consumes the queue of `BROKER_URL` (Redis streams or RabbitMQ), acknowledging a task once it
ran; the outbox sweeper and the round clock run beside it. Several workers may run at once: the
outbox claims rows with conditional updates and both clocks lock their rows with SKIP LOCKED.
SIGTERM or SIGINT stops it gracefully: the dispatcher stops, the deliveries under way finish and record
their outcome (up to `outbox.DRAIN_SECONDS`), batches not begun are left to their leases, then the
receiver gets the rest of its 20 s.
"""

from __future__ import annotations

import asyncio
import os
import signal

import structlog
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from stagevote.config import ConfigurationError, Settings
from stagevote.core.logging import configure_logging
from stagevote.core.runtime import Runtime
from stagevote.events.clock import RoundClock
from stagevote.messaging import outbox
from stagevote.wiring import close_domains, install_domains

log = structlog.get_logger(__name__)
GRACE_SECONDS = 20


async def run_worker(settings: Settings, *, concurrency: int) -> None:
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    runtime = Runtime.build(settings)
    if runtime.queue.in_process:
        raise ConfigurationError(
            "STAGEVOTE_BROKER_URL is memory://: the API process delivers messages itself and needs no worker. "
            "Set it to redis://… or amqp://… to run workers."
        )
    install_domains(runtime)
    runtime.queue.broker.is_worker_process = True
    await runtime.start()
    sweeper = outbox.Sweeper(runtime)
    clock = RoundClock(runtime, interval_seconds=settings.round_clock_seconds or 1.0)
    sweeper.start()
    clock.start()
    receiver = asyncio.create_task(
        run_receiver_task(runtime.queue.broker, max_async_tasks=concurrency, ack_time=AcknowledgeType.WHEN_EXECUTED),
        name="stagevote-receiver",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("worker_started", broker=str(settings.broker_url), concurrency=concurrency)
    try:
        await stopping.wait()
    finally:
        log.info("worker_stopping")
        await sweeper.stop()
        await clock.stop()
        receiver.cancel()
        # taskiq's receiver may wait forever, shielded, for one more message from an idle stream; give
        # the tasks under way their grace period, then leave it (a task cut short is swept up later)
        await asyncio.wait({receiver}, timeout=GRACE_SECONDS)
        await close_domains(runtime)
        await runtime.close()
        if not receiver.done():
            log.info("worker_stopped", receiver="abandoned")
            os._exit(0)
        log.info("worker_stopped")
