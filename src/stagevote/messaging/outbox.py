"""The outbox: hand due `messages` rows out at the providers' rate, deliver each once, recover what a crash left.

A row is the record, a task is the delivery. What a row's columns say:
- `queued` without a lease: waiting for its turn (with `next_attempt_at` ahead: for its back-off). No task
  is held for it, so however long a broadcast waits behind `SMS_PER_SECOND`, nothing takes it for lost.
- `queued` with a lease (`leased_until`): a dispatcher took its rate permit and handed it to a delivery
  task, which claims it within seconds. A lease that runs out unclaimed means the task was lost: the row
  is due again (and counted in the log as such: "waiting for its turn" never has a lease to run out).
- `sending`: claimed, the provider is being called. Past `DELIVERY_SENDING_TIMEOUT_SECONDS` (its worker
  died), or past its `next_attempt_at` (the provider's answer was lost: a read timeout), the row is due
  for recovery: the provider is asked whether it has the message (`find_sent`, matched on recipient,
  body and time), and it is sent again only if the provider does not. Twilio can be asked; the console
  and e-mail providers cannot, and such a message may, rarely, go out twice.
- `sent`, `failed` (then `delivered` / `undelivered`, from the provider's status reports).

The dispatcher runs in every process that delivers (the API process on the in-memory broker, each
`stagevote worker` otherwise). A pass leases due rows in rate-sized batches (one second of the channel's
rate, at most `MAX_BATCH`), codes and replies before broadcasts, oldest first; takes one permit per row
from the rate limiter shared by every process; and enqueues the batch as one task. It leases nothing
while `AHEAD_SECONDS` of the rate are leased and unclaimed across the cluster (and, on the in-memory
broker, while this process has `2 × max(batch, DELIVERY_CONCURRENCY)` rows in hand), so a slow provider
does not pile up leases that would run out. A delivery task never waits for the rate limiter (the
dispatcher did): on Redis streams it is acknowledged long before the idle timeout would hand it to
another worker. A pass runs after every commit that queued messages (a `DRAIN` task wakes the
dispatcher), after every batch, and once a second.

A delivery claims its row with a conditional update (`queued` → `sending`, counting the attempt), so a
task run twice sends once, and a stray copy of an old task cannot send a row no dispatcher handed out.
At most `DELIVERY_CONCURRENCY` deliveries (a claim, a provider call and a record each) run at once in a
process, whatever the broker: a round-open NUDGE to 20,000 fans leaves the database pool to the votes.
The recipient is checked in the claim's transaction: an attendee who opted out or was erased, or a number
that texted STOP (even one that joined in the same breath, whose attendee row missed the opt-out), is sent
nothing and the row ends `failed`, saying so. The provider's answer moves the row to `sent`, to `failed`
(a carrier opt-out, Twilio's 21610, also opts the number out), back to `queued` with a back-off (2 s · 2ⁿ
up to 5 minutes, `DELIVERY_MAX_ATTEMPTS` attempts), or, when the answer was lost, leaves it `sending`
until the provider can be asked. The text handed to the provider is the sealed one (`sealing`): the
stored body has its ballot tokens and codes redacted. A marketing SMS claimed during its recipient's quiet
hours (written before them, its turn came late) goes back to `queued`, due when they end (`messaging.quiet`).

Stopping a process (`Sweeper.stop`) stops its dispatcher, lets the deliveries under way finish (up to
`DRAIN_SECONDS`) and starts no new one: rows handed out but not begun keep their lease, which runs out,
and another process (or this one, restarted) takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees import service as attendees_service
from stagevote.core.db import after_commit, unit_of_work, utcnow
from stagevote.core.periodic import Background
from stagevote.core.queue import TaskQueue
from stagevote.core.runtime import Runtime
from stagevote.messaging import quiet, sealing
from stagevote.messaging.models import Message
from stagevote.messaging.providers import DeliveryError, email_provider_for, sms_provider_for
from stagevote.messaging.repository import MessageRepository

log = structlog.get_logger(__name__)

DELIVER = "stagevote.deliver_messages"
DRAIN = "stagevote.drain_outbox"
CHANNELS = ("sms", "email")
LEASE = dt.timedelta(seconds=30)  # time a handed-out row gives its task to claim it
MAX_BATCH = 50
AHEAD_SECONDS = 5.0  # most of a channel's rate handed out and not yet claimed, across the cluster
DRAIN_SECONDS = 15.0  # how long a stopping process lets its deliveries under way finish
MAX_BACKOFF_SECONDS = 300
MESSAGES_CHANGED = "messages.changed"  # in-process signal: {eventId} (None: messages of any event)
_WAKE_KEY = "stagevote.outbox.wake"


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2 * 2 ** max(0, attempts - 1)))


def rate_of(runtime: Runtime, channel: str) -> float:
    settings = runtime.settings
    return settings.sms_per_second if channel == "sms" else settings.email_per_second


def batch_size(per_second: float) -> int:
    """Rows per handed-out batch: one second of the rate, at most `MAX_BATCH`."""
    return max(1, min(MAX_BATCH, round(per_second)))


def deliver_after_commit(session: AsyncSession, runtime: Runtime) -> None:
    """Once this unit of work commits, wake the dispatcher for the rows it queued (a lost wake-up costs a second)."""
    if session.info.get(_WAKE_KEY):
        return
    session.info[_WAKE_KEY] = True

    async def wake() -> None:
        await runtime.queue.enqueue(DRAIN)
        await runtime.signals.publish(MESSAGES_CHANGED, {"eventId": None})  # queued counts moved (analytics)

    after_commit(session, wake)


# --- this process's side of the outbox ------------------------------------------------------------------


class Outbox:
    """The dispatcher's state in this process, and the deliveries under way here (bounded by a semaphore)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.slots = asyncio.Semaphore(runtime.settings.delivery_concurrency)
        self.in_flight = 0  # deliveries holding a slot
        self.in_hand = dict.fromkeys(CHANNELS, 0)  # rows this process handed to its own queue, not yet done
        self.closing = False
        self.wake = asyncio.Event()
        self._quiet = asyncio.Event()  # set while no delivery holds a slot
        self._quiet.set()
        self._draining = False
        self._again = False
        self._leasing = asyncio.Lock()  # one lease transaction at a time: the dispatcher holds one connection

    async def drain(self, stopping: asyncio.Event | None = None) -> int:
        """Dispatch until nothing more is due or may be handed out now; how many rows were handed out.

        One drain at a time per process: asked while one runs, it makes that one go round once more.
        """
        if self._draining:
            self._again = True
            return 0
        self._draining = True
        total = 0
        try:
            while not self.closing and not (stopping is not None and stopping.is_set()):
                self._again = False
                handed = await self.dispatch()
                total += handed
                if handed == 0 and not self._again:
                    break
        finally:
            self._draining = False
        return total

    async def dispatch(self) -> int:
        """One pass: a batch of each channel, leased, its permits taken, handed to the queue."""
        return sum(await asyncio.gather(*(self._dispatch(channel) for channel in CHANNELS)))

    async def _dispatch(self, channel: str) -> int:
        runtime = self.runtime
        per_second = rate_of(runtime, channel)
        batch = batch_size(per_second)
        room = batch
        if runtime.queue.in_process:  # this process delivers what it hands out: keep its hands small
            room = min(room, 2 * max(batch, runtime.settings.delivery_concurrency) - self.in_hand[channel])
        if room <= 0:
            return 0
        stuck = dt.timedelta(seconds=runtime.settings.delivery_sending_timeout_seconds)
        async with self._leasing, unit_of_work(runtime.sessionmaker) as session:
            now = utcnow()
            messages = MessageRepository(session)
            ahead = max(batch, round(per_second * AHEAD_SECONDS))
            room = min(room, ahead - await messages.leased_count(channel=channel, now=now))
            if room <= 0:
                return 0
            ids, lost = await messages.lease_due(
                channel=channel, now=now, stuck_before=now - stuck, lease_until=now + LEASE, limit=room
            )
        if not ids:
            return 0
        if lost:
            log.warning("outbox_lease_ran_out", channel=channel, messages=lost)  # tasks lost, not rows waiting
        for _ in ids:
            await runtime.limiter.acquire(per_second, f"provider-{channel}")
        if runtime.queue.in_process:
            self.in_hand[channel] += len(ids)
        await runtime.queue.enqueue(DELIVER, ids, channel)
        return len(ids)

    async def deliver_batch(self, message_ids: Sequence[int], channel: str | None = None) -> None:
        """The task: deliver each message of a batch, at most `DELIVERY_CONCURRENCY` at once in this process."""
        ids = [int(i) for i in message_ids]
        try:
            await asyncio.gather(*(self._deliver_one(message_id) for message_id in ids))
        finally:
            await self._batch_done(channel, len(ids))

    async def _deliver_one(self, message_id: int) -> None:
        if self.closing:
            return  # not begun: its lease runs out and another process takes it
        async with self.slots:
            if self.closing:
                return
            self.in_flight += 1
            self._quiet.clear()
            try:
                await deliver(self.runtime, message_id)
            except Exception:  # the row stays as it was: a lease runs out, or a `sending` row is recovered
                log.exception("delivery_crashed", message_id=message_id)
            finally:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self._quiet.set()

    async def _batch_done(self, channel: str | None, count: int) -> None:
        if not self.runtime.queue.in_process:
            self.wake.set()  # this worker's dispatcher may hand out more now
            return
        if channel in self.in_hand:
            self.in_hand[channel] = max(0, self.in_hand[channel] - count)
        if not self.closing:
            await self.runtime.queue.enqueue(DRAIN)  # more may be due, and there is room again

    async def finish(self, grace_seconds: float = DRAIN_SECONDS) -> None:
        """Stop: start no more deliveries, and give those under way `grace_seconds` to record their outcome."""
        self.closing = True
        self.wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), timeout=grace_seconds)
        if self.in_flight:
            log.warning("outbox_stopped_with_deliveries_under_way", deliveries=self.in_flight)


