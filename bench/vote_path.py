"""`make bench`: the vote path side by side with its ceilings, in one run, on this machine.

With the same wrk load (`-t2 -c64`, a Lua script that gives every request a distinct ballot and
token, bench/requests.lua):
- a bare FastAPI app that parses the same body and answers 201 (bench/bare_app.py): the framework ceiling;
- pgbench running the same single-row insert, one vote per transaction: the database ceiling;
- `stagevote serve --workers 2` on PostgreSQL + Redis, with a `stagevote worker` running: at full
  load, then at 80% of that peak (an arrival rate: bench/requests.lua paces each wrk thread);
- the same for the signed SMS vote webhook (`VOTE <code>` texts to `POST /sms/join`).
It prints votes/s, p50 and p99 of each, the ratios, and after every stagevote run an integrity
line: 2xx answers = new rows = leaderboard total (requests wrk left unanswered when it stopped are
retried with the same token or MessageSid first, as a client does). The last line is
`vote/framework ratio: X.XX`. Figures on a shared or busy machine are indicative only.

Run: `make bench`, or `.venv/bin/python bench/vote_path.py --seconds 10` (see --help).

`--ab NAME=VALUE` measures what a change costs instead: only the web peak, on server A (as configured)
and server B (A plus those settings; `PYTHONPATH=<a worktree>/src` runs another checkout's code),
in pairs whose order alternates (AB BA AB …, so a drift of the machine falls on both), each run on a
freshly started server after a short warm-up, each with ballots of its own and its integrity line.
The last line is `ab ratio B/A: X.XX` (the mean over the pairs of B's votes/s over A's).
Needs PostgreSQL and Redis on loopback (STAGEVOTE_BENCH_DATABASE_URL / STAGEVOTE_BENCH_REDIS_URL),
wrk and pgbench (installed with apt-get when missing and allowed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import timeit
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from stagevote.core.security import encode_jwt
from stagevote.migrations import upgrade
from stagevote.voting.receipts import receipt_for

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("STAGEVOTE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("STAGEVOTE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "bench password 1"
TWILIO_TOKEN = "bench-twilio-token"
OUR_NUMBER = "+15005550006"
PGBENCH_ROUND = 9  # a round no ballot votes in: pgbench's own rows


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_tool(command: str, package: str) -> str:
    """The path of `command`; installed with apt-get (Debian) when missing and we may, else a clear exit."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"-- {command} is missing: apt-get install -y {package}")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)
        found = shutil.which(command)
        if found:
            return found
    sys.exit(f"bench needs `{command}`: install it with `sudo apt-get install {package}` (Debian/Ubuntu)")


# --- what a run measured ---------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    rate: float  # successful answers per second
    p50_ms: float
    p99_ms: float
    note: str = ""
    answered_2xx: int = 0
    waiting: list[str] = field(default_factory=list)
    slow: list[tuple[int, int]] = field(default_factory=list)  # (ms after the run's first request, latency ms) > 50 ms
    exhausted: int = 0
    errors: int = 0
    cpu_us: float = 0.0  # CPU time of the server's processes per 2xx answer (0: not measured)
    database_cpu_us: float = 0.0  # CPU time of PostgreSQL's processes per 2xx answer (all of them: a quiet machine)
    machine_busy: float = 0.0  # the share of the machine's CPU time (all cores) not idle during the run


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine since boot, from /proc/stat (idle and iowait are not busy)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def group_cpu_seconds(group: int) -> float:
    """User + system CPU time of every live process in a process group (`start_new_session` makes one per
    server), from /proc: a figure per answer that a busy machine's other work does not move much."""
    ticks = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rpartition(")")[2].split()
            if int(fields[2]) == group:  # after the name: state, ppid, pgrp, … utime, stime, cutime, cstime
                ticks += sum(int(f) for f in fields[11:15])  # with the children it reaped: exited ones count
    return ticks / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(command: str) -> float:
    """User + system CPU time of every live process whose name is `command` (`postgres`: the server and its
    backends, the vote writers' included), with that of the children they reaped: a backend that exits
    during a run moves into the postmaster's figure instead of out of the sum (a run once printed −52 µs)."""
    ticks = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            head, _, tail = Path(stat).read_text().rpartition(")")
            if head.partition("(")[2] == command:
                fields = tail.split()
                ticks += sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    name: str,
    url: str,
    requests_file: Path,
    *,
    args: argparse.Namespace,
    cycle: bool,
    seconds: float,
    rate: float = 0.0,
    connections: int = 0,
    server: int = 0,
) -> Run:
    """wrk with bench/requests.lua over `requests_file`; what it answered, and what it left unanswered
    (and, given the server's process group, its CPU time per answer)."""
    out = requests_file.with_suffix(f".{uuid.uuid4().hex[:6]}.out")
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{connections or args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "requests.lua"),
        url,
        "--",
        str(requests_file),
        str(args.threads),
        "cycle" if cycle else "once",
        f"{rate / args.threads:.3f}",  # requests/s per wrk thread; 0: as fast as answers come
    ]
    cpu_before = group_cpu_seconds(server) if server else 0.0
    database_before = named_cpu_seconds("postgres")
    machine_before = machine_cpu_ticks()
    subprocess.run(command, env={**os.environ, "STAGEVOTE_WRK_OUT": str(out)}, check=True, capture_output=True)
    machine_after = machine_cpu_ticks()
    cpu = group_cpu_seconds(server) - cpu_before if server else 0.0
    database_cpu = named_cpu_seconds("postgres") - database_before
    totals: dict[str, int] = {}
    waiting: list[str] = []
    slow: list[tuple[int, int]] = []  # (when sent, CLOCK_MONOTONIC ms; latency ms)
    firsts: list[int] = []  # each thread's first request (CLOCK_MONOTONIC ms)
    for line in out.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "waiting":
            waiting.append(value)
        elif key == "slow":
            at, latency = value.split()
            slow.append((int(at), int(latency)))
        elif key == "first_ms":
            firsts.append(int(value))
        else:
            totals[key] = totals.get(key, 0) + int(value)
    begun = min((f for f in firsts if f > 0), default=0)  # the run's first request, of any thread
    slow = [(max(0, at - begun), latency) for at, latency in slow]
    seconds_run = totals["duration_us"] / 1e6
    answered_2xx = totals["created"] + totals["ok"]
    return Run(
        name=name,
        rate=totals.get("rate_milli", 0) / 1000 or answered_2xx / seconds_run,  # each thread over its own span
        p50_ms=totals["p50_us"] / 1000,
        p99_ms=totals["p99_us"] / 1000,
        answered_2xx=answered_2xx,
        waiting=waiting,
        slow=slow,
        exhausted=totals["exhausted"],
        errors=totals["errors"] + totals["refused"],
        note=f"{totals['refused']} non-2xx" if totals["refused"] else "",
        cpu_us=cpu * 1e6 / answered_2xx if server and answered_2xx else 0.0,
        database_cpu_us=database_cpu * 1e6 / answered_2xx if answered_2xx else 0.0,
        machine_busy=(machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1]),
    )


