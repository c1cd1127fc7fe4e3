"""The `stagevote` command: migrate, create-user, serve, and the secret key of the embedded default."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from click.testing import CliRunner, Result
from httpx import ASGITransport, AsyncClient
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from stagevote.app import create_app
from stagevote.cli import main
from stagevote.config import ConfigurationError, Settings
from stagevote.core.db import create_engine
from tests.conftest import BACKEND, PG_URL, _create_database, _drop_database

SECRET = "cli-test-secret-" + "z" * 40
PASSWORD = "longenough"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No STAGEVOTE_* setting of the developer's shell leaks in; the embedded defaults land in tmp_path."""
    for name in list(os.environ):
        if name.startswith("STAGEVOTE_") and not name.startswith("STAGEVOTE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database, not migrated: a SQLite file, or a PostgreSQL database of its own."""
    if BACKEND == "postgresql":
        name = f"stagevote_cli_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create_database(name))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        asyncio.run(_drop_database(name))
    else:
        yield f"sqlite:///{tmp_path / 'data' / 'stagevote.db'}"


def run(database_url: str, *args: str, typed: str | None = None, **env: str) -> Result:
    """`stagevote ARGS` in this process, with STAGEVOTE_DATABASE_URL (and `env`) set for its duration."""
    environment = {"STAGEVOTE_DATABASE_URL": database_url, **env}
    return CliRunner().invoke(main, list(args), env=environment, input=typed)


def table_names(database_url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(names())


def login(database_url: str, email: str, password: str) -> httpx.Response:
    """POST /auth/login, then GET /auth/profile with the token, on an app over `database_url`."""

    async def go() -> httpx.Response:
        application = create_app(Settings(database_url=database_url, secret_key=SECRET))
        async with LifespanManager(application):
            transport = ASGITransport(app=application, raise_app_exceptions=False)
            async with AsyncClient(transport=transport, base_url="http://testserver") as http:
                r = await http.post("/auth/login", json={"email": email, "password": password})
                if r.status_code != 200:
                    return r
                headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}
                return await http.get("/auth/profile", headers=headers)

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stagevote_command() -> list[str]:
    script = Path(sys.executable).parent / "stagevote"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stagevote.cli"]


def test_migrate_creates_the_schema_and_can_run_again(database_url: str) -> None:
    first = run(database_url, "migrate")
    assert first.exit_code == 0, first.output
    assert "up to date" in first.output
    tables = table_names(database_url)
    assert {"users", "events", "alembic_version"} <= tables
    again = run(database_url, "migrate")
    assert again.exit_code == 0, again.output
    assert table_names(database_url) == tables


def test_migrate_on_a_database_that_does_not_answer_says_so(tmp_path: Path) -> None:
    result = run("postgresql://postgres:hunter2@127.0.0.1:1/nope", "migrate")
    assert result.exit_code == 1
    assert "Error: the database (127.0.0.1:1/nope) failed" in result.output
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_created_admin_can_log_in_through_the_api(database_url: str) -> None:
    assert run(database_url, "migrate").exit_code == 0
    result = run(database_url, "create-user", "--email", "Boss@Example.com", "--password", PASSWORD, "--role", "admin")
    assert result.exit_code == 0, result.output
    assert "created user" in result.output
    profile = login(database_url, "boss@example.com", PASSWORD)
    assert profile.status_code == 200, profile.text
    assert profile.json()["email"] == "boss@example.com"
    assert profile.json()["role"] == "admin"
    assert login(database_url, "boss@example.com", "not-the-password").status_code == 401


def test_create_user_defaults_to_a_fan_and_asks_for_the_password(database_url: str) -> None:
    assert run(database_url, "migrate").exit_code == 0
    result = run(database_url, "create-user", "--email", "fan@example.com", typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # typed, not echoed
    assert login(database_url, "fan@example.com", PASSWORD).json()["role"] == "fan"


def test_create_user_with_a_taken_email_fails_clearly(database_url: str) -> None:
    assert run(database_url, "migrate").exit_code == 0
    assert (
        run(database_url, "create-user", "--email", "a@b.co", "--password", PASSWORD, "--role", "admin").exit_code == 0
    )
    again = run(database_url, "create-user", "--email", "A@B.co", "--password", "another-one", "--role", "admin")
    assert again.exit_code == 1
    assert "Error: An account with e-mail a@b.co already exists." in again.output
    assert "Traceback" not in again.output
    assert login(database_url, "a@b.co", PASSWORD).status_code == 200  # the first account is untouched


def test_create_user_refuses_what_the_api_would_refuse(database_url: str) -> None:
    assert run(database_url, "migrate").exit_code == 0
    short = run(database_url, "create-user", "--email", "a@b.co", "--password", "short", "--role", "admin")
    assert short.exit_code == 1
    assert "--password" in short.output
    assert "8 characters" in short.output
    # an address the login form would reject makes an account nobody can log in to
    unusable = run(database_url, "create-user", "--email", "admin@localhost", "--password", PASSWORD)
    assert unusable.exit_code == 1
    assert "--email" in unusable.output
    assert login(database_url, "a@b.co", "short").status_code in {401, 422}
    # nothing was created by the refused attempts
    ok = run(database_url, "create-user", "--email", "a@b.co", "--password", PASSWORD, "--role", "admin")
    assert ok.exit_code == 0, ok.output


def test_create_user_before_migrate_says_what_to_do(database_url: str) -> None:
    result = run(database_url, "create-user", "--email", "a@b.co", "--password", PASSWORD)
    assert result.exit_code == 1
    assert "stagevote migrate" in result.output
    assert "Traceback" not in result.output


def test_a_wrong_setting_is_named(database_url: str) -> None:
    for name, value in (("STAGEVOTE_LOG_LEVEL", "loud"), ("STAGEVOTE_DATABASE_URL", "mysql://db/x")):
        result = run(database_url, "migrate", **{name: value})
        assert result.exit_code == 1
        assert f"Error: invalid configuration: {name}" in result.output
        assert "Traceback" not in result.output


def test_serve_on_postgresql_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "STAGEVOTE_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
    port = free_port()
    try:
        finished = subprocess.run(
            [*stagevote_command(), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`stagevote serve` started a server without STAGEVOTE_SECRET_KEY")
    assert finished.returncode != 0
    assert "STAGEVOTE_SECRET_KEY" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "var" / "secret_key").exists()  # no key file for PostgreSQL: it would differ per host


def test_embedded_default_generates_the_secret_key_once(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret_key"
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key_file=key_file)
    first = settings.resolved_secret_key().get_secret_value()
    assert len(first) >= 32
    assert settings.resolved_secret_key().get_secret_value() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # another process (a restart, a second worker) signs with the same key
    restarted = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key_file=key_file)
    assert restarted.resolved_secret_key().get_secret_value() == first
    assert [p.name for p in key_file.parent.iterdir()] == ["secret_key"]  # no temporary files left behind


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret_key"

    def resolve(_: int) -> str:
        return (
            Settings(database_url="sqlite:///x.db", secret_key_file=key_file).resolved_secret_key().get_secret_value()
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(resolve, range(32)))
    assert keys == {key_file.read_text().strip()}


def test_a_configured_secret_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret_key"
    settings = Settings(database_url="sqlite:///x.db", secret_key=SECRET, secret_key_file=key_file)
    assert settings.resolved_secret_key().get_secret_value() == SECRET
    assert not key_file.exists()


def test_an_empty_secret_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text("\n")
    with pytest.raises(ConfigurationError, match="secret key file"):
        Settings(database_url="sqlite:///x.db", secret_key_file=key_file).resolved_secret_key()


def test_a_key_file_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = Settings(database_url="sqlite:///x.db", secret_key_file=blocker / "secret_key")
    with pytest.raises(ConfigurationError, match="STAGEVOTE_SECRET_KEY_FILE"):
        settings.resolved_secret_key()


def test_serve_with_several_workers_needs_redis(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "STAGEVOTE_DATABASE_URL": database_url, "STAGEVOTE_SECRET_KEY": SECRET}
    try:
        finished = subprocess.run(
            [*stagevote_command(), "serve", "--port", str(free_port()), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`stagevote serve --workers 2` started without Redis to share revocations and limits")
    assert finished.returncode != 0
    assert "STAGEVOTE_REDIS_URL" in finished.stderr


def test_serve_answers_health_and_stops_on_sigterm(database_url: str, tmp_path: Path) -> None:
    assert run(database_url, "migrate").exit_code == 0
    port = free_port()
    env = {**os.environ, "STAGEVOTE_DATABASE_URL": database_url, "STAGEVOTE_LOG_FORMAT": "json"}
    if BACKEND == "postgresql":
        env["STAGEVOTE_SECRET_KEY"] = SECRET
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*stagevote_command(), "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60  # a safety net for a loaded machine, not a speed claim
            health: httpx.Response | None = None
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    health = httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert health is not None, f"no answer on port {port}:\n{log_path.read_text()}"
            assert health.status_code == 200
            assert health.json() == {"status": "ok"}
            assert health.headers["x-request-id"]
            ready = httpx.get(f"{base}/ready", timeout=5)
            assert ready.status_code == 200, ready.text
        finally:
            server.terminate()
            try:
                returncode = server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
                pytest.fail(f"the server did not stop on SIGTERM:\n{log_path.read_text()}")
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as process managers expect
    assert returncode in {0, -signal.SIGTERM}, log_path.read_text()
    # the server's own lines go through the app's JSON renderer, uvicorn's included
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert "Application shutdown complete." in events
    [access] = [line for line in lines if line["logger"] == "uvicorn.access" and "/health" in line["event"]]
    assert access["request_id"] == health.headers["x-request-id"]
    if BACKEND != "postgresql":  # the embedded default made its key, privately, in the working directory
        key_file = tmp_path / "var" / "secret_key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
