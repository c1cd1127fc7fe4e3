"""Alembic migrations of the stagevote schema, and `upgrade()` / `downgrade()` to apply them programmatically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from stagevote.core.db import create_engine

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (the latest by default)."""
    await _migrate(database_url, command.upgrade, revision)


async def downgrade(database_url: str, revision: str) -> None:
    """Take the database at `database_url` back to `revision`."""
    await _migrate(database_url, command.downgrade, revision)


async def _migrate(database_url: str, step: Callable[[Config, str], None], revision: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: step(alembic_config(sync), revision))
    finally:
        await engine.dispose()
