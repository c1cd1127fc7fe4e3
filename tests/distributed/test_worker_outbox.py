"""The outbox with a real broker and a real `stagevote worker`: killed with SIGKILL mid-broadcast (some sends
under way) and restarted, while the provider fails some requests with 500, every eligible attendee still ends
with exactly one message, at the provider as in the table: the sends the kill cut short are found in Twilio's
message list, not sent again."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import redis.asyncio as redis
from aiohttp import web
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from stagevote.app import create_app
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.messaging.models import Message
from stagevote.migrations import upgrade
from tests.conftest import PG_URL, REDIS_URL, Actors, _create_database, _drop_database
from tests.factories import event_body
from tests.messaging.conftest import kept_by_filters, rfc2822
from tests.processes import environment
from tests.proof.figures import Figures

pytestmark = pytest.mark.postgresql

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "worker-test-token"
ELIGIBLE, OPTED_OUT = 1000, 40


class FlakyTwilio:
    """Twilio's Messages API on loopback (create, and list with `To` / `DateSent>` filters); every ninth create
    answers 500, as a provider does on a bad day."""

    def __init__(self) -> None:
        self.requests = 0
        self.failed = 0
        self.lookups = 0
        self.accepted: Counter[str] = Counter()
        self.created: list[dict[str, Any]] = []
        self.port = 0

    async def messages(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests += 1
        if self.requests % 9 == 0:
            self.failed += 1
            return web.json_response({"code": 20500, "message": "Internal Server Error"}, status=500)
        self.accepted[str(form["To"])] += 1
        now = rfc2822(dt.datetime.now(dt.UTC))
        resource = {
            "sid": f"SM{uuid.uuid4().hex}", "to": str(form["To"]), "from": str(form.get("From")),
            "body": str(form["Body"]), "direction": "outbound-api", "date_created": now, "date_sent": now,
        }  # fmt: skip
        self.created.append(resource)
        return web.json_response({**resource, "status": "queued"}, status=201)

    async def list_messages(self, request: web.Request) -> web.Response:
        self.lookups += 1
        query = dict(request.query)
        found = [m for m in reversed(self.created) if kept_by_filters(m, query)]
        return web.json_response({"messages": found[: int(query.get("PageSize", 50))], "next_page_uri": None})


@pytest.fixture
async def flaky_twilio() -> AsyncIterator[FlakyTwilio]:
    fake = FlakyTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", fake.list_messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    yield fake
    await runner.cleanup()


RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(params=[REDIS_URL, RABBITMQ_URL], ids=["redis-streams", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    url: str = request.param
    return url


@pytest.fixture
def cluster(flaky_twilio: FlakyTwilio, broker_url: str) -> Iterator[Settings]:
    name = f"stagevote_outbox_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_create_database(name))
    asyncio.run(upgrade(url))
    prefix = f"stagevote-outbox:{uuid.uuid4().hex}:"
    yield Settings(
        database_url=url,
        redis_url=REDIS_URL,
        broker_url=broker_url,
        redis_key_prefix=prefix,
        secret_key="outbox-secret-" + "w" * 40,
        public_url="http://127.0.0.1",
        sms_provider="twilio",
        twilio_api_url=f"http://127.0.0.1:{flaky_twilio.port}",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from="+12025550000",
        sms_per_second=2000,
        delivery_sending_timeout_seconds=3,
        round_clock_seconds=0,
        quiet_hours_start=dt.time(0, 0),  # a CUSTOM broadcast goes whatever the hour in Denver
        quiet_hours_end=dt.time(0, 0),
        marketing_per_day=0,
    )
    asyncio.run(_drop_database(name))
    if broker_url.startswith("amqp"):
        asyncio.run(_drop_rabbitmq_queue(broker_url, f"{prefix}tasks"))


async def _drop_rabbitmq_queue(url: str, name: str) -> None:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)
        await channel.exchange_delete(name)


def start_worker(settings: Settings, tmp: Path, n: int) -> subprocess.Popen[bytes]:
    env = environment(settings, leave_out=("secret_key_file",))
    env["STAGEVOTE_SECRET_KEY_FILE"] = str(tmp / "unused")
    log = (tmp / f"worker-{n}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "stagevote.cli", "worker", "--concurrency", "20"],
        env=env,
        cwd=tmp,
        stderr=log,
        stdout=log,
    )


async def message_counts(settings: Settings, sessionmaker: Any) -> dict[str, int]:
    async with unit_of_work(sessionmaker) as session:
        rows = await session.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: int(n) for status, n in rows}


@pytest.mark.proof
async def test_a_broadcast_survives_a_killed_worker_and_a_flaky_provider(
    cluster: Settings, flaky_twilio: FlakyTwilio, tmp_path: Path, figures: Figures
) -> None:
    app = create_app(cluster)
    runtime = app.state.runtime
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        admin = await Actors(runtime).make("admin")
        event = (await client.post("/events", json=event_body(), headers=admin.headers)).json()
        await client.post(f"/events/{event['id']}/publish", headers=admin.headers)
        async with unit_of_work(runtime.sessionmaker) as session:
            now = utcnow()
            session.add_all(
                Attendee(
                    event_id=event["id"], phone_number=f"+1303555{i:04d}", confirmed_at=now, opted_out=i >= ELIGIBLE
                )
                for i in range(ELIGIBLE + OPTED_OUT)
            )

        first = start_worker(cluster, tmp_path, 1)
        try:
            body = {"channel": "sms", "messageType": "CUSTOM", "body": "Doors open at 8. Reply STOP to opt out."}
            answer = await client.post(f"/events/{event['id']}/messages", json=body, headers=admin.headers)
            assert answer.status_code == 202, answer.text
            assert answer.json()["queued"] == ELIGIBLE
            assert answer.json()["skipped"]["optedOut"] == OPTED_OUT

            for _ in range(3000):  # kill the worker in the middle of the broadcast
                if sum(flaky_twilio.accepted.values()) >= ELIGIBLE // 3:
                    break
                await asyncio.sleep(0.01)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            sent_before_kill = sum(flaky_twilio.accepted.values())
            cut_short = (await message_counts(cluster, runtime.sessionmaker)).get("sending", 0)
            assert sent_before_kill > 0, "nothing was sent before the kill"
            assert sent_before_kill < ELIGIBLE, "the worker was killed too late to matter"
        finally:
            if first.poll() is None:
                first.kill()

        second = start_worker(cluster, tmp_path, 2)
        try:
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
            while dt.datetime.now(dt.UTC) < deadline:
                counts = await message_counts(cluster, runtime.sessionmaker)
                if counts.get("sent", 0) == ELIGIBLE:
                    break
                await asyncio.sleep(0.25)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)

        async with unit_of_work(runtime.sessionmaker) as session:
            per_attendee = await session.execute(
                select(Message.attendee_id, Message.status, func.count()).group_by(Message.attendee_id, Message.status)
            )
            rows = list(per_attendee)
            eligible_ids = set(await session.scalars(select(Attendee.id).where(Attendee.opted_out.is_(False))))
    assert {attendee for attendee, _, _ in rows} == eligible_ids  # nobody opted out got a row
    assert all(status == "sent" and n == 1 for _, status, n in rows), Counter((s, n) for _, s, n in rows)
    assert flaky_twilio.failed > 0  # the provider's 500s were retried
    assert set(flaky_twilio.accepted) == {f"+1303555{i:04d}" for i in range(ELIGIBLE)}
    # a send cut short by the kill was looked up at Twilio before anything went out again: nothing doubled
    doubled = [to for to, n in flaky_twilio.accepted.items() if n > 1]
    figures.add("faults injected")  # the SIGKILL (make proof prints these)
    figures.add("messages doubled", len(doubled))
    assert doubled == [], (len(doubled), cut_short)
    assert flaky_twilio.lookups >= cut_short
    figures.add("faults survived")

    client_redis = redis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client_redis.scan_iter(match=f"{cluster.redis_key_prefix}*")]
    if keys:
        await client_redis.delete(*keys)
    await client_redis.aclose()
