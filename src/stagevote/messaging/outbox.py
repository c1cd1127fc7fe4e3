"""The outbox: deliver each `messages` row once, find the ones a crash or a lost task left behind.

A row is the record, a task is the delivery. `deliver` claims its row with a conditional update
(`queued` → `sending`, counting the attempt), so two runs of the same task send once; the
provider's answer then moves it to `sent` (or `failed`, or back to `queued` with `next_attempt_at`
when trying again may help: exponential back-off, 2 s · 2ⁿ up to 5 minutes, at most
`DELIVERY_MAX_ATTEMPTS` attempts). A carrier opt-out (Twilio 21610) marks the number opted out.

`sweep` runs on every worker (and in the API process on the in-memory broker), once a second: it
re-enqueues rows whose retry time has come, rows still `queued` long after they were written (their
task was lost), and rows stuck in `sending` past `DELIVERY_SENDING_TIMEOUT_SECONDS` (their worker
died mid-send: the provider may or may not have taken it, and we prefer sending twice in that rare
case to never).
Due rows are locked with SKIP LOCKED and leased for a while, so sweepers on several instances do
not enqueue the same row at once (and if they did, the claim would still send it once).
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees import service as attendees_service
from stagevote.core.db import after_commit, unit_of_work, utcnow
from stagevote.core.periodic import Periodic
from stagevote.core.runtime import Runtime
from stagevote.messaging.providers import DeliveryError, email_provider_for, sms_provider_for
from stagevote.messaging.repository import MessageRepository

log = structlog.get_logger(__name__)

DELIVER = "stagevote.deliver_message"
LOST_AFTER = dt.timedelta(seconds=30)
LEASE = dt.timedelta(seconds=30)
MAX_BACKOFF_SECONDS = 300
MESSAGES_CHANGED = "messages.changed"  # in-process signal: {eventId} (None: messages of any event)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2 * 2 ** max(0, attempts - 1)))


def enqueue_after_commit(session: AsyncSession, runtime: Runtime, message_ids: list[int]) -> None:
    """Once the rows are committed, hand their ids to the queue (a lost hand-over is swept up later)."""
    ids = list(message_ids)

    async def enqueue() -> None:
        for message_id in ids:
            await runtime.queue.enqueue(DELIVER, message_id)
        if ids:
            await runtime.signals.publish(MESSAGES_CHANGED, {"eventId": None})

    after_commit(session, enqueue)


async def deliver(runtime: Runtime, message_id: int) -> None:
    """The task: send one message if it is still queued; record the outcome.

    The provider's rate is waited for before the row is claimed, so a long backlog waits as
    `queued` (not as `sending`, which the sweeper would take for a dead worker's). A recipient who
    opted out after the message was queued is sent nothing: the row ends `failed`, saying so.
    """
    async with unit_of_work(runtime.sessionmaker) as session:
        waiting = await MessageRepository(session).get(message_id)
        if waiting is None or waiting.status != "queued":
            return
        channel = waiting.channel
    settings = runtime.settings
    per_second = settings.sms_per_second if channel == "sms" else settings.email_per_second
    await runtime.limiter.acquire(per_second, f"provider-{channel}")
    async with unit_of_work(runtime.sessionmaker) as session:
        message = await MessageRepository(session).claim_for_delivery(message_id, now=utcnow())
        if message is None:
            return  # sent, being sent, or gone: another run has it
        snapshot = (message.recipient, message.subject, message.body, message.attempts)
        reachable = message.attendee_id is None or await attendees_service.may_be_messaged(
            session=session, attendee_id=message.attendee_id
        )
    recipient, subject, body, attempts = snapshot
    provider_id: str | None = None
    failure: DeliveryError | None = None
    try:
        if not reachable:
            raise DeliveryError("the recipient opted out (or was erased) after the message was queued")
        if recipient is None:
            raise DeliveryError("the message has no recipient")
        if channel == "sms":
            provider_id = await sms_provider_for(settings).send(to=recipient, body=body)
        else:
            provider_id = await email_provider_for(settings).send(to=recipient, subject=subject or "", body=body)
    except DeliveryError as exc:
        failure = exc
    except Exception as exc:  # a bug or an unexpected library error: treat as transient, keep the row
        log.exception("delivery_crashed", message_id=message_id)
        failure = DeliveryError(f"unexpected error: {exc!r}", retryable=True)
    await _record(runtime, message_id, attempts, provider_id, failure, channel, recipient)


async def _record(
    runtime: Runtime,
    message_id: int,
    attempts: int,
    provider_id: str | None,
    failure: DeliveryError | None,
    channel: str,
    recipient: str | None,
) -> None:
    now = utcnow()
    async with unit_of_work(runtime.sessionmaker) as session:
        messages = MessageRepository(session)
        if failure is None:
            await messages.finish_sending(
                message_id, status="sent", provider_message_id=provider_id, error=None, at=now
            )
            status = "sent"
        elif failure.retryable and attempts < runtime.settings.delivery_max_attempts:
            await messages.retry_later(message_id, error=str(failure), at=now + backoff(attempts))
            status = "retrying"
        else:
            await messages.finish_sending(
                message_id, status="failed", provider_message_id=None, error=str(failure), at=None
            )
            status = "failed"
            if failure.opted_out and channel == "sms" and recipient:
                await attendees_service.opt_out(session=session, runtime=runtime, phone_number=recipient)
    if status != "retrying":
        runtime.metrics.messages.labels(channel, status).inc()
        await runtime.signals.publish(MESSAGES_CHANGED, {"eventId": None})
    log.info(
        "message_delivery",
        message_id=message_id,
        status=status,
        attempt=attempts,
        error=str(failure) if failure else None,
    )


async def sweep(runtime: Runtime, *, limit: int = 500) -> int:
    """Re-enqueue what is due, lost or stuck; how many rows were handed to the queue."""
    now = utcnow()
    async with unit_of_work(runtime.sessionmaker) as session:
        ids = await MessageRepository(session).lease_due(
            now=now,
            lost_before=now - LOST_AFTER,
            stuck_before=now - dt.timedelta(seconds=runtime.settings.delivery_sending_timeout_seconds),
            lease_until=now + LEASE,
            limit=limit,
        )
        enqueue_after_commit(session, runtime, ids)
    return len(ids)


class Sweeper(Periodic):
    """Runs `sweep` once a second until stopped."""

    def __init__(self, runtime: Runtime, *, interval_seconds: float = 1.0) -> None:
        super().__init__("stagevote-outbox-sweeper", lambda: sweep(runtime), interval_seconds=interval_seconds)


def install(runtime: Runtime) -> None:
    """Register the delivery task on the queue."""

    async def deliver_message(message_id: int) -> None:
        await deliver(runtime, message_id)

    runtime.queue.register(DELIVER, deliver_message)
