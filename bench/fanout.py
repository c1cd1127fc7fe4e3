"""Fan-out benchmark of the live stream: thousands of raw Engine.IO v4 websocket clients on `/live`.

Against a real `stagevote serve` on PostgreSQL + Redis (`make bench-fanout`, also part of `make bench`):

1. doors open: N clients (default 5,000) connect and `subscribe` at once; time until every one is
   acknowledged, and how many never were;
2. those N watch the leaderboard while votes arrive at 20/s, then 200/s: vote→screen p50/p99
   (from sending the i-th successful vote to a screen first showing a total of at least i), the emits
   each client got, how many missed the final state, and the server's CPU;
3. N round-only clients (`topics: ["round", "event"]`, fans' ballots) plus 20 screens, votes at
   200/s, a round closed and the next opened mid-way: the screens' p99, and how soon every phone got
   each round change (target: within 1 s).

The clients are raw websockets (aiohttp), many per process, spread over `--processes` processes on
the same machine as the server, so the figures include their cost. `--micro` measures the fan-out
alone on a bare python-socketio server (no database): CPU per client per emit of python-socketio's
own emit against `stagevote.realtime.fanout`. `--profile` records the server with py-spy.
Loopback only; every phase is bounded in time; nothing is asserted (targets are printed beside figures).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

PG = os.environ.get("STAGEVOTE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("STAGEVOTE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "bench password 1"
TOTAL = re.compile(r'"totalVotes":(\d+)')
ROUND = re.compile(r'"round":(\d+)')
UPDATED = re.compile(r'"updatedAt":"([^"]+)"')
NUMBER = re.compile(r'"number":(\d+),"status":"(\w+)"')
COMPRESS = int(os.environ.get("FANOUT_BENCH_DEFLATE", "15"))  # like a browser, offer permessage-deflate


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


# ---------------------------------------------------------------- the clients (run in child processes)


@dataclass
class LiveClient:
    """One raw Engine.IO v4 websocket on namespace /live: what it was acked, and what it was sent, when."""

    ack: dict[str, Any] | None = None
    ack_at: float = 0.0
    boards: list[tuple[float, int, int, float]] = field(default_factory=list)  # (time, round, totalVotes, updatedAt)
    rounds: list[tuple[float, int, str]] = field(default_factory=list)  # (time, number, status)
    events: list[tuple[float, str]] = field(default_factory=list)
    ws: aiohttp.ClientWebSocketResponse | None = None
    failed: str | None = None


async def run_client(session: aiohttp.ClientSession, url: str, payload: dict[str, Any], client: LiveClient,
                     gate: asyncio.Semaphore, acked: asyncio.Event, stop: asyncio.Event) -> None:  # fmt: skip
    try:
        async with gate:
            ws = await session.ws_connect(url, autoping=True, max_msg_size=0, compress=COMPRESS, timeout=aiohttp.ClientWSTimeout(ws_close=2))
            client.ws = ws
            opened = await ws.receive_str(timeout=30)
            assert opened.startswith("0"), opened
            await ws.send_str("40/live,")
            joined = await ws.receive_str(timeout=30)
            assert joined.startswith("40/live,"), joined
            await ws.send_str("42/live,1" + json.dumps(["subscribe", payload], separators=(",", ":")))
        while not stop.is_set():
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                if not stop.is_set():
                    client.failed = f"closed by the server: {message.type.name} {message.data}"
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            text: str = message.data
            now = time.time()
            if text == "2":
                await ws.send_str("3")
            elif text.startswith("43/live,1"):
                client.ack = json.loads(text[len("43/live,1") :])[0]
                client.ack_at = now
                acked.set()
            elif text.startswith('42/live,["leaderboard"'):
                total, round_, updated = TOTAL.search(text), ROUND.search(text), UPDATED.search(text)
                computed = dt.datetime.fromisoformat(updated.group(1).replace("Z", "+00:00")).timestamp() if updated else 0.0
                client.boards.append((now, int(round_.group(1)) if round_ else 0, int(total.group(1)) if total else -1, computed))
            elif text.startswith('42/live,["round"'):
                found = NUMBER.search(text)
                if found:
                    client.rounds.append((now, int(found.group(1)), found.group(2)))
            elif text.startswith('42/live,["event"'):
                client.events.append((now, text))
    except Exception as exc:  # noqa: BLE001 - a client's failure is a figure, not a crash
        client.failed = f"{type(exc).__name__}: {exc}"[:200]


def latencies(boards: list[tuple[float, int, int, float]], votes: dict[int, list[tuple[float, float]]]) -> tuple[list[float], list[float]]:
    """Per vote (sent, answered): the first board of its round computed after the vote was answered (so
    certainly counting it; the tally moves before the answer) — how long after sending the vote, and after
    its answer, a screen had it."""
    from_sent: list[float] = []
    from_answer: list[float] = []
    for round_, sent_answered in votes.items():
        seen = [(t, computed) for t, r, _, computed in boards if r == round_]
        computed_max: list[float] = []
        times: list[float] = []
        for t, computed in seen:
            if not computed_max or computed > computed_max[-1]:
                computed_max.append(computed)
                times.append(t)
        for sent, answered in sent_answered:
            k = bisect.bisect_left(computed_max, answered)
            if k < len(computed_max):
                from_sent.append(times[k] - sent)
                from_answer.append(times[k] - answered)
    return from_sent, from_answer


def client_process(conn: Connection, url: str) -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415

        uvloop.install()
    asyncio.run(client_main(conn, url))


async def client_main(conn: Connection, url: str) -> None:
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    session = aiohttp.ClientSession(connector=connector)
    clients: list[LiveClient] = []
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    try:
        while True:
            command, args = await loop.run_in_executor(None, conn.recv)
            if command == "connect":
                count, payloads, gate_size, wait_seconds = args
                gate = asyncio.Semaphore(gate_size)
                acked = asyncio.Event()
                fresh = [LiveClient() for _ in range(count)]
                started = time.time()
                for i, c in enumerate(fresh):
                    tasks.append(asyncio.create_task(run_client(session, url, payloads[i % len(payloads)], c, gate, acked, stop)))
                clients += fresh
                deadline = started + wait_seconds
                while time.time() < deadline and any(c.ack is None and c.failed is None for c in fresh):
                    await asyncio.sleep(0.05)
                conn.send({
                    "started": started,
                    "ack_times": [c.ack_at - started for c in fresh if c.ack is not None],
                    "ok": sum(1 for c in fresh if c.ack is not None and c.ack.get("ok")),
                    "refused": [c.ack for c in fresh if c.ack is not None and not c.ack.get("ok")][:5],
                    "refused_count": sum(1 for c in fresh if c.ack is not None and not c.ack.get("ok")),
                    "failed": [c.failed for c in fresh if c.failed][:5],
                    "failed_count": sum(1 for c in fresh if c.failed),
                    "unanswered": sum(1 for c in fresh if c.ack is None and c.failed is None),
                })  # fmt: skip
            elif command == "mark":
                conn.send([(len(c.boards), len(c.rounds)) for c in clients])
            elif command == "unanswered":
                conn.send(sum(1 for c in clients if c.ack is None and c.failed is None))
            elif command == "report":
                marks, votes, final_totals, round_changes, sample = args
                result: dict[str, Any] = {"emits": [], "missed_final": 0, "latency": [], "round_delay": [], "round_missed": 0, "failed": 0, "round_first_last": {}, "after_answer": []}
                sampled = 0
                for index, c in enumerate(clients):
                    if c.failed:
                        result["failed"] += 1
                    boards = c.boards[marks[index][0] :]
                    rounds = c.rounds[marks[index][1] :]
                    if final_totals is not None and c.ack is not None and c.ack.get("leaderboard") is not None:
                        result["emits"].append(len(boards))
                        last = {}
                        for _, r, total, _ in boards:
                            last[r] = total
                        if any(last.get(r) != total for r, total in final_totals.items()):
                            result["missed_final"] += 1
                        if sampled < sample:
                            sampled += 1
                            from_sent, from_answer = latencies(boards, votes)
                            result["latency"] += from_sent
                            result["after_answer"] += from_answer
                    for changed_at, number, status in round_changes:
                        got = next((t for t, n, s in rounds if n == number and s == status), None)
                        if got is None:
                            result["round_missed"] += 1
                        else:
                            result["round_delay"].append(got - changed_at)
                            first, last = result["round_first_last"].get(number, (got, got))
                            result["round_first_last"][number] = (min(first, got), max(last, got))
                conn.send(result)
            elif command == "close":
                stop.set()
                for c in clients:
                    if c.ws is not None:
                        with contextlib.suppress(Exception):
                            await c.ws.close()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                clients, tasks, stop = [], [], asyncio.Event()
                conn.send("closed")
            elif command == "exit":
                return
    finally:
        await session.close()


class Crowd:
    """Client processes that hold the websockets; commands go to all of them, answers are merged."""

    def __init__(self, url: str, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(child, url), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    async def ask(self, command: str, args_per_process: list[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        for pipe, args in zip(self.pipes, args_per_process, strict=True):
            pipe.send((command, args))
        return list(await asyncio.gather(*(loop.run_in_executor(None, pipe.recv) for pipe in self.pipes)))

    async def connect(self, count: int, payloads: list[dict[str, Any]], *, gate: int, wait: float) -> dict[str, Any]:
        share = [count // len(self.pipes) + (1 if i < count % len(self.pipes) else 0) for i in range(len(self.pipes))]
        answers = await self.ask("connect", [(n, payloads, max(1, gate // len(self.pipes)), wait) for n in share])
        started = min(a["started"] for a in answers)
        merged: dict[str, Any] = {"ack_times": [], "ok": 0, "refused_count": 0, "failed_count": 0, "unanswered": 0, "refused": [], "failed": []}
        for a in answers:
            merged["ack_times"] += [t + a["started"] - started for t in a["ack_times"]]
            for key in ("ok", "refused_count", "failed_count", "unanswered"):
                merged[key] += a[key]
            merged["refused"] += a["refused"]
            merged["failed"] += a["failed"]
        return merged

    async def close(self) -> None:
        await self.ask("close", [None] * len(self.pipes))

    def exit(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("exit", None))
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


# ---------------------------------------------------------------- measuring the server


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        todo += children.get(current, [])
    return total


class CpuMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu = tree_cpu_seconds(pid)
        self.wall = time.monotonic()

    def lap(self) -> str:
        cpu, wall = tree_cpu_seconds(self.pid), time.monotonic()
        share = (cpu - self.cpu) / max(wall - self.wall, 1e-9)
        self.cpu, self.wall = cpu, wall
        return f"server CPU {share * 100:5.0f}% of one core"


# ---------------------------------------------------------------- votes at a fixed rate


class Voter:
    def __init__(self, base: str, event_id: int, artists: list[int], ballots: list[str]) -> None:
        self.base, self.event_id, self.artists, self.ballots = base, event_id, artists, ballots
        self.next_ballot = 0
        self.round = 1
        self.statuses: dict[str, int] = {}
        self.sent: dict[int, list[tuple[float, float]]] = {}  # round → (sent, answered) of the votes counted
        self.latencies: list[float] = []  # of the vote requests themselves

    async def run(self, session: aiohttp.ClientSession, rate: float, seconds: float, during: Any = None) -> None:
        started = time.monotonic()
        count = int(rate * seconds)
        pending: set[asyncio.Task[None]] = set()
        side = asyncio.create_task(during(self)) if during else None
        for k in range(count):
            delay = started + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._one(session))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=180)
        if side:
            await side

    async def _one(self, session: aiohttp.ClientSession) -> None:
        ballot = self.ballots[self.next_ballot]
        self.next_ballot += 1
        round_ = self.round
        body = {"round": round_, "artistId": self.artists[self.next_ballot % len(self.artists)], "token": f"fanout-{uuid.uuid4().hex}"}
        sent = time.time()
        try:
            async with session.post(f"{self.base}/events/{self.event_id}/vote", json=body, headers={"Authorization": f"Bearer {ballot}"}) as r:
                answer = await r.read()
                status = r.status
        except aiohttp.ClientError:
            status, answer = 0, b""
        self.latencies.append(time.time() - sent)
        label = str(status) if status < 400 else f"{status} {json.loads(answer or b'{}').get('detail', '')[:40]}"
        self.statuses[label] = self.statuses.get(label, 0) + 1
        if status == 201:
            self.sent.setdefault(round_, []).append((sent, time.time()))


# ---------------------------------------------------------------- the scenario against stagevote serve


async def admin_db(statement: str) -> None:
    import asyncpg  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    url = make_url(PG)
    connection = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def settled(client: Any, event_id: int, round_: int) -> int:
    """The round's total once it stopped moving (votes still in flight on a slow machine have landed)."""
    last, stable_since = -1, time.monotonic()
    for _ in range(240):
        total = (await client.get(f"/events/{event_id}/leaderboard", params={"round": round_})).json()["totalVotes"]
        if total != last:
            last, stable_since = total, time.monotonic()
        elif time.monotonic() - stable_since > 2:
            break
        await asyncio.sleep(0.25)
    return int(last)


