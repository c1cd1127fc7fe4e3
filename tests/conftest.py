"""Test set-up: a migrated database per worker (SQLite or the real PostgreSQL), Redis, the app, actors.

`STAGEVOTE_TEST_BACKEND` picks the backend: `sqlite` (embedded adapters: in-memory cache and
rate limits) or `postgresql` (the real PostgreSQL and Redis of `STAGEVOTE_TEST_DATABASE_URL` /
`STAGEVOTE_TEST_REDIS_URL`). `make test` runs the suite once with each. Every test starts from
empty tables and an empty Redis database: the app under test opens its own connections (a
concurrency test needs several), so tables are emptied after each test rather than rolled back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from stagevote.app import create_app
from stagevote.auth import service as auth_service
from stagevote.auth.models import Role, User
from stagevote.config import Settings
from stagevote.core.db import create_engine, unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.core.security import hash_password
from stagevote.migrations import upgrade
from stagevote.models import Base

BACKEND = os.environ.get("STAGEVOTE_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("STAGEVOTE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("STAGEVOTE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: argon2id is slow on purpose
TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]


def pytest_report_header() -> str:
    where = f"PostgreSQL ({PG_URL}) + Redis ({REDIS_URL})" if BACKEND == "postgresql" else "SQLite + in-memory adapters"
    return f"stagevote backend: {BACKEND} — {where}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgresql` exercise PostgreSQL itself; the SQLite run deselects them."""
    if BACKEND == "postgresql":
        return
    keep = [i for i in items if i.get_closest_marker("postgresql") is None]
    dropped = [i for i in items if i.get_closest_marker("postgresql") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _worker_number(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


async def _admin_connection() -> asyncpg.Connection:
    url = make_url(PG_URL)
    try:
        return await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
        )
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.exit(
            f"PostgreSQL at {PG_URL} does not answer ({exc}). Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            returncode=3,
        )


async def _create_database(name: str) -> None:
    connection = await _admin_connection()
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(name: str) -> None:
    connection = await _admin_connection()
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url(worker_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database built once per test worker from the migrations."""
    if BACKEND == "postgresql":
        name = f"stagevote_test_{_worker_number(worker_id)}_{os.getpid()}"
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        asyncio.run(_create_database(name))
        asyncio.run(upgrade(url))
        yield url
        asyncio.run(_drop_database(name))
    else:
        path: Path = tmp_path_factory.mktemp("db") / "stagevote.db"
        url = f"sqlite:///{path}"
        asyncio.run(upgrade(url))
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """The real Redis (PostgreSQL backend only); each test keeps its keys under a prefix of its own."""
    if BACKEND != "postgresql":
        return None
    url = REDIS_URL
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"Redis at {url} does not answer ({exc}). Start it with: redis-server --daemonize yes "
            '--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
            returncode=3,
        )
    return url


@pytest.fixture
async def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> AsyncIterator[Settings]:
    """The test's settings; afterwards the database and the test's Redis keys are emptied, whatever app the test
    made of them (the `app` fixture's, or one of its own), so that no row outlives its test."""
    value = Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=f"stagevote-test:{uuid.uuid4().hex}:",
        secret_key="test-secret-" + "x" * 40,
        public_url="http://testserver",
        secret_key_file=tmp_path / "secret_key",
        recap_storage=f"file://{tmp_path}/recaps",  # closing an event renders its recap page here
        # marketing SMS go whatever the hour and however many: tests/messaging/test_quiet_hours.py sets them
        quiet_hours_start=dt.time(0, 0),
        quiet_hours_end=dt.time(0, 0),
        marketing_per_day=0,
    )
    yield value
    await _empty_everything(value)


async def _empty_everything(settings: Settings) -> None:
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with engine.begin() as connection:
            if BACKEND == "postgresql":
                await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            else:  # triggers that refuse DELETE (the append-only audit log) step aside, in this transaction only
                triggers = (
                    await connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
                ).all()
                for name, _ in triggers:
                    await connection.execute(text(f'DROP TRIGGER "{name}"'))
                for table in TABLES:
                    await connection.execute(text(f"DELETE FROM {table}"))
                for _, sql in triggers:
                    await connection.execute(text(sql))
    finally:
        await engine.dispose()
    if settings.redis_url is not None:
        client = redis.asyncio.Redis.from_url(settings.redis_url.get_secret_value())
        keys = [key async for key in client.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    value: Runtime = app.state.runtime
    return value


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Actor:
    """A signed-in user of one role, ready to call the API."""

    user_id: int
    email: str
    role: Role
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Actors:
    """Creates users of any role with tokens, straight through the auth service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def make(self, role: Role | str, email: str | None = None) -> Actor:
        role = Role(role)
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        async with unit_of_work(self.runtime.sessionmaker) as session:
            user = User(email=email, password_hash=PASSWORD_HASH, role=role.value, language_pref="en")
            session.add(user)
            await session.flush()
            issued = await auth_service.issue_tokens(session=session, runtime=self.runtime, user=user)
        return Actor(user.id, email, role, issued.access_token, issued.refresh_token)


@pytest.fixture
def actors(runtime: Runtime) -> Actors:
    return Actors(runtime)


@pytest.fixture
async def admin(actors: Actors) -> Actor:
    return await actors.make(Role.ADMIN)


@pytest.fixture
async def fan(actors: Actors) -> Actor:
    return await actors.make(Role.FAN)


# `figures` (a fixture) and the hook that writes them: what `make proof` adds up (tests/proof/figures.py)
from tests.proof.figures import figures, pytest_sessionfinish  # noqa: E402, F401
