"""Real nginx, with the config deploy/ ships, in front of two `stagevote serve` processes; one is SIGKILLed.

Votes and Socket.IO screens go through nginx. When the instance the screens are connected to dies
mid-load, the screens reconnect through nginx to the other and keep getting leaderboards, and every
vote that was answered 201/200 is in the database. nginx is the Debian package (`make nginx`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
import socketio
from sqlalchemy.engine import make_url

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from stagevote.migrations import upgrade
from tests.conftest import PASSWORD, PG_URL, REDIS_URL, Actor, _create_database, _drop_database
from tests.realtime.test_live import free_port
from tests.voting.conftest import Ballot, Stage, build_stage

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "stagevote.cli"]
TEMPLATE = ROOT / "deploy" / "nginx" / "stagevote.conf.template"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.fail("nginx is not installed: `make nginx` (or apt-get install nginx) installs the Debian package")
    return found


def render(template: str, values: dict[str, str]) -> str:
    """What the nginx image's envsubst does with the template: `${NAME}` replaced, nginx's own `$vars` kept."""
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)
    assert "${" not in rendered
    return rendered


@dataclass
class Cluster:
    settings: Settings
    base: str  # nginx
    instances: dict[int, subprocess.Popen[bytes]]  # port -> process
    env: dict[str, str]
    tmp: Path


@pytest.fixture
def cluster_settings() -> Iterator[Settings]:
    name = f"stagevote_nginx_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_create_database(name))
    asyncio.run(upgrade(url))
    yield Settings(
        database_url=url,
        redis_url=REDIS_URL,
        redis_key_prefix=f"stagevote-nginx:{uuid.uuid4().hex}:",
        secret_key="nginx-secret-" + "n" * 40,
    )
    asyncio.run(_drop_database(name))


async def _until_healthy(url: str, log: Path) -> None:
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get(f"{url}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not start; see {log}")


@pytest.fixture
async def cluster(cluster_settings: Settings, tmp_path: Path) -> AsyncIterator[Cluster]:
    nginx_port, ports = free_port(), [free_port(), free_port()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {
        "STAGEVOTE_DATABASE_URL": cluster_settings.database_url.get_secret_value(),
        "STAGEVOTE_REDIS_URL": REDIS_URL,
        "STAGEVOTE_REDIS_KEY_PREFIX": cluster_settings.redis_key_prefix,
        "STAGEVOTE_SECRET_KEY": cluster_settings.resolved_secret_key().get_secret_value(),
        "STAGEVOTE_PUBLIC_URL": f"http://127.0.0.1:{nginx_port}",
        "STAGEVOTE_SECRET_KEY_FILE": str(tmp_path / "unused-key"),
    }
    instances = {
        port: subprocess.Popen(  # noqa: ASYNC220 - a server process for the test's whole life
            [sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"instance-{port}.log").open("w"),
        )
        for port in ports
    }
    site = render(
        TEMPLATE.read_text(),
        {
            "STAGEVOTE_API_1": f"127.0.0.1:{ports[0]}",
            "STAGEVOTE_API_2": f"127.0.0.1:{ports[1]}",
            "NGINX_PORT": f"127.0.0.1:{nginx_port}",
        },
    )
    (tmp_path / "stagevote.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # a root master would hand the workers to nobody
    (tmp_path / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'nginx-error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log {tmp_path / 'nginx-access.log'};\n{temp_paths}\n"
        f"    include {tmp_path / 'stagevote.conf'};\n}}\n"
    )
    nginx = subprocess.Popen(  # noqa: ASYNC220
        [nginx_binary(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "nginx.log")],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "nginx.stderr").open("w"),
    )
    base = f"http://127.0.0.1:{nginx_port}"
    try:
        for port in ports:
            await _until_healthy(f"http://127.0.0.1:{port}", tmp_path / f"instance-{port}.log")
        await _until_healthy(base, tmp_path / "nginx.stderr")
        yield Cluster(cluster_settings, base, instances, env, tmp_path)
    finally:
        for process in [nginx, *instances.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [nginx, *instances.values()]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        client = redis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{cluster_settings.redis_key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class LiveScreen:
    """A venue screen through nginx: websocket transport, reconnects on its own and subscribes again."""

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        self.client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
        self.connects = 0
        self.boards: list[tuple[int, int]] = []  # (connection number, totalVotes)
        self.client.on("connect", self._on_connect, namespace="/live")
        self.client.on("leaderboard", self._on_board, namespace="/live")

    async def _on_connect(self) -> None:
        self.connects += 1
        number = self.connects

        def acknowledged(answer: Any) -> None:
            if isinstance(answer, dict) and answer.get("ok"):
                self.boards.append((number, int(answer["leaderboard"]["totalVotes"])))

        await self.client.emit("subscribe", {"eventId": self.event_id}, namespace="/live", callback=acknowledged)

    async def _on_board(self, board: dict[str, Any]) -> None:
        self.boards.append((self.connects, int(board["totalVotes"])))

    async def connect(self, base: str) -> None:
        await self.client.connect(base, namespaces=["/live"], transports=["websocket"], wait_timeout=5)

    async def wait_for(self, predicate: Any, what: str, within: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"screen: no {what} within {within}s; connects={self.connects} {self.boards[-5:]}")
            await asyncio.sleep(0.05)


async def _vote_until_answered(api: httpx.AsyncClient, stage: Stage, ballot: Ballot, token: str) -> int:
    """A client voting through nginx: the same token again until an answer comes (a 502 or a dropped
    connection is no answer), as a fan's browser retries."""
    body = {"round": 1, "artistId": stage.artists["Owls"], "token": token}
    for _ in range(100):
        try:
            r = await api.post(f"/events/{stage.event_id}/vote", json=body, headers=ballot.headers)
        except httpx.TransportError:
            await asyncio.sleep(0.1)
            continue
        if r.status_code in (200, 201):
            return r.status_code
        assert r.status_code in (502, 503, 504), r.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"vote {token} never answered")