_outboxes: weakref.WeakKeyDictionary[TaskQueue, Outbox] = weakref.WeakKeyDictionary()


def outbox_of(runtime: Runtime) -> Outbox:
    """This process's outbox for `runtime` (one per task queue)."""
    found = _outboxes.get(runtime.queue)
    if found is None:
        found = _outboxes[runtime.queue] = Outbox(runtime)
    return found


# --- one delivery -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What a delivery needs of its row, read in the claim's transaction."""

    message_id: int
    channel: str
    recipient: str | None
    subject: str | None
    text: str  # as sent
    unreadable: bool  # the sealed text cannot be opened (then `text` is empty)
    restore: tuple[str, str | None] | None  # (body, sealed) for a row stored before texts were sealed
    attempts: int
    began: dt.datetime  # when the send under way began (recovery: the one whose outcome is unknown)
    blocked: bool


def _job(runtime: Runtime, message: Message, *, blocked: bool) -> _Job:
    unreadable = False
    try:
        text = sealing.unseal(runtime.secret_key.get_secret_value(), message.body, message.sealed_body)
    except sealing.Unsealable:
        text, unreadable = "", True
    restore = None
    if message.sealed_body is None:  # stored before texts were sealed: it is redacted when it is finished
        stored = sealing.seal(runtime.secret_key.get_secret_value(), text, message.message_type)
        restore = (stored.body, stored.sealed) if stored.sealed is not None else None
    return _Job(
        message.id, message.channel, message.recipient, message.subject, text, unreadable, restore,
        message.attempts, message.updated_at, blocked,
    )  # fmt: skip


