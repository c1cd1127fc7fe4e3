"""The outbox under a big broadcast: rate-sized batches, bounded deliveries, no re-enqueue storm, codes first, and
a graceful stop. Behaviour only (what reaches the queue, the provider and the pool), never wall-clock time.
The heavy version (20,000 fans, votes' latency alongside) is `make bench-outbox`."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import AsyncClient
from sqlalchemy import event, func, select, update

from stagevote.app import create_app
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import create_engine, create_sessionmaker, unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox
from stagevote.messaging.models import Message
from tests.conftest import Actor, _empty_everything
from tests.factories import build_stage
from tests.http import ok
from tests.messaging.conftest import FakeTwilio, add_message, settle

CONCURRENCY = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"sms_per_second": 100_000, "round_clock_seconds": 0, "delivery_concurrency": CONCURRENCY}
    )


class Handed:
    """What the dispatcher hands to the queue: the ids of each delivery batch, and every task enqueued."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.tasks: Counter[str] = Counter()

    def ids(self) -> Counter[int]:
        return Counter(i for batch in self.batches for i in batch)


@pytest.fixture
def handed(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Handed:
    record = Handed()
    enqueue = runtime.queue.enqueue

    async def recorded(name: str, *args: Any) -> None:
        record.tasks[name] += 1
        if name == outbox.DELIVER:
            record.batches.append(list(args[0]))
        await enqueue(name, *args)

    monkeypatch.setattr(runtime.queue, "enqueue", recorded)
    return record


class Connections:
    """The most database connections the app held at once (pool check-outs minus check-ins)."""

    def __init__(self) -> None:
        self.now = self.most = 0

    def reset(self) -> None:
        self.most = self.now


@pytest.fixture
def connections(runtime: Runtime) -> Iterator[Connections]:
    seen = Connections()
    pool = runtime.engine.sync_engine.pool

    def checkout(*_: Any) -> None:
        seen.now += 1
        seen.most = max(seen.most, seen.now)

    def checkin(*_: Any) -> None:
        seen.now -= 1

    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    yield seen
    event.remove(pool, "checkout", checkout)
    event.remove(pool, "checkin", checkin)


@pytest.fixture
def no_background_sweeper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the test sweeps (commits still wake the dispatcher): set up before the app starts."""
    monkeypatch.setattr(outbox.Sweeper, "start", lambda self: None)


async def add_fans(runtime: Runtime, event_id: int, count: int) -> list[str]:
    phones = [f"+1303555{n:04d}" for n in range(count)]
    async with unit_of_work(runtime.sessionmaker) as session:
        session.add_all(Attendee(event_id=event_id, phone_number=p, confirmed_at=utcnow()) for p in phones)
    return phones


async def test_a_broadcast_goes_out_in_batches_with_bounded_deliveries(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio, handed: Handed, connections: Connections
) -> None:
    fans = 400
    stage = await build_stage(client, runtime, admin)
    phones = await add_fans(runtime, stage.event_id, fans)
    twilio.answer(201, delay=0.01, times=fans)  # each send takes a moment, so deliveries overlap
    body = {"channel": "sms", "messageType": "CUSTOM", "body": "Doors at 8", "audience": "confirmed"}
    answer = ok(await client.post(f"/events/{stage.event_id}/messages", json=body, headers=admin.headers), 202)
    assert answer["queued"] == fans
    connections.reset()  # from here on: delivery only
    await settle(runtime)

    # every fan got it once, and no more than DELIVERY_CONCURRENCY sends (each a transaction) ran at once
    assert Counter(form["To"] for form in twilio.received) == Counter(phones)
    assert twilio.most_in_flight <= CONCURRENCY
    # the pool held the deliveries, the dispatcher's lease and little else: not one transaction per fan
    assert connections.most <= CONCURRENCY + 2, connections.most
    # the queue carried batches, each row in exactly one of them, not a task per message
    assert set(handed.ids().values()) == {1} and len(handed.ids()) == fans
    assert all(len(batch) <= outbox.MAX_BATCH for batch in handed.batches)
    # a task per message would be 800 (a drain and a delivery each); the drains are wake-ups that coalesce,
    # fewer on a quiet machine (about 20) than on a loaded one (about 50)
    assert sum(handed.tasks.values()) < fans // 4, handed.tasks
    async with unit_of_work(runtime.sessionmaker) as session:
        statuses = await session.execute(
            select(Message.status, func.count()).where(Message.message_type == "CUSTOM").group_by(Message.status)
        )
        assert dict(statuses.all()) == {"sent": fans}


async def test_rows_waiting_behind_the_rate_limit_are_never_taken_for_lost(
    client: AsyncClient, runtime: Runtime, admin: Actor, twilio: FakeTwilio, handed: Handed
) -> None:
    runtime.settings.sms_per_second = 4  # batches of 4; at most 20 rows handed out and unclaimed at once
    fans = 16
    stage = await build_stage(client, runtime, admin)
    phones = await add_fans(runtime, stage.event_id, fans)
    body = {"channel": "sms", "messageType": "CUSTOM", "body": "Round 2 soon", "audience": "confirmed"}
    ok(await client.post(f"/events/{stage.event_id}/messages", json=body, headers=admin.headers), 202)

    sending: list[int] = []
    unclaimed: list[int] = []
    for _ in range(1000):
        if len(twilio.received) >= fans:
            break
        async with unit_of_work(runtime.sessionmaker) as session:
            # rows still waiting for their turn have waited for ages (a backlog of 10,000 at 10 a second):
            # nothing that only waits may look lost
            await session.execute(
                update(Message)
                .where(Message.status == "queued", Message.leased_until.is_(None))
                .values(created_at=utcnow() - dt.timedelta(hours=1), updated_at=utcnow() - dt.timedelta(hours=1))
            )
        async with unit_of_work(runtime.sessionmaker) as session:
            rows = (await session.execute(select(Message.status, Message.leased_until))).all()
        sending.append(sum(1 for status, _ in rows if status == "sending"))
        unclaimed.append(sum(1 for status, lease in rows if status == "queued" and lease is not None))
        await asyncio.gather(outbox.sweep(runtime), outbox.sweep(runtime))  # other dispatchers look too
        await asyncio.sleep(0.05)
    await settle(runtime)

    assert Counter(form["To"] for form in twilio.received) == Counter(phones)
    assert set(handed.ids().values()) == {1} and len(handed.ids()) == fans  # none handed out twice
    assert max(sending) <= CONCURRENCY and max(unclaimed) <= 20, (sending, unclaimed)


@pytest.mark.usefixtures("no_background_sweeper")
async def test_codes_and_replies_go_out_before_a_broadcast_waiting_its_turn(
    runtime: Runtime, twilio: FakeTwilio, handed: Handed
) -> None:
    runtime.settings.sms_per_second = 5
    nudges = [await add_message(runtime, to=f"+1303555{n:04d}", message_type="NUDGE") for n in range(30)]
    code = await add_message(runtime, to="+12025550188", message_type="CONFIRM", body="Your code is 123456")
    assert await outbox.sweep(runtime) == 5
    first = handed.batches[0]  # (the drain that follows the batch may have handed out the next one)
    assert first[0] == code and set(first[1:]) <= set(nudges)
    runtime.settings.sms_per_second = 100_000  # the rest at once
    await settle(runtime)
    assert len(twilio.received) == 31


async def test_stopping_lets_deliveries_under_way_finish_and_starts_no_new_one(
    settings: Settings, twilio: FakeTwilio
) -> None:
    app = create_app(settings.model_copy(update={"delivery_concurrency": 2}))  # the only app delivering here
    runtime = app.state.runtime
    twilio.answer(201, delay=0.5, times=12)
    try:
        async with LifespanManager(app):
            ids = [await add_message(runtime, to=f"+1303555{n:04d}") for n in range(12)]
            await runtime.queue.enqueue(outbox.DRAIN)
            for _ in range(500):
                if twilio.in_flight:
                    break
                await asyncio.sleep(0.01)
            assert twilio.in_flight  # sends are under way when the process is told to stop
        # the sends under way were recorded; nothing was left half-done, nothing new began
        engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
        async with unit_of_work(create_sessionmaker(engine)) as session:
            rows = {m.id: m for m in (await session.scalars(select(Message))).all()}
        await engine.dispose()
        got = {form["To"] for form in twilio.received}
        assert got and len(got) <= 4, got
        for message_id in ids:
            row = rows[message_id]
            assert row.status == ("sent" if row.recipient in got else "queued"), (row.recipient, row.status)
    finally:
        await _empty_everything(settings)


@pytest.mark.usefixtures("no_background_sweeper")
async def test_a_handed_out_batch_never_waits_for_the_rate_limiter(
    runtime: Runtime, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the dispatcher took the permits when it handed the rows out; a task waiting for them again would sit
    # read-but-unacknowledged on Redis streams until the idle timeout hands it to another worker
    lease = utcnow() + outbox.LEASE
    ids = [await add_message(runtime, to=f"+1303555{n:04d}", leased_until=lease) for n in range(3)]

    async def exhausted(per_second: float, *identifiers: str) -> None:
        await asyncio.Event().wait()  # no permit, ever

    monkeypatch.setattr(runtime.limiter, "acquire", exhausted)
    await runtime.queue.enqueue(outbox.DELIVER, ids, "sms")
    await settle(runtime, seconds=10)
    assert len(twilio.received) == 3
