"""The signed SMS vote webhook alone: server CPU per `VOTE <code>` text and texts/s, optionally py-spied.

`stagevote serve --workers N` on PostgreSQL + Redis (a worker running, as in `make bench`), one live
event whose attendees each text one signed `VOTE <code>` to `POST /sms/join` under wrk (`-t2 -c64`
by default, bench/requests.lua, every MessageSid distinct). It prints texts/s, p50/p99, the server's
CPU per 200 answer (from /proc, what a busy machine moves least), PostgreSQL's, and the integrity line
of bench/vote_path.py (200 answers = new rows = leaderboard total). A short warm-up run first, on
attendees of its own, so the figures are of a warm server. The helpers are bench/vote_path.py's.

Run: `.venv/bin/python bench/sms_cpu.py --seconds 10 [--profile]` (py-spy: `.venv/bin/pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg
from vote_path import (  # type: ignore[import-not-found]  # bench/ is the script's own folder
    System,
    analyze,
    build_stage,
    ensure_tool,
    finish_profiles,
    group_cpu_seconds,
    integrity,
    log,
    pg_connect,
    run_wrk,
    sms_lines,
    start_profiles,
    system,
    write_lines,
)


async def steady_window(server: int, database_url: str, seconds: float) -> tuple[float, int, float]:
    """The server's CPU seconds and the texts answered (inbound rows committed) from the run's second 2 to its
    last second but one: the whole run's figure also holds the start, and the end, where wrk hangs up on the
    requests under way (each a logged ClientDisconnect), a fixed cost that weighs more on a slower server."""
    start, end = 2.0, max(3.0, seconds - 1)
    connection = await pg_connect(database_url)
    try:
        await asyncio.sleep(start)
        cpu, texts, began = group_cpu_seconds(server), await _texts(connection), time.perf_counter()
        await asyncio.sleep(end - start)
        cpu_end, texts_end, ended = group_cpu_seconds(server), await _texts(connection), time.perf_counter()
    finally:
        await connection.close()
    return cpu_end - cpu, texts_end - texts, ended - began


async def _texts(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM inbound_messages"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of the measured wrk run")
    parser.add_argument("--warmup", type=float, default=3, help="length of the warm-up run before it")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="stagevote serve --workers")
    parser.add_argument("--texts", type=int, default=40_000, help="attendees (one text each): enough for --seconds")
    parser.add_argument("--profile", action="store_true", help="py-spy the server's workers during the run")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the server; repeatable"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and files (for a look afterwards)")
    args = parser.parse_args()
    args.wrk = ensure_tool("wrk", "wrk")

    async with system(args, prefix="stagevote-sms-bench-") as sut:
        await measure(args, sut)


async def measure(args: argparse.Namespace, sut: System) -> None:
    """Warm up, then the measured run, on the system `system` started."""
    tmp, database_url, public_url, email, server = sut.tmp, sut.database_url, sut.public_url, sut.email, sut.server
    log(f"-- setting up {args.texts} attendees (PostgreSQL database {sut.name}, files in {tmp})")
    warm_stage = await build_stage(public_url, email, database_url, 5_000, 7_000_000)
    stage = await build_stage(public_url, email, database_url, args.texts, 8_000_000)
    await analyze(database_url)
    warm = write_lines(tmp / "warm.tsv", sms_lines(warm_stage, public_url, range(5_000)))
    texts = write_lines(tmp / "sms.tsv", sms_lines(stage, public_url, range(args.texts)))

    log(f"-- warm-up: {args.warmup:g} s")
    run_wrk("warm-up", public_url, warm, args=args, cycle=False, seconds=args.warmup, server=server.pid)
    load = f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"
    log(f"-- signed VOTE texts to POST /sms/join, stagevote serve --workers {args.workers} ({load})")
    spies = start_profiles(server, tmp, args) if args.profile else []
    window = asyncio.create_task(steady_window(server.pid, database_url, args.seconds))
    run = await asyncio.to_thread(
        run_wrk, "sms", public_url, texts, args=args, cycle=False, seconds=args.seconds, server=server.pid
    )
    steady_cpu, steady_texts, steady_seconds = await window
    profile = finish_profiles(spies, "SMS vote")
    check = await integrity(run, stage, database_url, 1, texts)
    log(f"\n== SMS votes, POST /sms/join (signed 'VOTE <code>'), {load}, {os.cpu_count()} cores")
    log(
        f"  texts/s {run.rate:.0f}   p50 {run.p50_ms:.1f} ms   p99 {run.p99_ms:.1f} ms"
        + (f"   {run.note}" if run.note else "")
    )
    log(f"  server CPU per text {run.cpu_us:.0f} µs   PostgreSQL CPU per text {run.database_cpu_us:.0f} µs")
    if steady_texts:
        log(
            f"  steady state (second 2 to {args.seconds - 1:g} of the run):"
            f" {steady_texts / steady_seconds:.0f} texts/s,"
            f" server CPU per text {steady_cpu * 1e6 / steady_texts:.0f} µs"
        )
    log(f"  integrity: {check}")
    if run.exhausted:
        log(f"  NOTE: ran out of texts ({run.exhausted} requests of nothing): raise --texts")
    if profile:
        log(profile)


if __name__ == "__main__":
    asyncio.run(main())