async def deliver(runtime: Runtime, message_id: int) -> None:
    """Deliver one handed-out message, or settle one whose send may have reached the provider; record the outcome."""
    now = utcnow()
    timeout = dt.timedelta(seconds=runtime.settings.delivery_sending_timeout_seconds)
    async with unit_of_work(runtime.sessionmaker) as session:
        messages = MessageRepository(session)
        message = await messages.claim_for_delivery(message_id, now=now)
        recovering = False
        if message is None:
            message = await messages.claim_for_recovery(message_id, check_by=now + timeout)
            recovering = message is not None
        if message is None:
            return  # sent, being sent, or never handed out: not this task's
        if not recovering and (wait := _quiet_until(runtime, message, now)) is not None:
            await messages.defer(message_id, until=wait)
            return
        job = _job(runtime, message, blocked=await messages.unreachable(message_id))
    if job.unreadable:
        await _record(runtime, job, None, DeliveryError("the sealed text cannot be opened: SECRET_KEY changed?"))
        return
    if recovering:
        resend = await _recover(runtime, job)
        if resend is None:
            return
        job = resend
    provider_id: str | None = None
    failure: DeliveryError | None = None
    try:
        if job.blocked:
            raise DeliveryError("the recipient opted out (or was erased) after the message was queued")
        if job.recipient is None:
            raise DeliveryError("the message has no recipient")
        if job.channel == "sms":
            provider_id = await sms_provider_for(runtime.settings).send(to=job.recipient, body=job.text)
        else:
            provider_id = await email_provider_for(runtime.settings).send(
                to=job.recipient, subject=job.subject or "", body=job.text
            )
    except DeliveryError as exc:
        failure = exc
    except Exception as exc:  # a bug or an unexpected library error: it may have gone out, ask before resending
        log.exception("delivery_crashed", message_id=message_id)
        failure = DeliveryError(f"unexpected error: {exc!r}", unknown=True)
    await _record(runtime, job, provider_id, failure)


