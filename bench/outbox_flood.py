"""A 20,000-fan broadcast while fans vote: does the outbox leave the vote path alone? Real processes on loopback.

For each setup (`--setups`, default `memory,redis`):
- `memory`: PostgreSQL + Redis with the embedded default broker, `memory://` (the API process delivers);
- `redis`: PostgreSQL + Redis, Redis streams, one `stagevote worker` delivering;
- `sqlite`: everything embedded, SQLite too (one writer at a time: a 20,000-row broadcast is one
  transaction, and votes wait for it; shown for what it is, not a target);
it starts `stagevote serve`, a live event with `--fans` confirmed attendees, a loopback Twilio that takes
`--provider-ms` per message (and lists messages, for the outbox's recovery), and votes from `--concurrency`
keep-alive connections. Two seconds into the votes, one `POST /events/{id}/messages` NUDGEs every fan
(each gets their own ballot link: the heavy case). It prints the vote latency before and during the
broadcast (p50/p95/p99: the target is a p99 under 100 ms), how long the broadcast request took, the most
sends the provider saw at once, the delivery rate, and any message the provider got twice.
Run: `make bench-outbox` (or `.venv/bin/python bench/outbox_flood.py --fans 20000 --setups memory,redis,sqlite`).
Loopback only, bounded by --seconds and --deliver-seconds; nothing is asserted. On a shared machine the figures
are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from aiohttp import web
from sqlalchemy.engine import make_url

from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.core.security import encode_jwt
from stagevote.migrations import upgrade

PG = os.environ.get("STAGEVOTE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("STAGEVOTE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "bench password 1"
ACCOUNT = "AC" + "c" * 32
TOKEN = "bench-twilio-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoopbackTwilio:
    """Twilio's Messages API: each create takes `delay` seconds; counts what it got and how many at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.got: Counter[str] = Counter()
        self.created: list[dict[str, Any]] = []
        self.in_flight = self.most_in_flight = 0
        self.first = self.last = 0.0

    async def create(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            form = await request.post()
            await asyncio.sleep(self.delay)
            self.got[str(form["To"])] += 1
            self.first = self.first or time.perf_counter()
            self.last = time.perf_counter()
            now = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
            item = {"sid": f"SM{uuid.uuid4().hex}", "to": str(form["To"]), "body": str(form["Body"]),
                    "direction": "outbound-api", "date_created": now, "date_sent": now}  # fmt: skip
            self.created.append(item)
            return web.json_response({**item, "status": "queued"}, status=201)
        finally:
            self.in_flight -= 1

    async def list(self, request: web.Request) -> web.Response:
        to = request.query.get("To")
        return web.json_response({"messages": [m for m in reversed(self.created) if m["to"] == to][:50]})


async def admin_db(statement: str) -> None:
    url = make_url(PG)
    connection = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no requests"
    ordered = sorted(latencies)
    pct = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000  # noqa: E731
    return f"{len(ordered):>6} votes | p50 {pct(0.5):6.1f} ms  p95 {pct(0.95):6.1f} ms  p99 {pct(0.99):6.1f} ms  max {ordered[-1] * 1000:7.1f} ms"


async def run_setup(name: str, args: argparse.Namespace, twilio_port: int, fake: LoopbackTwilio) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"stagevote-bench-{name}-"))
    database = f"stagevote_bench_{uuid.uuid4().hex[:8]}"
    if name == "sqlite":
        database_url, redis_url, broker = f"sqlite:///{tmp / 'stagevote.db'}", None, "memory://"
    else:
        await admin_db(f'CREATE DATABASE "{database}"')
        database_url = make_url(PG).set(database=database).render_as_string(hide_password=False)
        redis_url, broker = REDIS, (REDIS if name == "redis" else "memory://")  # memory: the embedded default
    prefix = f"stagevote-bench:{uuid.uuid4().hex}:"
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_key_prefix=prefix,
                        secret_key="bench-" + "z" * 40, broker_url=broker)  # fmt: skip
    await upgrade(settings.database_url.get_secret_value())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {"STAGEVOTE_DATABASE_URL": database_url, "STAGEVOTE_REDIS_KEY_PREFIX": prefix, "STAGEVOTE_BROKER_URL": broker,
            "STAGEVOTE_SECRET_KEY": settings.resolved_secret_key().get_secret_value(), "STAGEVOTE_LOG_LEVEL": "WARNING",
            "STAGEVOTE_PUBLIC_URL": "https://v.example", "STAGEVOTE_SMS_PROVIDER": "twilio",
            "STAGEVOTE_TWILIO_API_URL": f"http://127.0.0.1:{twilio_port}", "STAGEVOTE_TWILIO_ACCOUNT_SID": ACCOUNT,
            "STAGEVOTE_TWILIO_AUTH_TOKEN": TOKEN, "STAGEVOTE_TWILIO_FROM": "+12025550000",
            "STAGEVOTE_SMS_PER_SECOND": str(args.sms_per_second), "STAGEVOTE_ROUND_CLOCK_SECONDS": "0"}  # fmt: skip
    if redis_url:
        env["STAGEVOTE_REDIS_URL"] = redis_url
    email = "bench-admin@example.com"
    subprocess.run([sys.executable, "-m", "stagevote.cli", "create-user", "--email", email, "--password", PASSWORD, "--role", "admin"], env=env, cwd=tmp, check=True, capture_output=True)  # noqa: S603
    server = subprocess.Popen([sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port)], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    worker = None
    if name == "redis":
        worker = subprocess.Popen([sys.executable, "-m", "stagevote.cli", "worker", "--concurrency", "20"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    runtime = Runtime.build(settings)
    fake.got.clear()
    fake.created.clear()
    fake.most_in_flight = 0
    fake.first = fake.last = 0.0
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for _ in range(200):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            token = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()["accessToken"]
            admin = {"Authorization": f"Bearer {token}"}
            start = dt.datetime.now(dt.UTC)
            event = (await client.post("/events", headers=admin, json={
                "title": "Flood night", "keyword": f"FLOOD{uuid.uuid4().hex[:6].upper()}", "startDate": start.isoformat(),
                "endDate": (start + dt.timedelta(hours=5)).isoformat(), "voteConfig": {"votesPerRound": 1}})).json()  # fmt: skip
            artists = []
            for band in ("Owls", "Foxes", "Bears", "Wolves"):
                invited = (await client.post(f"/events/{event['id']}/artists", json={"name": band}, headers=admin)).json()
                await client.post(f"/events/{event['id']}/artists/{invited['artistId']}/accept", headers=admin)
                artists.append(invited["artistId"])
            for action in ("publish", "start", "rounds/1/open"):
                await client.post(f"/events/{event['id']}/{action}", headers=admin)
            async with unit_of_work(runtime.sessionmaker) as session:
                fans = [Attendee(event_id=event["id"], phone_number=f"+1{2025550000 + i}", confirmed_at=utcnow()) for i in range(args.fans)]  # fmt: skip
                session.add_all(fans)
                await session.flush()
            ballots = [encode_jwt({"att": f.id, "evt": event["id"]}, secret=runtime.secret_key.get_secret_value(), purpose="ballot",
                                  lifetime=dt.timedelta(hours=6)) for f in fans]  # fmt: skip

            before: list[float] = []
            during: list[float] = []
            broadcast: dict[str, float] = {}
            queue = iter(enumerate(ballots))
            deadline = time.perf_counter() + args.seconds

            async def voter(session: aiohttp.ClientSession) -> None:
                for i, ballot in queue:
                    if time.perf_counter() > deadline:
                        return
                    body = {"round": 1, "artistId": artists[i % 4], "token": f"flood-{i}"}
                    began = time.perf_counter()
                    async with session.post(f"{base}/events/{event['id']}/vote", json=body, headers={"Authorization": f"Bearer {ballot}"}) as r:
                        await r.read()
                    (during if "start" in broadcast else before).append(time.perf_counter() - began)

            async def broadcaster() -> None:
                await asyncio.sleep(2)
                broadcast["start"] = time.perf_counter()
                answer = await client.post(f"/events/{event['id']}/messages", headers=admin, json={"channel": "sms", "messageType": "NUDGE"})
                broadcast["request"] = time.perf_counter() - broadcast["start"]
                broadcast["queued"] = answer.json().get("queued", 0)

            connector = aiohttp.TCPConnector(limit=args.concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:
                await asyncio.gather(broadcaster(), *(voter(session) for _ in range(args.concurrency)))
            finish = time.perf_counter() + args.deliver_seconds
            while sum(fake.got.values()) < broadcast.get("queued", 0) and time.perf_counter() < finish:
                await asyncio.sleep(0.5)
            delivered = sum(fake.got.values())
            doubled = sum(1 for n in fake.got.values() if n > 1)
            spread = (fake.last - fake.first) if delivered > 1 else 0.0
            print(f"== {name}: {args.fans} fans, SMS_PER_SECOND {args.sms_per_second}, provider {args.provider_ms} ms per message")
            print(f"  votes before the broadcast  {percentiles(before)}")
            print(f"  votes during it             {percentiles(during)}")
            print(f"  broadcast request {broadcast.get('request', 0):.2f} s for {int(broadcast.get('queued', 0))} messages")
            print(f"  delivered {delivered} of {int(broadcast.get('queued', 0))} in {spread:.1f} s ({delivered / spread if spread else 0:.0f}/s); most at the provider at once: {fake.most_in_flight}; doubled: {doubled}")
    finally:
        for process in (server, worker):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await runtime.close()
        if name != "sqlite":
            await admin_db(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fans", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20, help="how long votes are sent")
    parser.add_argument("--deliver-seconds", type=float, default=120, help="how long to wait for the deliveries after")
    parser.add_argument("--sms-per-second", type=float, default=500)
    parser.add_argument("--provider-ms", type=float, default=20)
    parser.add_argument("--setups", default="memory,redis")
    args = parser.parse_args()
    fake = LoopbackTwilio(args.provider_ms / 1000)
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.create)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", fake.list)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    twilio_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", twilio_port).start()
    try:
        for name in args.setups.split(","):
            await run_setup(name.strip(), args, twilio_port, fake)
    finally:
        await runner.cleanup()
    print(f"loopback, {os.cpu_count()} cores shared with everything else running: indicative figures only")


if __name__ == "__main__":
    asyncio.run(main())
