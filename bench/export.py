"""Export benchmark: 1,000,000 vote rows of one event downloaded as CSV and as XLSX over HTTP from PostgreSQL.

A real `stagevote serve` process on a fresh PostgreSQL database; the votes are written straight into the
table (one INSERT … SELECT over generate_series), then `GET /events/{id}/report` is downloaded by an admin.
Prints rows/s for each format and the server's peak resident memory during each download (VmHWM, reset
between the two through /proc/<pid>/clear_refs). Targets: CSV at least 100,000 rows/s and under 200 MB,
XLSX under 200 MB. Run: `make bench-export` (or `.venv/bin/python bench/export.py --rows 1000000`).
Loopback only; nothing is asserted.
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
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from stagevote.migrations import upgrade

PG = os.environ.get("STAGEVOTE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench password 1"
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def connect(database: str | None = None) -> asyncpg.Connection:
    url = make_url(PG)
    return await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=database or url.database
    )


def peak_rss(pid: int) -> int:
    """The process's peak resident memory since the last reset, in bytes (its children included, if any)."""
    total = 0
    for each in [pid, *children(pid)]:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


def reset_peak(pid: int) -> None:
    for each in [pid, *children(pid)]:
        Path(f"/proc/{each}/clear_refs").write_text("5")


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in found.read_text().split()] if found.exists() else []


async def seed(database: str, event_id: int, artists: list[int], rows: int) -> None:
    """`rows` votes over three rounds from rows/4 attendees (slots 1..4 of each round-attendee pair as needed)."""
    attendees = max(1, rows // 4)
    connection = await connect(database)
    try:
        first = await connection.fetchval(
            """INSERT INTO attendees (event_id, phone_number, email, joined_at, opted_out, pre_registered,
                                      confirmed_at, confirmation_attempts)
               SELECT $1, '+1' || (2000000000 + n)::text, 'fan' || n || '@example.com', now(), false, false, now(), 0
               FROM generate_series(0, $2 - 1) AS n RETURNING id""",
            event_id,
            attendees,
        )
        first = await connection.fetchval("SELECT min(id) FROM attendees WHERE event_id = $1", event_id)
        await connection.execute(
            """INSERT INTO votes (attendee_id, event_id, artist_id, round, slot, token, channel, created_at)
               SELECT $1 + i % $3, $2, ($4::int[])[1 + i % array_length($4::int[], 1)], 1 + (i / $3) % 3,
                      1 + (i / $3) / 3, 'bench-' || i, CASE WHEN i % 5 = 0 THEN 'sms' ELSE 'web' END,
                      now() - interval '3 hours' + i * interval '10 milliseconds'
               FROM generate_series(0, $5 - 1) AS i""",
            first,
            event_id,
            attendees,
            artists,
            rows,
        )
        await connection.execute("ANALYZE votes")
    finally:
        await connection.close()


async def download(client: httpx.AsyncClient, path: str, headers: dict[str, str], pid: int) -> tuple[int, int, float, int]:
    """(lines, bytes, seconds, server peak RSS) of one download, the peak sampled as it goes and from VmHWM."""
    reset_peak(pid)
    lines = size = 0
    started = time.perf_counter()
    async with client.stream("GET", path, headers=headers) as r:
        r.raise_for_status()
        async for chunk in r.aiter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return lines, size, time.perf_counter() - started, peak_rss(pid)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    name = f"stagevote_bench_{uuid.uuid4().hex[:8]}"
    admin_connection = await connect()
    await admin_connection.execute(f'CREATE DATABASE "{name}"')
    await admin_connection.close()
    database_url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    await upgrade(database_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {"STAGEVOTE_DATABASE_URL": database_url, "STAGEVOTE_SECRET_KEY": "bench-" + "z" * 40,
            "STAGEVOTE_LOG_LEVEL": "WARNING", "STAGEVOTE_ROUND_CLOCK_SECONDS": "0"}  # fmt: skip
    tmp = Path(tempfile.mkdtemp())
    email = "bench-admin@example.com"
    subprocess.run([sys.executable, "-m", "stagevote.cli", "create-user", "--email", email, "--password", PASSWORD, "--role", "admin"], env=env, cwd=tmp, check=True, capture_output=True)  # noqa: S603
    server = subprocess.Popen([sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port)], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for _ in range(200):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            token = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()["accessToken"]
            admin = {"Authorization": f"Bearer {token}"}
            start = dt.datetime.now(dt.UTC)
            rounds = [{"number": n, "name": f"Round {n}"} for n in (1, 2, 3)]
            event = (await client.post("/events", headers=admin, json={
                "title": "RockFest 2026", "keyword": "ROCKFEST", "startDate": start.isoformat(),
                "endDate": (start + dt.timedelta(hours=5)).isoformat(), "voteConfig": {"rounds": rounds}})).json()  # fmt: skip
            artists = []
            for band in ("Owls", "Foxes", "Bears", "Wolves"):
                invited = (await client.post(f"/events/{event['id']}/artists", json={"name": band}, headers=admin)).json()
                await client.post(f"/events/{event['id']}/artists/{invited['artistId']}/accept", headers=admin)
                artists.append(invited["artistId"])
            seeded = time.perf_counter()
            await seed(name, event["id"], artists, args.rows)
            print(f"seeded {args.rows:,} votes in {time.perf_counter() - seeded:.1f}s")
            idle = peak_rss(server.pid)
            print(f"server peak RSS before the downloads: {idle / MB:.0f} MB (pid {server.pid})")
            for fmt in ("csv", "xlsx"):
                path = f"/events/{event['id']}/report?format={fmt}&dataset=votes"
                lines, size, seconds, peak = await download(client, path, admin, server.pid)
                rows = lines - 1 if fmt == "csv" else args.rows
                print(
                    f"{fmt.upper():4} {rows:>9,} rows  {size / MB:7.1f} MB  {seconds:6.1f}s  "
                    f"{rows / seconds:>9,.0f} rows/s  server peak RSS {peak / MB:.0f} MB"
                )
            print(f"PostgreSQL on loopback, one server process, {os.cpu_count()} cores (shared: figures are indicative)")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        admin_connection = await connect()
        await admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_connection.close()


if __name__ == "__main__":
    asyncio.run(main())