# --- the system under test -------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    admin: dict[str, str]
    event_id: int
    artists: list[int]
    codes: list[str]
    attendee_ids: list[int]
    phones: list[str]


class Processes:
    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], *, env: dict[str, str], cwd: Path, log_file: Path) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log_file.open("w"), start_new_session=True
        )
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


async def wait_healthy(base: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    async with httpx.AsyncClient() as probe:
        for _ in range(1200):  # a busy machine starts slowly
            if process.poll() is not None:
                sys.exit(f"{base} exited at start-up; see {log_file}:\n{log_file.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get(f"{base}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    sys.exit(f"{base} did not answer /health; see {log_file}")


async def pg_connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )


_logins: dict[tuple[str, str], dict[str, str]] = {}


async def _admin_headers(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """The admin's bearer header, logged in once per server address (logins are rate-limited)."""
    key = (str(client.base_url), email)
    if key not in _logins:
        answer = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        answer.raise_for_status()
        _logins[key] = {"Authorization": f"Bearer {answer.json()['accessToken']}"}
    return _logins[key]


async def build_stage(base: str, email: str, database_url: str, attendees: int, phones_from: int) -> Stage:
    """A live event with four artists and round 1 open, then its attendees (confirmed, one ballot each).

    Each run gets an event of its own, and the attendees come after the round opened: opening or
    closing a round queues a message to every confirmed attendee, which is not what is measured here.
    """
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        admin = await _admin_headers(client, email)
        start = dt.datetime.now(dt.UTC)
        rounds = [{"number": 1, "name": "Round 1"}]
        created = await client.post(
            "/events",
            headers=admin,
            json={
                "title": "Bench night",
                "keyword": f"BENCH{secrets.randbelow(10**6)}",
                "startDate": start.isoformat(),
                "endDate": (start + dt.timedelta(hours=5)).isoformat(),
                "voteConfig": {"votesPerRound": 1, "rounds": rounds, "smsVoting": True},
            },
        )
        created.raise_for_status()
        event_id = created.json()["id"]
        artists, codes = [], []
        for band in ("Owls", "Foxes", "Bears", "Wolves"):
            invited = (await client.post(f"/events/{event_id}/artists", json={"name": band}, headers=admin)).json()
            await client.post(f"/events/{event_id}/artists/{invited['artistId']}/accept", headers=admin)
            artists.append(invited["artistId"])
            codes.append(invited["voteCode"])
        for action in ("publish", "start", "rounds/1/open"):
            (await client.post(f"/events/{event_id}/{action}", headers=admin)).raise_for_status()
    connection = await pg_connect(database_url)
    try:
        now = dt.datetime.now(dt.UTC)
        phones = [f"+1202{phones_from + i:07d}" for i in range(attendees)]
        await connection.copy_records_to_table(
            "attendees",
            records=[(event_id, phone, now, False, False, now, 0) for phone in phones],
            columns=[
                "event_id",
                "phone_number",
                "joined_at",
                "opted_out",
                "pre_registered",
                "confirmed_at",
                "confirmation_attempts",
            ],
        )
        rows = await connection.fetch(
            "SELECT id, phone_number FROM attendees WHERE event_id = $1 ORDER BY id", event_id
        )
    finally:
        await connection.close()
    return Stage(base, admin, event_id, artists, codes, [r["id"] for r in rows], [r["phone_number"] for r in rows])


def write_lines(path: Path, lines: Iterator[str]) -> Path:
    with path.open("w") as out:
        for line in lines:
            out.write(line + "\n")
    return path


def vote_lines(stage: Stage, secret: str, round_number: int, attendees: range, prefix: str) -> Iterator[str]:
    lifetime = dt.timedelta(hours=6)
    for i in attendees:
        attendee_id = stage.attendee_ids[i]
        ballot = encode_jwt(
            {"att": attendee_id, "evt": stage.event_id}, secret=secret, purpose="ballot", lifetime=lifetime
        )
        token = f"{prefix}-vote-{i:07d}"  # 8 characters at least, as VoteRequest wants
        body = f'{{"round":{round_number},"artistId":{stage.artists[i % len(stage.artists)]},"token":"{token}"}}'
        headers = f"Authorization: Bearer {ballot}|Content-Type: application/json"
        yield f"{token}\tPOST\t/events/{stage.event_id}/vote\t{headers}\t{body}"


def sms_lines(stage: Stage, public_url: str, attendees: range) -> Iterator[str]:
    validator = RequestValidator(TWILIO_TOKEN)
    url = f"{public_url}/sms/join"
    for i in attendees:
        sid = f"SM{uuid.uuid4().hex}"
        params = {"MessageSid": sid, "From": stage.phones[i], "To": OUR_NUMBER, "Body": f"VOTE {stage.codes[i % 4]}"}
        signature = validator.compute_signature(url, params)
        headers = f"Content-Type: application/x-www-form-urlencoded|X-Twilio-Signature: {signature}"
        yield f"{sid}\tPOST\t/sms/join\t{headers}\t{urllib.parse.urlencode(params)}"


async def retry_unanswered(base: str, requests_file: Path, waiting: list[str]) -> tuple[int, int]:
    """Send again, as a client would, what wrk left unanswered: (2xx answers, other answers)."""
    if not waiting:
        return 0, 0
    wanted = set(waiting)
    lines = [line.split("\t") for line in requests_file.read_text().splitlines() if line.split("\t", 1)[0] in wanted]
    good = bad = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _, method, path, headers, body in lines:
            pairs = dict(h.split(": ", 1) for h in headers.split("|"))
            status = 0
            for _ in range(20):
                try:
                    status = (await client.request(method, path, headers=pairs, content=body.encode())).status_code
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
                    continue
                break
            good, bad = (good + 1, bad) if 200 <= status < 300 else (good, bad + 1)
    return good, bad


async def integrity(run: Run, stage: Stage, database_url: str, round_number: int, requests_file: Path) -> str:
    retried_ok, retried_bad = await retry_unanswered(stage.base, requests_file, run.waiting)
    answered = run.answered_2xx + retried_ok
    connection = await pg_connect(database_url)
    try:
        rows = int(
            await connection.fetchval(
                "SELECT count(*) FROM votes WHERE event_id = $1 AND round = $2", stage.event_id, round_number
            )
        )
    finally:
        await connection.close()
    board = -1
    async with httpx.AsyncClient(base_url=stage.base, timeout=30) as client:
        for _ in range(50):  # the tally follows each batch's commit by a moment
            board = (await client.get(f"/events/{stage.event_id}/leaderboard?round={round_number}")).json()[
                "totalVotes"
            ]
            if board == rows:
                break
            await asyncio.sleep(0.1)
    retried = f" (+ {len(run.waiting)} unanswered when wrk stopped, retried: {retried_ok} 2xx, {retried_bad} other)"
    figures = f"2xx answers {answered}{retried if run.waiting else ''}, new rows {rows}, leaderboard {board}"
    if answered == rows == board and not retried_bad:
        return f"OK: {figures}"
    differences = []
    if answered != rows:
        differences.append(f"{rows - answered:+d} rows against answers")
    if board != rows:
        differences.append(f"leaderboard {board - rows:+d} against rows")
    return f"DIFFERENCE ({', '.join(differences) or 'retries refused'}): {figures}"


async def analyze(database_url: str) -> None:
    """Statistics of the tables just filled, as autovacuum gathers them on a production database within a
    minute of a bulk insert (a machine's PostgreSQL may run without autovacuum: this one's says `SHOW
    autovacuum`). The vote path's statements are written to plan well without them too. Then a CHECKPOINT:
    the set-up's dirty pages are written now, not by a checkpoint during the first measured run (an A/B's
    first run was twice as slow as the others without it)."""
    connection = await pg_connect(database_url)
    try:
        await connection.execute("ANALYZE")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def batch_totals(base: str) -> tuple[float, float, int]:
    """The group commit's batches and their votes so far, summed over the server's workers, and how many
    workers answered (each answers /metrics from its own registry: asked many times, every worker answers
    at least once, and the counts no longer move)."""
    seen: dict[tuple[float, float], None] = {}
    pattern = re.compile(r"^stagevote_vote_batch_size_(count|sum) ([0-9.e+]+)$", re.MULTILINE)
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: any worker may take it
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=fresh) as client:
        for _ in range(40):
            found = dict(pattern.findall((await client.get("/metrics")).text))
            if "count" in found:
                seen[(float(found["count"]), float(found["sum"]))] = None
    return sum(c for c, _ in seen), sum(v for _, v in seen), len(seen)


def batches_line(after: tuple[float, float, int], before: tuple[float, float, int] = (0.0, 0.0, 0)) -> str:
    """The batches between two readings of `batch_totals`."""
    batches, votes = after[0] - before[0], after[1] - before[1]
    mean = votes / batches if batches else 0.0
    return f"{batches:.0f} batches of {mean:.1f} votes on average ({after[2]} workers answered)"


def run_pgbench(args: argparse.Namespace, database_url: str, stage: Stage, tmp: Path) -> Run:
    script = tmp / "vote.sql"
    script.write_text(
        "\\set a :first + :client_id\n"
        "INSERT INTO votes (attendee_id, event_id, artist_id, round, slot, token, channel, created_at)\n"
        "SELECT :a, :event, :artist, :round, n.slot, 'pgbench-' || :client_id || '-' || n.slot, 'web', now()\n"
        "FROM (SELECT coalesce(max(slot), 0) + 1 AS slot FROM votes\n"
        "      WHERE attendee_id = :a AND event_id = :event AND round = :round) n\n"
        "WHERE n.slot <= 1000000000\n"
        "ON CONFLICT DO NOTHING RETURNING id;\n"
    )
    url = make_url(database_url)
    prefix = tmp / "pgbench"
    command = [
        args.pgbench,
        "-n",
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
        "-c",
        str(args.connections),
        "-j",
        str(args.threads),
        "-T",
        str(int(args.seconds)),
        "-M",
        "prepared",
        "-f",
        str(script),
        "-D",
        f"first={stage.attendee_ids[0]}",
        "-D",
        f"event={stage.event_id}",
        "-D",
        f"artist={stage.artists[0]}",
        "-D",
        f"round={PGBENCH_ROUND}",
        "--log",
        f"--log-prefix={prefix}",
        url.database or "postgres",
    ]
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    result = subprocess.run(command, env=env, cwd=tmp, check=False, capture_output=True, text=True)
    if result.returncode != 0:  # a busy server's connections all taken, say: say so, and go on without it
        log(f"  pgbench failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-500:]}")
        return Run(name="pgbench, same insert (database ceiling)", rate=0.0, p50_ms=0.0, p99_ms=0.0, note="failed")
    processed = int(re.search(r"number of transactions actually processed: (\d+)", result.stdout).group(1))  # type: ignore[union-attr]
    latencies: list[int] = []
    for name in glob.glob(f"{prefix}*"):
        with open(name) as lines:
            latencies += [int(line.split()[2]) for line in lines]
    latencies.sort()
    seconds = float(re.search(r"duration: (\d+) s", result.stdout).group(1))  # type: ignore[union-attr]
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    run = Run("pgbench, same insert (database ceiling)", tps, percentile(latencies, 50), percentile(latencies, 99))
    run.answered_2xx = processed
    run.note = f"{processed} transactions in {seconds:g} s"
    return run


def start_profiles(
    server: subprocess.Popen[bytes], tmp: Path, args: argparse.Namespace
) -> list[tuple[Path, subprocess.Popen[bytes]]]:
    """py-spy (collapsed stacks) on each of the server's worker processes, for the length of the peak run."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("-- --profile needs py-spy: .venv/bin/pip install py-spy")
        return []
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True, text=True, check=False
    )
    children = listed.stdout
    spies = []
    for pid in children.split():
        out = tmp / f"profile-{pid}-{uuid.uuid4().hex[:6]}.txt"
        command = [spy, "record", "--pid", pid, "--format", "raw", "--rate", "250", "--nonblocking"]
        command += ["--duration", str(int(args.seconds)), "--output", str(out)]
        spies.append((out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))  # noqa: S603
    return spies


_PACKAGES = (
    "stagevote",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "asyncpg",
    "redis",
    "jwt",
    "prometheus_client",
    "structlog",
    "sqlalchemy",
    "socketio",
    "engineio",
    "httptools",
    "uvloop",
    "asyncio",
    "json",
)


def _where(frame: str) -> tuple[str, str]:
    """(package, "function (file)") of a py-spy frame "function (path/to/file.py:line)"."""
    match = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return "other", frame
    function, path = match.groups()
    parts = path.split("/")
    package = next((p for p in parts if p in _PACKAGES), "python" if "python3" in path else "other")
    return package, f"{function} ({parts[-1]})"


def finish_profiles(spies: list[tuple[Path, subprocess.Popen[bytes]]], run: str = "web vote peak") -> str:
    """Where the workers' CPU went during the peak run: by package (own time), and the costliest functions."""
    if not spies:
        return ""
    by_package: dict[str, int] = {}
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for out, spy in spies:
        spy.wait(timeout=120)
        if not out.exists():
            continue
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():  # a line py-spy cut short
                continue
            frames = stack.split(";")
            n = int(count)
            total += n
            package, leaf = _where(frames[-1])
            by_package[package] = by_package.get(package, 0) + n
            own[leaf] = own.get(leaf, 0) + n
            for name in {_where(f)[1] for f in frames if _where(f)[0] == "stagevote"}:
                inclusive[name] = inclusive.get(name, 0) + n
    if not total:
        return "  profile: py-spy recorded nothing"
    share = lambda n: f"{100 * n / total:5.1f}%"  # noqa: E731
    lines = [f"  profile of the server's workers during the {run} run (py-spy, {total} samples on CPU):"]
    lines.append(
        "    own time by package: "
        + ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in sorted(by_package.items(), key=lambda kv: -kv[1]))
    )
    lines.append("    costliest functions (own time):")
    lines += [f"      {share(n)}  {name}" for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:15]]
    lines.append("    stagevote's code (inclusive):")
    lines += [f"      {share(n)}  {name}" for name, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:15]]
    return "\n".join(lines)


