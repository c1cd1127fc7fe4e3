"""Two server processes on one PostgreSQL and one Redis: a vote taken by one reaches a screen on the other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
from sqlalchemy.engine import make_url

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from stagevote.migrations import upgrade
from tests.conftest import PASSWORD, PG_URL, REDIS_URL, Actor, _create_database, _drop_database
from tests.factories import build_stage
from tests.realtime.test_live import Screen, free_port

pytestmark = pytest.mark.postgresql


@pytest.fixture
def cluster_settings() -> Iterator[Settings]:
    name = f"stagevote_cluster_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_create_database(name))
    asyncio.run(upgrade(url))
    yield Settings(
        database_url=url,
        redis_url=REDIS_URL,
        redis_key_prefix=f"stagevote-cluster:{uuid.uuid4().hex}:",
        secret_key="cluster-secret-" + "y" * 40,
        public_url="http://127.0.0.1",
    )
    asyncio.run(_drop_database(name))


def _environment(settings: Settings, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {
        "STAGEVOTE_DATABASE_URL": settings.database_url.get_secret_value(),
        "STAGEVOTE_REDIS_URL": REDIS_URL,
        "STAGEVOTE_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "STAGEVOTE_SECRET_KEY": settings.resolved_secret_key().get_secret_value(),
        "STAGEVOTE_PUBLIC_URL": settings.public_url,
        "STAGEVOTE_SECRET_KEY_FILE": str(tmp / "unused-key"),
        # an instance's copy of an event never ages out here: only the bus can tell it that a round closed
        "STAGEVOTE_HOT_CACHE_SECONDS": "3600",
    }
    return env


@pytest.fixture
async def two_instances(cluster_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    env = _environment(cluster_settings, tmp_path)
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 - a server process for the test's whole life
            [sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"instance-{port}.log").open("w"),
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with httpx.AsyncClient() as probe:
            for url in urls:
                for _ in range(150):
                    try:
                        if (await probe.get(f"{url}/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"{url} did not start: {(tmp_path / f'instance-{url[-5:]}.log')}")
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)
        client = redis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{cluster_settings.redis_key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_vote_on_one_instance_reaches_a_screen_on_the_other(
    cluster_settings: Settings, two_instances: tuple[str, str], tmp_path: Path
) -> None:
    first, second = two_instances
    runtime = Runtime.build(cluster_settings)  # the test's own handle on the shared database, for ballots
    try:
        env = _environment(cluster_settings, tmp_path)
        email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        created = subprocess.run(  # noqa: ASYNC221 - a short CLI call
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
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        async with httpx.AsyncClient(base_url=first) as api:
            login = (await api.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
            admin = Actor(
                login["user"]["id"], email, login["user"]["role"], login["accessToken"], login["refreshToken"]
            )
            stage = await build_stage(api, runtime, admin)

            screen = Screen()
            await screen.connect(second)
            try:
                ack = await screen.subscribe(stage.event_id)
                assert ack["ok"] is True and ack["leaderboard"]["totalVotes"] == 0
                assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201  # taken by the first
                board = await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 1, within=10)
                assert {s["name"]: s["votes"] for s in board["standings"]}["Owls"] == 1
                async with httpx.AsyncClient(base_url=second) as other:  # the second caches the event: round 1 open
                    early = await other.post(
                        f"/events/{stage.event_id}/vote",
                        json={"round": 1, "artistId": stage.artists["Foxes"], "token": "early-vote-1"},
                        headers=(await stage.ballot()).headers,
                    )
                    assert early.status_code == 201, early.text
                await stage.admin_post("/rounds/1/close")  # a round change on the first, seen on the second
                await screen.wait_for("round", lambda r: r["number"] == 1 and r["status"] == "closed", within=10)
            finally:
                await screen.client.disconnect()
        # and the second instance's own copy of the event was dropped through the bus (it would not age out)
        async with httpx.AsyncClient(base_url=second) as api:
            rounds = (await api.get(f"/events/{stage.event_id}/rounds")).json()["items"]
            assert rounds[0]["status"] == "closed"
            r = await api.post(
                f"/events/{stage.event_id}/vote",
                json={"round": 1, "artistId": stage.artists["Foxes"], "token": "late-vote-1"},
                headers=(await stage.ballot()).headers,
            )
            assert r.status_code == 409, r.text
    finally:
        await runtime.close()
