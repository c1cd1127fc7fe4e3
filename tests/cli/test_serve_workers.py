"""`stagevote serve` with several workers: they need Redis, and their connections must fit PostgreSQL's limit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import SECRET, database_url, free_port, stagevote_command
from tests.conftest import BACKEND, REDIS_URL, _admin_connection

__all__ = ["database_url"]  # the fixture, shared with test_cli


def _environment(database_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_") or k.startswith("STAGEVOTE_TEST_")}
    return {**env, "STAGEVOTE_DATABASE_URL": database_url, "STAGEVOTE_SECRET_KEY": SECRET, **settings}


def test_workers_from_the_environment_need_redis_too(database_url: str, tmp_path: Path) -> None:
    finished = subprocess.run(
        [*stagevote_command(), "serve", "--port", str(free_port())],
        env=_environment(database_url, STAGEVOTE_WORKERS="2"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode != 0
    assert "STAGEVOTE_REDIS_URL" in finished.stderr


async def _max_connections() -> int:
    connection = await _admin_connection()
    try:
        return int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()


@pytest.mark.postgresql
def test_serve_says_when_its_workers_could_exceed_max_connections(database_url: str, tmp_path: Path) -> None:
    assert BACKEND == "postgresql"
    port = free_port()
    log_path = tmp_path / "serve.log"
    limit = asyncio.run(_max_connections())
    env = _environment(database_url, STAGEVOTE_REDIS_URL=REDIS_URL, STAGEVOTE_DB_POOL_SIZE=str(limit))
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*stagevote_command(), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                pytest.fail(f"the server did not start:\n{log_path.read_text()}")
        finally:
            server.terminate()
            server.wait(timeout=20)
    said = log_path.read_text()
    # each worker: the pool (+ 50% overflow) and its vote writer's connection
    assert f"2 worker(s) × {limit + limit // 2 + 1} connections" in said, said
    assert "max_connections" in said