def tail_timeline(run: Run) -> str:
    """Where a run's answers over 50 ms fell: how many, and the seconds of the run that held most of them."""
    if not run.slow:
        return "no answer over 50 ms"
    by_second: dict[int, list[int]] = {}
    for at_ms, latency_ms in run.slow:
        by_second.setdefault(at_ms // 1000, []).append(latency_ms)
    worst = sorted(by_second.items(), key=lambda item: -len(item[1]))[:6]
    seconds = ", ".join(f"{second} s: {len(late)} (max {max(late)} ms)" for second, late in sorted(worst))
    share = len(run.slow) / run.answered_2xx if run.answered_2xx else 0.0
    return (
        f"{len(run.slow)} answers over 50 ms ({share:.2%}), in {len(by_second)} of the run's seconds;"
        f" most in second {seconds}"
    )


def percentile(ordered_us: list[int], p: float) -> float:
    if not ordered_us:
        return float("nan")
    return ordered_us[min(len(ordered_us) - 1, int(p / 100 * len(ordered_us)))] / 1000


def log_cpu(ceiling: Run, peak: Run, eighty: Run) -> None:
    """CPU per answer of the server and PostgreSQL, at the peak and at 80% of it, and how busy the machine was."""
    if peak.cpu_us and ceiling.cpu_us:
        log(
            f"  server CPU per answer: stagevote {peak.cpu_us:.0f} µs, bare framework {ceiling.cpu_us:.0f} µs"
            f" (framework/stagevote {ceiling.cpu_us / peak.cpu_us:.2f}: what a busy machine moves least);"
            f" PostgreSQL {peak.database_cpu_us:.0f} µs per vote (all its processes)"
        )
    if eighty.cpu_us:
        log(
            f"  at 80% of peak: server CPU {eighty.cpu_us:.0f} µs per answer, PostgreSQL"
            f" {eighty.database_cpu_us:.0f} µs per vote; the machine's CPU busy {eighty.machine_busy:.0%}"
            f" (at the peak {peak.machine_busy:.0%})"
        )


def receipt_cost_line(peak: Run) -> str:
    """What a vote's receipt costs (issue 16: at most 5% of the throughput): `receipt_for` timed in this
    process, beside the server's CPU per answer at the peak. The vote path writes nothing for a receipt
    (derived from the row and its id, never stored), so this call is its share of the path."""
    cast_at = dt.datetime.now(dt.UTC)

    def one() -> str:
        return receipt_for(
            "bench secret key, as long as a real one",
            vote_id=123_456,
            event_id=12,
            round_number=1,
            attendee_id=99_999,
            artist_id=7,
            token=str(uuid.UUID(int=1)),
            created_at=cast_at,
        )

    micros = min(timeit.repeat(one, number=20_000, repeat=5)) / 20_000 * 1e6
    share = f": {micros / peak.cpu_us:.1%} of the server's {peak.cpu_us:.0f} µs per answer" if peak.cpu_us else ""
    return f"  receipts: {micros:.1f} µs of CPU per vote (receipt_for, timed in the bench process){share}"


def table(title: str, runs: list[Run], ceiling: Run) -> None:
    log(f"\n{title}")
    log(f"  {'system':<44} {'votes/s':>9} {'p50':>9} {'p99':>9} {'share of ceiling':>17} {'server CPU/answer':>18}")
    for run in runs:
        share = run.rate / ceiling.rate if ceiling.rate else float("nan")
        cpu = f"{run.cpu_us:>15.0f} µs" if run.cpu_us else f"{'':>18}"
        line = f"  {run.name:<44} {run.rate:>9.0f} {run.p50_ms:>6.1f} ms {run.p99_ms:>6.1f} ms {share:>17.2f} {cpu}"
        log(line + (f"   {run.note}" if run.note else ""))


@dataclass
class System:
    """`stagevote serve` and `stagevote worker` on a database of their own, as `system` started them."""

    tmp: Path
    name: str  # the database's
    database_url: str
    public_url: str
    env: dict[str, str]
    secret: str
    email: str  # an admin's, whose password is PASSWORD
    serve: list[str]  # the command that started the server
    processes: Processes
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    worker_log: Path


@contextlib.asynccontextmanager
async def system(args: argparse.Namespace, prefix: str = "stagevote-bench-") -> AsyncIterator[System]:
    """A fresh PostgreSQL database, migrated, an admin, a worker and `stagevote serve --workers
    args.workers` on PostgreSQL + Redis with `args.server_env`; all of it gone afterwards unless `args.keep`."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    name = f"stagevote_bench_{uuid.uuid4().hex[:8]}"
    admin_connection = await pg_connect(PG)
    await admin_connection.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    await upgrade(database_url)
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(48)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {
        "STAGEVOTE_DATABASE_URL": database_url,
        "STAGEVOTE_REDIS_URL": REDIS,
        "STAGEVOTE_BROKER_URL": REDIS,
        "STAGEVOTE_REDIS_KEY_PREFIX": f"stagevote-bench:{uuid.uuid4().hex[:8]}:",
        "STAGEVOTE_SECRET_KEY": secret,
        "STAGEVOTE_PUBLIC_URL": public_url,
        "STAGEVOTE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "STAGEVOTE_LOG_LEVEL": "WARNING",
        "STAGEVOTE_ROUND_CLOCK_SECONDS": "0",
    }
    if getattr(args, "pool_size", 0):
        env["STAGEVOTE_DB_POOL_SIZE"] = str(args.pool_size)
    for setting in args.server_env:
        key, _, value = setting.partition("=")
        env[key] = value
    processes = Processes()
    cli = [sys.executable, "-m", "stagevote.cli"]
    try:
        email = "bench-admin@example.com"
        subprocess.run(  # noqa: S603, ASYNC221 - before the server starts
            [*cli, "create-user", "--email", email, "--password", PASSWORD, "--role", "admin"],
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        worker_log, server_log = tmp / "worker.log", tmp / "serve.log"
        worker = processes.start([*cli, "worker"], env=env, cwd=tmp, log_file=worker_log)
        serve = [*cli, "serve", "--port", str(port), "--workers", str(args.workers)]
        server = processes.start(serve, env=env, cwd=tmp, log_file=server_log)
        await wait_healthy(public_url, server, server_log)
        yield System(
            tmp, name, database_url, public_url, env, secret, email, serve, processes, server, worker, worker_log
        )
    finally:
        processes.stop_all()
        if not args.keep:
            await admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            shutil.rmtree(tmp, ignore_errors=True)
        await admin_connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="length of each measured wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="stagevote serve --workers")
    parser.add_argument(
        "--ballots", type=int, default=250_000, help="attendees of each event (one vote each): enough for --seconds"
    )
    parser.add_argument("--no-sms", action="store_true", help="leave out the SMS webhook")
    parser.add_argument(
        "--paced-connections", type=int, default=0, help="connections of the 80%% run (default: 4 × --connections)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=0, help="STAGEVOTE_DB_POOL_SIZE of the server (default: its own)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and files (for a look afterwards)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the server and worker, to try one (STAGEVOTE_VOTE_WRITER_CONNECTIONS=2); repeatable",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server's workers during the peak run (pip install py-spy)"
    )
    parser.add_argument(
        "--ab",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="compare servers A (as configured) and B (with this setting too) on the web peak only; repeatable",
    )
    parser.add_argument("--pairs", type=int, default=4, help="A/B pairs of runs with --ab")
    args = parser.parse_args()
    args.wrk = ensure_tool("wrk", "wrk")
    args.pgbench = ensure_tool("pgbench", "postgresql")  # Debian ships pgbench with the server

    async with system(args) as sut:
        await measure(args, sut)


async def measure(args: argparse.Namespace, sut: System) -> None:  # noqa: PLR0915 - one run, top to bottom
    """The whole `make bench` run (or `--ab`'s) on the system `system` started."""
    tmp, name, database_url, public_url, secret, email = (
        sut.tmp, sut.name, sut.database_url, sut.public_url, sut.secret, sut.email
    )  # fmt: skip
    env, processes, server, worker, worker_log = sut.env, sut.processes, sut.server, sut.worker, sut.worker_log
    bare_port = free_port()
    if args.ab:
        log(f"-- A/B: {args.pairs} pairs (PostgreSQL database {name}, files in {tmp})")
        await compare(args, sut)
        return
    log(f"-- setting up {args.ballots} attendees with ballots (PostgreSQL database {name}, files in {tmp})")
    stage = await build_stage(public_url, email, database_url, args.ballots, 1_000_000)
    stage_80 = await build_stage(public_url, email, database_url, args.ballots, 3_000_000)
    await analyze(database_url)
    everyone = range(args.ballots)
    web_peak = write_lines(tmp / "web-peak.tsv", vote_lines(stage, secret, 1, everyone, "peak"))
    web_80 = write_lines(tmp / "web-80.tsv", vote_lines(stage_80, secret, 1, everyone, "eighty"))
    if not args.no_sms:
        stage_sms = await build_stage(public_url, email, database_url, args.ballots, 5_000_000)
        sms = write_lines(tmp / "sms.tsv", sms_lines(stage_sms, public_url, everyone))

    load = f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, distinct ballots and tokens"
    log(f"-- framework ceiling: bench/bare_app.py under uvicorn --workers {args.workers} ({load})")
    bare_log = tmp / "bare.log"
    bare = processes.start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(bare_port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log_file=bare_log,
    )
    await wait_healthy(f"http://127.0.0.1:{bare_port}", bare, bare_log)
    bare_url = f"http://127.0.0.1:{bare_port}"
    ceiling = run_wrk(
        "bare FastAPI (framework ceiling)",
        bare_url,
        web_peak,
        args=args,
        cycle=True,
        seconds=args.seconds,
        server=bare.pid,
    )
    sms_ceiling = None
    if not args.no_sms:
        sms_ceiling = run_wrk(
            "bare FastAPI, form (framework ceiling)",
            bare_url,
            sms,
            args=args,
            cycle=True,
            seconds=args.seconds,
            server=bare.pid,
        )
    processes.stop(bare)

    log("-- database ceiling: pgbench, the same single-row insert, one vote per transaction")
    database = run_pgbench(args, database_url, stage, tmp)

    log(f"-- stagevote serve --workers {args.workers}, PostgreSQL + Redis, a worker running: peak")
    spies = start_profiles(server, tmp, args) if args.profile else []
    peak = run_wrk(
        f"stagevote serve --workers {args.workers}",
        public_url,
        web_peak,
        args=args,
        cycle=False,
        seconds=args.seconds,
        server=server.pid,
    )
    profile = finish_profiles(spies)
    batches = await batch_totals(public_url)
    peak_check = await integrity(peak, stage, database_url, 1, web_peak)

    # 80% of peak as an arrival rate: bench/requests.lua paces each wrk thread to its share of the target
    # from a monotonic clock, over four times the connections, so that a late answer holds up few others
    target, many = 0.8 * peak.rate, args.paced_connections or 4 * args.connections
    log(f"-- stagevote at 80% of peak: {target:.0f} votes/s arriving, over {many} connections")
    before_80 = await batch_totals(public_url)
    eighty_spies = start_profiles(server, tmp, args) if args.profile else []
    eighty = run_wrk(
        "stagevote at 80% of peak",
        public_url,
        web_80,
        args=args,
        cycle=False,
        seconds=args.seconds,
        rate=target,
        connections=many,
        server=server.pid,
    )
    eighty_profile = finish_profiles(eighty_spies, "80% of peak")
    eighty.note = f"{eighty.rate / peak.rate:.2f} of peak ({many} connections, paced to {target:.0f}/s)"
    batches_80 = await batch_totals(public_url)
    eighty_check = await integrity(eighty, stage_80, database_url, 1, web_80)

    sms_run = sms_check = None
    sms_profile = ""
    if not args.no_sms:
        log("-- stagevote: the signed SMS vote webhook, peak")
        sms_spies = start_profiles(server, tmp, args) if args.profile else []
        sms_run = run_wrk(
            f"stagevote serve --workers {args.workers}",
            public_url,
            sms,
            args=args,
            cycle=False,
            seconds=args.seconds,
            server=server.pid,
        )
        sms_profile = finish_profiles(sms_spies, "SMS peak")
        sms_check = await integrity(sms_run, stage_sms, database_url, 1, sms)
    alive = "running" if worker.poll() is None else f"exited ({worker.returncode}; see {worker_log})"

    log("\n== make bench: the vote path side by side (2-core machine class; on a shared machine, indicative only)")
    log(f"web votes, POST /events/{{id}}/vote: {load}")
    table("web vote", [ceiling, database, peak, eighty], ceiling)
    log(f"  integrity, peak: {peak_check}")
    log(f"  group commit: peak run {batches_line(batches)}; 80% run {batches_line(batches_80, before_80)}")
    log(f"  integrity, 80% of peak: {eighty_check}")
    log(f"  80% of peak, the tail: {tail_timeline(eighty)}")
    for run in (peak, eighty):
        if run.exhausted:
            log(f"  NOTE: {run.name} ran out of ballots ({run.exhausted} requests of nothing): raise --ballots")
    if database.rate:
        log(f"  vote/database ratio: {peak.rate / database.rate:.2f}   ({database.note})")
    if sms_run is not None and sms_ceiling is not None:
        table('SMS votes, POST /sms/join (signed "VOTE <code>")', [sms_ceiling, sms_run], sms_ceiling)
        log(f"  integrity: {sms_check}")
        log(f"  sms/framework ratio: {sms_run.rate / sms_ceiling.rate:.2f}")
        if sms_profile:
            log(sms_profile)
    log(f"  the worker: {alive}; {os.cpu_count()} cores; wrk, PostgreSQL and Redis on the same machine")
    for one in (profile, eighty_profile):
        if one:
            log(one)
    log_cpu(ceiling, peak, eighty)
    log(receipt_cost_line(peak))
    if not ceiling.rate:
        sys.exit(f"the framework ceiling answered no 2xx ({ceiling.note}): see bench/bare_app.py")
    log(f"vote/framework ratio: {peak.rate / ceiling.rate:.2f}")


async def compare(args: argparse.Namespace, sut: System) -> None:
    """`--ab`: the web peak on server A and on server B, in pairs of alternating order; each run on a fresh
    server, warmed up for two seconds on ballots of its own stage, then measured on the rest."""
    public_url, email, database_url, secret, processes, server = (
        sut.public_url, sut.email, sut.database_url, sut.secret, sut.processes, sut.server
    )  # fmt: skip
    env, serve, tmp = sut.env, sut.serve, sut.tmp
    env_b = env | dict(setting.partition("=")[::2] for setting in args.ab)
    order = [variant for n in range(args.pairs) for variant in (("A", "B") if n % 2 == 0 else ("B", "A"))]
    warm = max(1, args.ballots // 10)
    stages = []
    for n in range(len(order)):  # each run's own events: one to warm up on, one measured
        phones = 1_000_000 * (n + 1)
        warm_stage = await build_stage(public_url, email, database_url, warm, phones + 500_000)
        stage = await build_stage(public_url, email, database_url, args.ballots, phones)
        warm_up = write_lines(tmp / f"ab{n}-warm.tsv", vote_lines(warm_stage, secret, 1, range(warm), f"w{n}"))
        measured = write_lines(tmp / f"ab{n}.tsv", vote_lines(stage, secret, 1, range(args.ballots), f"ab{n}"))
        stages.append((stage, warm_up, measured))
    settle_stage = await build_stage(public_url, email, database_url, args.ballots, 500_000)
    settle = write_lines(tmp / "ab-settle.tsv", vote_lines(settle_stage, secret, 1, range(args.ballots), "settle"))
    await analyze(database_url)
    # the first run after the set-up ran at a third of the others' rate, PostgreSQL busy for ~10 s
    # (a checkpoint first does not prevent it): a run of its own takes that, and is not counted
    settling = run_wrk("settle", public_url, settle, args=args, cycle=False, seconds=args.seconds)
    log(f"   settling run on server A (not counted): {settling.rate:.0f} votes/s")
    results: dict[str, list[Run]] = {"A": [], "B": []}
    checks = []
    for n, variant in enumerate(order):
        processes.stop(server)
        log_file = tmp / f"serve-{n}-{variant}.log"
        server = processes.start(serve, env=env if variant == "A" else env_b, cwd=tmp, log_file=log_file)
        await wait_healthy(public_url, server, log_file)
        stage, warm_up, measured = stages[n]
        run_wrk("warm-up", public_url, warm_up, args=args, cycle=False, seconds=2)
        run = run_wrk(variant, public_url, measured, args=args, cycle=False, seconds=args.seconds, server=server.pid)
        check = await integrity(run, stage, database_url, 1, measured)
        checks.append(check)
        results[variant].append(run)
        log(
            f"   run {n + 1:>2} {variant}: {run.rate:6.0f} votes/s, p50 {run.p50_ms:5.1f} ms, p99 {run.p99_ms:6.1f} ms,"
            f" server CPU {run.cpu_us:4.0f} µs/answer, PostgreSQL {run.database_cpu_us:3.0f} µs/vote | {check}"
        )
    ratios = [b.rate / a.rate for a, b in zip(results["A"], results["B"], strict=True) if a.rate]
    cpu = [b.cpu_us - a.cpu_us for a, b in zip(results["A"], results["B"], strict=True)]
    mean = sum(ratios) / len(ratios) if ratios else float("nan")
    load = f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"
    log(f"\n== A/B on the web vote peak ({args.pairs} pairs, {load})")
    log(f"  B = A with {' '.join(args.ab)}")
    for variant in ("A", "B"):
        rates = sorted(run.rate for run in results[variant])
        cpus = [run.cpu_us for run in results[variant]]
        log(
            f"  {variant}: votes/s {', '.join(f'{r:.0f}' for r in rates)} (mean {sum(rates) / len(rates):.0f});"
            f" server CPU/answer mean {sum(cpus) / len(cpus):.0f} µs"
        )
    log(f"  B/A votes/s per pair: {', '.join(f'{r:.3f}' for r in ratios)}")
    log(f"  B−A server CPU per answer per pair: {', '.join(f'{c:+.0f} µs' for c in cpu)}")
    bad = [check for check in checks if not check.startswith("OK")]
    log(f"  integrity: {'OK in every run' if not bad else f'{len(bad)} runs with a DIFFERENCE (above)'}")
    log(f"ab ratio B/A: {mean:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
