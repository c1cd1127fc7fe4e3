"""Alembic environment: runs on the connection handed over by `stagevote.migrations.upgrade`."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning

from stagevote.core.db import UTCDateTime
from stagevote.models import Base

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write our column types as plain SQLAlchemy ones, so a migration never imports app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction(), warnings.catch_warnings():
        # SQLite's batch mode reflects the table it rebuilds and the tables its foreign keys name, and
        # SQLAlchemy cannot reflect the events table's expression index (its keyword among events not
        # archived): a warning on every fresh `make run`, about a table no batch rebuilds. That the index
        # is there after every migration is tests/test_schema.py's keyword test.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `stagevote migrate`, which hands Alembic a connection")
run_migrations(connection)