def summarise_connect(name: str, merged: dict[str, Any], count: int) -> None:
    times = merged["ack_times"]
    whole = max(times) if len(times) == count else float("nan")
    print(f"{name}: {merged['ok']} ok, {merged['refused_count']} refused, {merged['failed_count']} failed, "
          f"{merged['unanswered']} unanswered of {count}; all acked in {whole:5.2f} s (target <= 10 s, none unanswered); "
          f"ack p50 {pct(times, .5):5.2f} s p99 {pct(times, .99):5.2f} s")  # fmt: skip
    if merged["refused"] or merged["failed"]:
        print(f"   e.g. refused {merged['refused'][:2]} failed {merged['failed'][:2]}")


async def report(crowd: Crowd, marks: list[Any], voter: Voter, finals: dict[int, int] | None,
                 round_changes: list[tuple[float, int, str]], sample: int) -> dict[str, Any]:  # fmt: skip
    per = max(1, sample // len(crowd.pipes))
    answers = await crowd.ask("report", [(m, voter.sent, finals, round_changes, per) for m in marks])
    merged: dict[str, Any] = {"emits": [], "missed_final": 0, "latency": [], "round_delay": [], "round_missed": 0, "failed": 0, "after_answer": []}
    spans: dict[int, tuple[float, float]] = {}
    for a in answers:
        for key in merged:
            merged[key] += a[key]
        for number, (first, last) in a["round_first_last"].items():
            f0, l0 = spans.get(number, (first, last))
            spans[number] = (min(f0, first), max(l0, last))
    merged["spans"] = spans
    return merged


async def scenario(args: argparse.Namespace) -> None:
    import httpx  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy import text  # noqa: PLC0415

    from stagevote.attendees.models import Attendee  # noqa: PLC0415
    from stagevote.config import Settings  # noqa: PLC0415
    from stagevote.core.db import unit_of_work, utcnow  # noqa: PLC0415
    from stagevote.core.runtime import Runtime  # noqa: PLC0415
    from stagevote.core.security import encode_jwt  # noqa: PLC0415
    from stagevote.migrations import upgrade  # noqa: PLC0415

    name = f"stagevote_fanout_{uuid.uuid4().hex[:8]}"
    await admin_db(f'CREATE DATABASE "{name}"')
    settings = Settings(
        database_url=make_url(PG).set(database=name).render_as_string(hide_password=False),
        redis_url=REDIS,
        redis_key_prefix=f"stagevote-fanout:{uuid.uuid4().hex}:",
        secret_key="bench-" + "z" * 40,
    )
    await upgrade(settings.database_url.get_secret_value())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {"STAGEVOTE_DATABASE_URL": settings.database_url.get_secret_value(), "STAGEVOTE_REDIS_URL": REDIS,
            "STAGEVOTE_REDIS_KEY_PREFIX": settings.redis_key_prefix, "STAGEVOTE_SECRET_KEY": settings.resolved_secret_key().get_secret_value(),
            "STAGEVOTE_LOG_LEVEL": "WARNING",
            # as at a venue, messages (the SMS a round change sends to every attendee) are delivered by
            # `stagevote worker` processes, not by the API process under test: none runs here
            "STAGEVOTE_BROKER_URL": REDIS}  # fmt: skip
    env |= dict(setting.partition("=")[::2] for setting in args.server_env)
    tmp = Path(tempfile.mkdtemp())
    email = "bench-admin@example.com"
    subprocess.run([sys.executable, "-m", "stagevote.cli", "create-user", "--email", email, "--password", PASSWORD, "--role", "admin"], env=env, cwd=tmp, check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port), "--workers", str(args.workers)], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=(tmp / "server.log").open("w"))
    profiler = None
    runtime = Runtime.build(settings)
    base = f"http://127.0.0.1:{port}"
    crowd = Crowd(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", args.processes)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(150):
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
                "title": "Fan-out night", "keyword": "FANOUT", "startDate": start.isoformat(),
                "endDate": (start + dt.timedelta(hours=5)).isoformat(),
                "voteConfig": {"votesPerRound": 1, "rounds": rounds, "leaderboardVisibility": "live", "requireConfirmation": False}})).json()  # fmt: skip
            event_id = event["id"]
            artists = []
            for band in ("Owls", "Foxes", "Bears", "Wolves", "Lynxes", "Otters"):
                invited = (await client.post(f"/events/{event_id}/artists", json={"name": band}, headers=admin)).json()
                await client.post(f"/events/{event_id}/artists/{invited['artistId']}/accept", headers=admin)
                artists.append(invited["artistId"])
            for action in ("publish", "start", "rounds/1/open"):
                await client.post(f"/events/{event_id}/{action}", headers=admin)
            needed = int(args.seconds * (20 + 200 + 200)) + 100
            async with unit_of_work(runtime.sessionmaker) as session:
                # no phone, no e-mail: the SMS a round change sends every attendee (the journey) is not what this measures
                attendees = [Attendee(event_id=event_id, phone_number=None, confirmed_at=utcnow()) for i in range(needed)]
                session.add_all(attendees)
                await session.flush()
            async with runtime.engine.begin() as connection:  # statistics, as autovacuum would gather them
                await connection.execute(text("ANALYZE"))
            ballots = [encode_jwt({"att": a.id, "evt": event_id}, secret=runtime.secret_key.get_secret_value(), purpose="ballot", lifetime=dt.timedelta(hours=6)) for a in attendees]
            voter = Voter(base, event_id, artists, ballots)

            def profile(phase: str) -> None:
                """--profile: py-spy from the first phase to the end, or over the --profile-phase only."""
                nonlocal profiler
                if not args.profile or (args.profile_phase == "all" and phase != "doors"):
                    return
                if profiler is not None:
                    stop_profiler(profiler)
                    profiler = None
                if args.profile_phase in (phase, "all"):
                    profiler = start_profiler(server.pid, tmp, args)

            profile("doors")
            meter = CpuMeter(server.pid)
            print(f"== {args.clients} leaderboard watchers (default topics), server workers {args.workers}, "
                  f"{args.processes} client processes, {os.cpu_count()} cores shared with the clients and the vote sender")  # fmt: skip
            merged = await crowd.connect(args.clients, [{"eventId": event_id}], gate=args.gate, wait=args.wait)
            summarise_connect("doors open (connect + subscribe)", merged, args.clients)
            print(f"   {meter.lap()} while subscribing")
            if merged["unanswered"]:
                for _ in range(int(args.wait)):
                    left = sum(await crowd.ask("unanswered", [None] * len(crowd.pipes)))
                    if not left:
                        break
                    await asyncio.sleep(1)
                print(f"   still unanswered {int(args.wait) + int(args.wait)} s after the doors opened: {left}")
            if args.doors_only:
                return
            await asyncio.sleep(1)

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
                profile("watchers")
                for rate in args.rates:
                    marks = await crowd.ask("mark", [None] * len(crowd.pipes))
                    voter.sent = {}
                    meter.lap()
                    await voter.run(http, rate, args.seconds)
                    finals = {1: await settled(client, event_id, 1)}
                    await asyncio.sleep(3)  # the last emit
                    cpu = meter.lap()
                    r = await report(crowd, marks, voter, finals, [], args.sample)
                    lat = [x * 1000 for x in r["latency"]]
                    after = [x * 1000 for x in r["after_answer"]]
                    print(f"{rate:>3.0f} votes/s for {args.seconds:.0f} s to {len(r['emits'])} watchers: vote→screen p50 {pct(lat, .5):6.0f} ms p99 {pct(lat, .99):6.0f} ms "
                          f"(over {len(lat)} samples) | emits per client min {min(r['emits'], default=0)} median {statistics.median(r['emits'] or [0]):.0f} "
                          f"max {max(r['emits'], default=0)} | missed the final state: {r['missed_final']} (target 0), clients dropped {r['failed']} | {cpu} | votes {voter.statuses}")  # fmt: skip
                    print(f"    the vote requests themselves p50 {pct(voter.latencies, .5) * 1000:.0f} ms p99 {pct(voter.latencies, .99) * 1000:.0f} ms; "
                          f"from a vote's answer to the screen p50 {pct(after, .5):.0f} ms p99 {pct(after, .99):.0f} ms")
                    voter.statuses, voter.latencies = {}, []
                await crowd.close()
                await asyncio.sleep(5)  # the server lets 5,000 sockets go before the next doors open

                print(f"== {args.clients} round-only clients (topics round, event) + {args.screens} screens, {args.phone_rate:.0f} votes/s")
                profile("phones-doors")
                merged = await crowd.connect(args.clients, [{"eventId": event_id, "topics": ["round", "event"]}], gate=args.gate, wait=args.wait)
                summarise_connect("phones", merged, args.clients)
                screens = await crowd.connect(args.screens, [{"eventId": event_id}], gate=args.gate, wait=args.wait)
                summarise_connect("screens", screens, args.screens)
                marks = await crowd.ask("mark", [None] * len(crowd.pipes))
                profile("phones")
                voter.sent = {}
                changes: list[tuple[float, int, str]] = []
                took: list[float] = []
                asked_at: list[float] = []

                async def change_rounds(v: Voter) -> None:
                    await asyncio.sleep(args.seconds / 3)
                    asked = time.time()
                    await client.post(f"/events/{event_id}/rounds/1/close", headers=admin)
                    changes.append((time.time(), 1, "closed"))
                    asked_at.append(asked)
                    took.append(time.time() - asked)
                    await asyncio.sleep(0.5)
                    asked = time.time()
                    await client.post(f"/events/{event_id}/rounds/2/open", headers=admin)
                    changes.append((time.time(), 2, "open"))
                    asked_at.append(asked)
                    took.append(time.time() - asked)
                    v.round = 2

                meter.lap()
                await voter.run(http, args.phone_rate, args.seconds, during=change_rounds)
                finals = {n: await settled(client, event_id, n) for n in (1, 2)}
                await asyncio.sleep(3)  # the last emit
                cpu = meter.lap()
                r = await report(crowd, marks, voter, finals, changes, args.sample)
                lat = [x * 1000 for x in r["latency"]]
                after = [x * 1000 for x in r["after_answer"]]
                delays = r["round_delay"]
                late = sum(1 for d in delays if d > 1.0)
                print(f"screens: vote→screen p50 {pct(lat, .5):6.0f} ms p99 {pct(lat, .99):6.0f} ms (target p99 <= 300 ms, over {len(lat)} samples), "
                      f"missed the final state: {r['missed_final']} | {cpu} | votes {voter.statuses}")
                print(f"    the vote requests themselves p50 {pct(voter.latencies, .5) * 1000:.0f} ms p99 {pct(voter.latencies, .99) * 1000:.0f} ms; "
                      f"from a vote's answer to the screen p50 {pct(after, .5):.0f} ms p99 {pct(after, .99):.0f} ms")  # fmt: skip
                print(f"phones: round changes received {len(delays)} of {len(changes) * (args.clients + args.screens)}, missed {r['round_missed']}, "
                      f"later than 1 s after the admin's request was answered: {late} (target 0); delay p50 {pct(delays, .5) * 1000:4.0f} ms "
                      f"p99 {pct(delays, .99) * 1000:4.0f} ms max {max(delays, default=float('nan')) * 1000:4.0f} ms; "
                      f"first to last phone per change: {', '.join(f'{(b - a) * 1000:.0f} ms' for a, b in r['spans'].values())}; "
                      f"from the admin's request being sent to the last phone: {', '.join(f'{(span[1] - asked) * 1000:.0f} ms' for asked, span in zip(asked_at, r['spans'].values(), strict=False))}; "
                      f"the admin requests took {', '.join(f'{t * 1000:.0f} ms' for t in took)}")  # fmt: skip
                await crowd.close()
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        crowd.exit()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        await runtime.close()
        await admin_db(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis.asyncio as aioredis  # noqa: PLC0415

        leftovers = aioredis.Redis.from_url(REDIS)
        keys = [k async for k in leftovers.scan_iter(match=f"{settings.redis_key_prefix}*")]
        if keys:
            await leftovers.delete(*keys)
        await leftovers.aclose()


def start_profiler(pid: int, tmp: Path, args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("(py-spy not found: pip install py-spy)")
        return None
    out = Path(args.profile).resolve()
    print(f"   profiling the server with py-spy into {out}")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "50", "--format", {".json": "speedscope", ".txt": "raw"}.get(out.suffix, "flamegraph"), "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    import signal  # noqa: PLC0415

    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()


# ---------------------------------------------------------------- --micro: the fan-out alone


def bare_server(port: int, manager: str) -> None:
    """A python-socketio server without a database: `subscribe` joins one room; GET /emit times emits to it."""
    import socketio  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415

    from stagevote.realtime.fanout import FanOut, install_recorded_websockets  # noqa: PLC0415

    sio = socketio.AsyncServer(async_mode="asgi", client_manager=FanOut() if manager == "fanout" else None, cors_allowed_origins="*")
    if manager == "fanout":
        install_recorded_websockets(sio)

    async def subscribe(sid: str, data: Any) -> dict[str, Any]:
        await sio.enter_room(sid, "room", namespace="/live")
        return {"ok": True}

    sio.on("subscribe", subscribe, namespace="/live")
    body = {"eventId": 1, "round": 1, "totalVotes": 0, "standings": [{"artistId": i, "name": f"Artist {i}", "votes": 100 * i, "rank": 7 - i} for i in range(1, 7)], "updatedAt": "2026-01-01T00:00:00Z"}

    async def http(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        emits = 10
        idle_before = time.process_time()
        await asyncio.sleep(0.5)
        idle = (time.process_time() - idle_before) / 0.5
        costs = []
        for i in range(emits):
            body["totalVotes"] = i + 1
            before = time.process_time()
            await sio.emit("leaderboard", body, room="room", namespace="/live")
            await asyncio.sleep(0.5)  # the writers run here
            costs.append(time.process_time() - before - idle * 0.5)
        result = json.dumps({"cpu_per_emit": statistics.median(costs)}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": result})

    app = socketio.ASGIApp(sio, other_asgi_app=http)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False)


async def micro(args: argparse.Namespace) -> None:
    for manager in ("python-socketio", "fanout"):
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port), manager])
        crowd = Crowd(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", args.processes)
        try:
            await asyncio.sleep(2)
            before = tree_cpu_seconds(server.pid)
            merged = await crowd.connect(args.clients, [{"eventId": 1}], gate=args.gate, wait=args.wait)
            summarise_connect(f"{manager}: subscribe", merged, args.clients)
            print(f"   server CPU per connect + subscribe {(tree_cpu_seconds(server.pid) - before) / args.clients * 1000:.2f} ms")
            marks = await crowd.ask("mark", [None] * len(crowd.pipes))
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/emit", timeout=aiohttp.ClientTimeout(total=120)) as r:
                    cost = (await r.json())["cpu_per_emit"]
            await asyncio.sleep(1)
            counts = await crowd.ask("mark", [None] * len(crowd.pipes))
            got = sum(c[0] - m[0] for cs, ms in zip(counts, marks, strict=True) for c, m in zip(cs, ms, strict=True))
            print(f"{manager:>16}: server CPU per emit to {merged['ok']} clients {cost * 1000:7.1f} ms = "
                  f"{cost / max(merged['ok'], 1) * 1e6:6.1f} µs per client | frames received {got} of {10 * merged['ok']}")  # fmt: skip
            await crowd.close()
        finally:
            crowd.exit()
            server.terminate()
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10, help="length of each voting phase")
    parser.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")], default=[20.0, 200.0], help="votes per second of the watchers' phases")
    parser.add_argument("--phone-rate", type=float, default=200.0, help="votes per second while the round-only phones watch")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--gate", type=int, default=1000, help="websocket handshakes in flight at once")
    parser.add_argument("--wait", type=float, default=30, help="how long to wait for subscribe acks")
    parser.add_argument("--sample", type=int, default=200, help="clients whose every latency is counted")
    parser.add_argument("--profile", default=None, help="record the server with py-spy into this file (.svg; .json for speedscope; .txt for collapsed stacks)")
    parser.add_argument("--profile-phase", default="all", choices=["all", "doors", "watchers", "phones-doors", "phones"],
                        help="with --profile: record only this phase (the first doors open, the watchers' votes, the phones' doors open, the phones' votes)")
    parser.add_argument("--doors-only", action="store_true", help="stop after the doors-open burst (to profile it)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the server under test (STAGEVOTE_LIVE_BUSY_EMIT_SECONDS=0.2)")
    parser.add_argument("--micro", action="store_true", help="the fan-out alone: python-socketio's emit against ours")
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "MANAGER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), args.bare_server[1])
    elif args.micro:
        asyncio.run(micro(args))
    else:
        asyncio.run(scenario(args))


if __name__ == "__main__":
    main()