def _quiet_until(runtime: Runtime, message: Message, now: dt.datetime) -> dt.datetime | None:
    """When a marketing SMS whose turn came during its recipient's quiet hours may go (a long broadcast's
    tail, rate-limited past the evening); None: now."""
    if not message.marketing or message.channel != "sms" or not message.recipient:
        return None
    return quiet.release_at(runtime.settings, message.recipient, now)


async def _recover(runtime: Runtime, job: _Job) -> _Job | None:
    """A `sending` row whose outcome is unknown: mark it sent if the provider has it, else start a new attempt
    (the job to send now; None when the row is settled, or must wait for the provider to be asked again)."""
    now = utcnow()
    provider = sms_provider_for(runtime.settings) if job.channel == "sms" else email_provider_for(runtime.settings)
    try:
        found = await provider.find_sent(to=job.recipient or "", body=job.text, since=job.began)
    except DeliveryError as exc:  # could not ask: ask again later, never send blindly
        async with unit_of_work(runtime.sessionmaker) as session:
            messages = MessageRepository(session)
            if job.attempts + 1 >= runtime.settings.delivery_max_attempts:
                reason = f"could not tell whether the provider took it: {exc}"
                await messages.finish_sending(job.message_id, status="failed", provider_message_id=None,
                                              error=reason, at=None)  # fmt: skip
                status = "failed"
            else:  # each look-up that fails counts as an attempt, so that asking ends some day
                await messages.check_later(
                    job.message_id, error=str(exc), at=now + backoff(job.attempts + 1), count_attempt=True
                )
                status = "unknown"
        _count_and_log(runtime, job, status, job.attempts, str(exc))
        return None
    async with unit_of_work(runtime.sessionmaker) as session:
        messages = MessageRepository(session)
        taken = await messages.provider_ids_taken(found)
        sid = next((candidate for candidate in found if candidate not in taken), None)
        if sid is not None:
            await messages.finish_sending(job.message_id, status="sent", provider_message_id=sid, error=None,
                                          at=now, stored=job.restore)  # fmt: skip
        elif job.attempts >= runtime.settings.delivery_max_attempts:
            await messages.finish_sending(job.message_id, status="failed", provider_message_id=None,
                                          error="not sent after the last attempt", at=None)  # fmt: skip
        elif not await messages.send_again(job.message_id, now=now):
            return None  # a status report settled it meanwhile
    if sid is not None:
        _count_and_log(runtime, job, "sent", job.attempts, None, found_at_provider=True)
        return None
    if job.attempts >= runtime.settings.delivery_max_attempts:
        _count_and_log(runtime, job, "failed", job.attempts, "not sent after the last attempt")
        return None
    return dataclasses.replace(job, attempts=job.attempts + 1, began=now)


