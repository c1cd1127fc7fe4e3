"""Database engine, declarative base, portable column types and the unit of work.

A unit of work is one transaction: it commits once at the end, rolls back on an error, and
runs the callbacks registered with `after_commit` only once the commit succeeded, so a
rolled-back request leaves no trace outside the database either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import JSON, DateTime, MetaData, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]
_AFTER_COMMIT_KEY = "stagevote.after_commit"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of every stagevote table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONDocument}  # noqa: RUF012


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def async_database_url(url: str) -> str:
    """The SQLAlchemy async URL for a configured URL (`postgresql://`, `sqlite:///`)."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
    if parsed.drivername in driver:
        parsed = parsed.set(drivername=driver[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def create_engine(database_url: str, *, pool_size: int = 20, pool_pre_ping: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout."""
    url = make_url(async_database_url(database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # let SQLAlchemy, not the driver, decide where transactions begin (see _begin_immediate)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            # A deferred SQLite transaction that reads, then writes after another writer committed,
            # fails at once with "database is locked". Taking the write lock up front makes
            # concurrent units of work wait their turn (busy_timeout) instead.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # A pool as large as the concurrency it serves: an overflow connection is closed on return, and
    # reconnecting under load costs more than the request. Pre-ping costs a round trip per checkout,
    # so it is off by default (connections are recycled hourly instead).
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size // 2, pool_pre_ping=pool_pre_ping, pool_recycle=3600
    )


async def ping_database(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def show_setting(name: str) -> Any:
    """`SHOW <name>` (PostgreSQL) as a statement; `name` is ours, never a caller's input."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a setting name: {name!r}")
    return text(f"SHOW {name}")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def detach(session: AsyncSession, *objects: object) -> None:
    """Take loaded rows out of the session, so that they can be kept beyond it (read-only snapshots).

    A row left in a session is expired by that session's rollback; a cached copy must not be.
    """
    for obj in objects:
        session.expunge(obj)


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once this session's transaction has committed; drop it on rollback."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit at the end (or rollback on error), then the after-commit callbacks.

    An exception whose `commit_session` attribute is true still commits what was written
    before it was raised: a detected refresh-token reuse must revoke the family and answer 401.
    """
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException as exc:
            if not getattr(exc, "commit_session", False):
                await session.rollback()
                session.info.pop(_AFTER_COMMIT_KEY, None)
                raise
            await session.commit()
            await _run_after_commit(session)
            raise
        await session.commit()
        await _run_after_commit(session)


async def _run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop(_AFTER_COMMIT_KEY, []):
        try:
            await callback()
        except Exception:  # the transaction stands; a failed side effect is logged, not raised
            log.exception("after_commit_callback_failed", callback=getattr(callback, "__qualname__", repr(callback)))
