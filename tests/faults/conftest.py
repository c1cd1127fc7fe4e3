"""The fault tests' harness: a PostgreSQL and a Redis of each test's own, `stagevote serve` and `stagevote worker` as
real processes, and fans voting against them while something breaks.

The shared PostgreSQL (5432) and Redis (6379) of the machine are never stopped: other test runs use them. Each
fault test starts its own PostgreSQL (`initdb` + `pg_ctl` from the Debian package, as the `postgres` user when the
test runs as root, since `initdb` refuses root) and its own `redis-server`, on free ports, stops and starts them
with signals (through `pg_ctl` for PostgreSQL), and removes them at the end. Readiness is polled, never slept for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import glob
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from aiohttp import web

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event
from stagevote.migrations import upgrade
from tests.conftest import Actors
from tests.factories import Ballot, Stage, build_stage, new_phone
from tests.messaging.conftest import FakeTwilio
from tests.processes import environment
from tests.realtime.test_live import free_port

CLI = [sys.executable, "-m", "stagevote.cli"]


async def until(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    within: float = 30.0,
    every: float = 0.05,
    seen: Callable[[], object] = lambda: "",
) -> None:
    """Poll `check` (a function, or a coroutine function) until it holds; fail saying `what` did not happen within
    `within` seconds, and what was `seen` instead."""
    deadline = time.monotonic() + within
    while True:
        held = check()
        if held if isinstance(held, bool) else await held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s; {seen()}")
        await asyncio.sleep(every)


# --- a PostgreSQL of the test's own ------------------------------------------------------------------------


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    binary = found[-1] if found else shutil.which(name)
    if binary is None:
        pytest.fail(f"{name} not found: the fault tests need the postgresql package (apt-get install postgresql)")
    return binary


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in a temporary folder, on its own port, owned by this test alone."""

    port: int
    folder: Path
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, command: list[str]) -> list[str]:
        # initdb and postgres refuse to run as root: root hands the cluster to the `postgres` user
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def _pg_ctl(self, *arguments: str) -> None:
        command = self._as_owner([_postgres_bin("pg_ctl"), "-D", str(self.folder / "data"), *arguments])
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, f"pg_ctl {' '.join(arguments)}: {done.stdout}{done.stderr}\n{self.log}"

    def init(self) -> None:
        command = [_postgres_bin("initdb"), "-D", str(self.folder / "data"), "-U", "postgres", "--auth=trust"]
        done = subprocess.run(
            self._as_owner([*command, "--no-sync", "-E", "UTF8"]), capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        """Start the server and wait (pg_ctl -w polls) until it takes connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` as a crash (SIGQUIT, recovery from the WAL at start), `fast` cleanly."""
        self._pg_ctl("stop", "-w", "-t", "60", "-m", mode)

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return (self.folder / "data" / "postmaster.pid").exists()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    folder = Path(tempfile.mkdtemp(prefix="stagevote-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PrivatePostgres(free_port(), folder, folder / "postgres.log")
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- a Redis of the test's own -----------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A redis-server of the test's own (never the shared one on 6379), stopped and started at will on one port.

    It saves nothing by itself (`--save ""`, no AOF); `stop(keep_data=True)` writes its data at shutdown to its
    folder, and the next `start` loads it, as a Redis with persistence comes back. `pause` makes it hang."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (apt-get install -y redis-server)"
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            [binary, *options, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    if client.ping():
                        return
                if self.process.poll() is not None:
                    break
                time.sleep(0.025)
        finally:
            client.close()
        raise AssertionError(f"redis-server on port {self.port} did not start")

    def pause(self) -> None:
        """SIGSTOP: a hung Redis, its connections open, answering nothing, its data kept."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, *, keep_data: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.resume()  # a paused server would not hear the shutdown
        if keep_data:
            client = redis.Redis.from_url(self.url)
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown(save=True)  # the connection drops as the server exits
            client.close()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, keep_data: bool = False) -> None:
        self.stop(keep_data=keep_data)
        self.start()


@contextlib.contextmanager
def redis_of_our_own() -> Iterator[PrivateRedis]:
    """A private Redis, started, on a free port; stopped and removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="stagevote-faults-redis-"))
    server = PrivateRedis(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with redis_of_our_own() as server:
        yield server


# --- stagevote on them -------------------------------------------------------------------------------------


@pytest.fixture
def fault_settings(private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path) -> Settings:
    """Settings of the processes under test: the private PostgreSQL (migrated) and Redis."""
    asyncio.run(upgrade(private_postgres.url))
    return Settings(
        database_url=private_postgres.url,
        redis_url=private_redis.url,
        redis_key_prefix="stagevote-faults:",
        secret_key="faults-secret-" + "f" * 40,
        public_url="http://127.0.0.1",
        secret_key_file=tmp_path / "unused-key",
        recap_storage=f"file://{tmp_path}/recaps",
        # a broadcast goes whatever the hour where its fans are (tests/messaging/test_quiet_hours.py tests the hours)
        quiet_hours_start=dt.time(0, 0),
        quiet_hours_end=dt.time(0, 0),
        marketing_per_day=0,
    )


@dataclass
class Process:
    """A `stagevote` command running as a process of its own, its output in a log file."""

    arguments: list[str]
    settings: Settings
    log: Path
    process: subprocess.Popen[bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)  # environment beyond the settings

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [*CLI, *self.arguments],
                env=environment(self.settings) | self.extra,
                cwd=self.log.parent,
                stdout=log,
                stderr=log,
            )

    def kill(self, signal_number: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(signal_number)
        self.process.wait(timeout=30)

    def end(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Server(Process):
    """`stagevote serve` on a port of its own."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start_and_wait(self) -> None:
        self.start()
        deadline = time.monotonic() + 120  # a cold start on a busy two-core machine takes tens of seconds
        async with httpx.AsyncClient() as probe:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"{self.url}/health")).status_code == 200:
                        return
                assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.url} did not start; see {self.log}")


@pytest.fixture
def server_environment() -> dict[str, str]:
    """Environment of the server beyond its settings (a test module may override it)."""
    return {}


@pytest.fixture
async def server(fault_settings: Settings, server_environment: dict[str, str], tmp_path: Path) -> AsyncIterator[Server]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    served = Server(["serve", "--port", str(port)], fault_settings, log, extra=server_environment, port=port)
    await served.start_and_wait()
    try:
        yield served
    finally:
        served.end()


@pytest.fixture
async def runtime_of(fault_settings: Settings) -> AsyncIterator[Runtime]:
    """The test's own handle on the private database (ballots, users): never the processes under test."""
    runtime = Runtime.build(fault_settings)
    try:
        yield runtime
    finally:
        await runtime.close()


async def ballots(runtime: Runtime, event_id: int, count: int) -> list[Ballot]:
    """`count` confirmed attendees of the event, added at once, with the ballot tokens the app gives them."""
    async with unit_of_work(runtime.sessionmaker) as session:
        event = await session.get(Event, event_id)
        assert event is not None
        attendees = [Attendee(event_id=event_id, phone_number=new_phone(), confirmed_at=utcnow()) for _ in range(count)]
        session.add_all(attendees)
        await session.flush()
        return [
            Ballot(a.id, attendees_service.ballot_token_for(runtime=runtime, attendee=a, event=event))
            for a in attendees
        ]


VOTES_PER_BALLOT = 20  # the most voteConfig allows: fewer ballots to make


async def live_stage(api: httpx.AsyncClient, runtime: Runtime) -> Stage:
    """A live event on the server `api` talks to, round 1 open, each ballot good for 20 votes."""
    admin = await Actors(runtime).make("admin")
    return await build_stage(api, runtime, admin, votesPerRound=VOTES_PER_BALLOT)


# --- fans voting -------------------------------------------------------------------------------------------


@dataclass
class VoteLoad:
    """Fans voting through `stagevote serve`, each vote a fresh token, as fast as the answers come (paced a little,
    two shared cores). What the server answered is kept: the tokens it acknowledged (200/201), every status."""

    url: str
    stage: Stage
    ballots: list[Ballot]
    clients: int = 8
    pace: float = 0.02
    acknowledged: set[str] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)  # status → count; 0: the connection failed
    last: dict[int, httpx.Response] = field(default_factory=dict)  # the last answer of each status
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _slots: Iterator[int] = field(default_factory=itertools.count)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._fan(n)) for n in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def acknowledge(self, more: int, when: str, *, within: float = 30.0) -> None:
        """Wait until `more` votes more than now were acknowledged."""
        target = len(self.acknowledged) + more
        what = f"{more} votes acknowledged {when}"
        await until(lambda: len(self.acknowledged) >= target, what, within=within, seen=self.seen)

    def seen(self) -> str:
        """What the fans saw so far (for a failure's message)."""
        last = {status: r.text[:200] for status, r in self.last.items() if status not in (200, 201)}
        return f"acknowledged {len(self.acknowledged)}, answers {dict(self.answers)}, last refusals {last}"

    async def _fan(self, n: int) -> None:
        artists = list(self.stage.artists.values())
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                slot = next(self._slots)  # a ballot takes half its quota of attempts: a lost answer costs a slot
                ballot = self.ballots[slot // (VOTES_PER_BALLOT // 2) % len(self.ballots)]
                token = f"fan{n}-{uuid.uuid4().hex[:12]}"
                body = {"round": 1, "artistId": artists[slot % len(artists)], "token": token}
                try:
                    r = await http.post(f"/events/{self.stage.event_id}/vote", json=body, headers=ballot.headers)
                except httpx.TransportError:
                    self.answers[0] += 1
                else:
                    self.answers[r.status_code] += 1
                    self.last[r.status_code] = r
                    if r.status_code in (200, 201):
                        self.acknowledged.add(token)
                await asyncio.sleep(self.pace)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[VoteLoad]:
        self.start()
        try:
            yield self
        finally:
            await self.stop()


async def database_rows(url: str, query: str, *arguments: object) -> list[asyncpg.Record]:
    """Rows read straight from PostgreSQL (the truth a test checks the answers against)."""
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query, *arguments))
    finally:
        await connection.close()


async def stored_tokens(url: str, event_id: int) -> set[str]:
    rows = await database_rows(url, "SELECT token FROM votes WHERE event_id = $1", event_id)
    return {r["token"] for r in rows}


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    """The fake Twilio of tests/messaging (its message list included, which the outbox asks before it sends a
    message again); an answer it holds back ends when the worker waiting for it dies."""
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", fake.list_messages)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.port = runner.addresses[0][1]
    try:
        yield fake
    finally:
        await runner.cleanup()