async def _live_connections(port: int) -> float:
    async with httpx.AsyncClient() as probe:
        text = (await probe.get(f"http://127.0.0.1:{port}/metrics")).text
    match = re.search(r"^stagevote_live_connections (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_screens_and_votes_survive_an_instance_killed_behind_nginx(cluster: Cluster) -> None:
    runtime = Runtime.build(cluster.settings)  # the test's own handle on the database, for ballots
    screens: list[LiveScreen] = []
    try:
        email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        created = subprocess.run(  # noqa: ASYNC221 - a short CLI call
            [*CLI, "create-user", "--email", email, "--password", PASSWORD, "--role", "admin"],
            env=cluster.env,
            cwd=cluster.tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        async with httpx.AsyncClient(base_url=cluster.base, timeout=30) as api:
            login = (await api.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
            admin = Actor(
                login["user"]["id"], email, login["user"]["role"], login["accessToken"], login["refreshToken"]
            )
            stage = await build_stage(api, runtime, admin)
            ballots = [await stage.ballot() for _ in range(60)]

            screens = [LiveScreen(stage.event_id) for _ in range(3)]
            for screen in screens:
                await screen.connect(cluster.base)
            # before: votes through nginx land on both instances, and every screen sees them all
            before = await asyncio.gather(
                *(_vote_until_answered(api, stage, b, f"before-vote-{i}") for i, b in enumerate(ballots[:20]))
            )
            assert before == [201] * 20
            for screen in screens:
                await screen.wait_for(lambda s=screen: any(total == 20 for _, total in s.boards), "board of 20")

            # the instance holding the screens' websockets dies while votes are in flight
            holding = [port for port in cluster.instances if await _live_connections(port) >= len(screens)]
            assert len(holding) == 1, "nginx's hash should keep one client address on one instance"
            victim = cluster.instances[holding[0]]
            during = [
                asyncio.ensure_future(_vote_until_answered(api, stage, b, f"during-vote-{i}"))
                for i, b in enumerate(ballots[20:50])
            ]
            await asyncio.sleep(0.05)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            answered = await asyncio.gather(*during)
            assert set(answered) <= {200, 201}  # 200: counted by the dead instance, its answer lost, retried

            # the screens came back through nginx, to the survivor, and are told of new votes
            for screen in screens:
                await screen.wait_for(lambda s=screen: s.connects >= 2 and s.boards[-1][0] >= 2, "reconnection")
            [survivor] = [port for port in cluster.instances if port != holding[0]]
            assert await _live_connections(survivor) >= len(screens)
            seen = {id(s): max(total for _, total in s.boards) for s in screens}
            after = await asyncio.gather(
                *(_vote_until_answered(api, stage, b, f"after-vote-{i}") for i, b in enumerate(ballots[50:]))
            )
            assert after == [201] * 10
            for screen in screens:
                await screen.wait_for(
                    lambda s=screen: any(n >= 2 and total >= seen[id(s)] + 10 for n, total in s.boards),
                    "the votes cast after the kill",
                )

        # no acknowledged vote is lost, none is counted twice
        url = make_url(cluster.settings.database_url.get_secret_value())
        connection = await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
        )
        try:
            tokens = [
                r["token"]
                for r in await connection.fetch("SELECT token FROM votes WHERE event_id = $1", stage.event_id)
            ]
        finally:
            await connection.close()
        acknowledged = [f"before-vote-{i}" for i in range(20)] + [f"during-vote-{i}" for i in range(30)]
        acknowledged += [f"after-vote-{i}" for i in range(10)]
        assert sorted(tokens) == sorted(acknowledged)
    finally:
        for screen in screens:
            await screen.client.disconnect()
        await runtime.close()
