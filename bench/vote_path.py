"""Load benchmark of the vote path: a real `stagevote serve` process on PostgreSQL + Redis, many ballots at once.

Prints throughput and latency percentiles of POST /events/{id}/vote, and the same figures for
GET /health on the same server as the baseline of what the HTTP stack itself costs, with the ratio.
Run: `make bench` (or `.venv/bin/python bench/vote_path.py --votes 4000 --concurrency 64`).
Loopback only; bounded by --votes and --seconds; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import httpx
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def admin_db(statement: str) -> None:
    url = make_url(PG)
    connection = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def measure(
    base: str, requests: list[tuple[str, str, dict | None, dict]], concurrency: int, seconds: float
) -> tuple[list[float], float, dict[int, int]]:
    """Send `requests` from `concurrency` keep-alive connections (aiohttp: a load client that costs less than httpx)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        for method, path, body, headers in queue:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            async with session.request(method, base + path, json=body, headers=headers) as r:
                await r.read()
            latencies.append(time.perf_counter() - started)
            statuses[r.status] = statuses.get(r.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started, statuses


def report(name: str, latencies: list[float], elapsed: float, statuses: dict[int, int]) -> float:
    ordered = sorted(latencies)
    pct = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000  # noqa: E731
    rate = len(ordered) / elapsed
    print(
        f"{name:<8} {len(ordered):>6} req in {elapsed:6.2f} s = {rate:8.1f} req/s | p50 {pct(0.5):6.1f} ms  p95 {pct(0.95):6.1f} ms  p99 {pct(0.99):6.1f} ms  max {ordered[-1] * 1000:6.1f} ms | statuses {statuses}"
    )
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--votes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    name = f"stagevote_bench_{uuid.uuid4().hex[:8]}"
    await admin_db(f'CREATE DATABASE "{name}"')
    settings = Settings(
        database_url=make_url(PG).set(database=name).render_as_string(hide_password=False),
        redis_url=REDIS,
        redis_key_prefix=f"stagevote-bench:{uuid.uuid4().hex}:",
        secret_key="bench-" + "z" * 40,
    )
    await upgrade(settings.database_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {"STAGEVOTE_DATABASE_URL": settings.database_url, "STAGEVOTE_REDIS_URL": REDIS,
            "STAGEVOTE_REDIS_KEY_PREFIX": settings.redis_key_prefix, "STAGEVOTE_SECRET_KEY": settings.secret_key or "",
            "STAGEVOTE_LOG_LEVEL": "WARNING"}  # fmt: skip
    tmp = Path(tempfile.mkdtemp())
    email = "bench-admin@example.com"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stagevote.cli",
            "create-user",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--role",
            "admin",
        ],
        env=env,
        cwd=tmp,
        check=True,
        capture_output=True,
    )  # noqa: S603
    server = subprocess.Popen(
        [sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # noqa: S603
    runtime = Runtime.build(settings)
    try:
        base = f"http://127.0.0.1:{port}"
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            for _ in range(100):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            token = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()[
                "accessToken"
            ]
            admin = {"Authorization": f"Bearer {token}"}
            start = dt.datetime.now(dt.UTC)
            event = (await client.post("/events", headers=admin, json={
                "title": "Bench night", "keyword": "BENCH", "startDate": start.isoformat(),
                "endDate": (start + dt.timedelta(hours=5)).isoformat(), "voteConfig": {"votesPerRound": 1}})).json()  # fmt: skip
            artists = []
            for band in ("Owls", "Foxes", "Bears", "Wolves"):
                invited = (
                    await client.post(f"/events/{event['id']}/artists", json={"name": band}, headers=admin)
                ).json()
                await client.post(f"/events/{event['id']}/artists/{invited['artistId']}/accept", headers=admin)
                artists.append(invited["artistId"])
            for action in ("publish", "start", "rounds/1/open"):
                await client.post(f"/events/{event['id']}/{action}", headers=admin)

            ballots: list[str] = []
            async with unit_of_work(runtime.sessionmaker) as session:
                attendees = [
                    Attendee(event_id=event["id"], phone_number=f"+1202555{i:04d}", confirmed_at=utcnow())
                    for i in range(args.votes)
                ]
                session.add_all(attendees)
                await session.flush()
            for attendee in attendees:
                claims = {"att": attendee.id, "evt": event["id"]}
                ballots.append(
                    encode_jwt(claims, secret=runtime.secret_key, purpose="ballot", lifetime=dt.timedelta(hours=6))
                )

            health = [("GET", "/health", None, {}) for _ in range(args.votes)]
            baseline = report("health", *await measure(base, health, args.concurrency, args.seconds))
            votes = [("POST", f"/events/{event['id']}/vote", {"round": 1, "artistId": artists[i % 4], "token": f"bench-vote-{i}"},
                      {"Authorization": f"Bearer {b}"}) for i, b in enumerate(ballots)]  # fmt: skip
            vote_rate = report("vote", *await measure(base, votes, args.concurrency, args.seconds))
            board = (await client.get(f"/events/{event['id']}/leaderboard")).json()
            print(
                f"votes counted {board['totalVotes']} of {len(ballots)} sent; vote/health throughput ratio {vote_rate / baseline:.2f}"
            )
            print(
                f"concurrency {args.concurrency}, server workers {args.workers}, PostgreSQL + Redis on loopback, {os.cpu_count()} cores"
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        await runtime.close()
        await admin_db(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