async def _record(runtime: Runtime, job: _Job, provider_id: str | None, failure: DeliveryError | None) -> None:
    now = utcnow()
    settings = runtime.settings
    async with unit_of_work(runtime.sessionmaker) as session:
        messages = MessageRepository(session)
        if failure is None:
            await messages.finish_sending(job.message_id, status="sent", provider_message_id=provider_id, error=None,
                                          at=now, stored=job.restore)  # fmt: skip
            status = "sent"
        elif failure.unknown:  # it may be at the provider: ask it once it has had time to show it
            check_at = now + dt.timedelta(seconds=settings.delivery_sending_timeout_seconds)
            await messages.check_later(job.message_id, error=str(failure), at=check_at)
            status = "unknown"
        elif failure.retryable and job.attempts < settings.delivery_max_attempts:
            await messages.retry_later(job.message_id, error=str(failure), at=now + backoff(job.attempts))
            status = "retrying"
        else:
            await messages.finish_sending(job.message_id, status="failed", provider_message_id=None,
                                          error=str(failure), at=None, stored=job.restore)  # fmt: skip
            status = "failed"
            if failure.opted_out and job.channel == "sms" and job.recipient:
                await attendees_service.opt_out(session=session, runtime=runtime, phone_number=job.recipient)
    _count_and_log(runtime, job, status, job.attempts, str(failure) if failure else None)
    if status != "retrying":
        await runtime.signals.publish(MESSAGES_CHANGED, {"eventId": None})


def _count_and_log(
    runtime: Runtime, job: _Job, status: str, attempt: int, error: str | None, *, found_at_provider: bool = False
) -> None:
    if status in ("sent", "failed"):
        runtime.metrics.messages.labels(job.channel, status).inc()
    log.info(
        "message_delivery",
        message_id=job.message_id,
        status=status,
        attempt=attempt,
        error=error,
        found_at_provider=found_at_provider or None,
    )


# --- the dispatcher's clock, and the tasks -------------------------------------------------------------------


async def sweep(runtime: Runtime) -> int:
    """One dispatcher pass: hand out what is due now (waiting, retries due, lost leases, `sending` rows to
    recover); how many rows were handed to the queue."""
    return await outbox_of(runtime).dispatch()


class Sweeper(Background):
    """The dispatcher of this process: a drain whenever woken and once a second; `stop` lets deliveries finish.

    On the in-memory broker the drain runs as a task of the in-process queue (what `wait_all` waits for);
    on a worker it runs here, woken by the `DRAIN` tasks that commits send.
    """

    def __init__(self, runtime: Runtime, *, interval_seconds: float = 1.0) -> None:
        self.runtime = runtime
        self.interval_seconds = interval_seconds
        super().__init__("stagevote-outbox-dispatcher", self._loop)

    async def _loop(self, stopping: asyncio.Event) -> None:
        box = outbox_of(self.runtime)
        while not stopping.is_set():
            box.wake.clear()
            try:
                if self.runtime.queue.in_process:
                    await self.runtime.queue.enqueue(DRAIN)
                else:
                    await box.drain(stopping)
            except Exception:
                log.exception("outbox_dispatch_failed")
            if not box.wake.is_set():
                await _first(stopping, box.wake, self.interval_seconds)

    def start(self) -> None:
        outbox_of(self.runtime).closing = False  # (started again after a stop)
        super().start()

    async def stop(self) -> None:
        box = outbox_of(self.runtime)
        box.closing = True
        box.wake.set()
        await super().stop()
        await box.finish()


async def _first(stopping: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Wait for `seconds`, or less if woken or asked to stop."""
    waiters = {asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def install(runtime: Runtime) -> None:
    """Register the delivery and drain tasks on the queue."""
    box = outbox_of(runtime)

    async def deliver_messages(message_ids: list[int], channel: str | None = None) -> None:
        await box.deliver_batch(message_ids, channel)

    async def drain_outbox() -> None:
        if runtime.queue.in_process:
            await box.drain()  # this process delivers: the drain is this task
        else:
            box.wake.set()  # a worker's dispatcher drains; a task never waits for the rate limiter

    runtime.queue.register(DELIVER, deliver_messages)
    runtime.queue.register(DRAIN, drain_outbox)
