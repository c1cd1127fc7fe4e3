"""The small generic base every domain repository builds on: get by key, add, count and page a statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import InstrumentedAttribute

from stagevote.core.db import Base

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    """Queries of one table; subclasses name the model and add their own statements."""

    model: type[M]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: Any) -> M | None:
        return await self.session.get(self.model, key)

    async def add(self, obj: M) -> M:
        """Insert now (flush), so constraint violations surface here, inside the caller's try."""
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def flush(self) -> None:
        await self.session.flush()

    async def page(self, statement: Select[M], *, limit: int, offset: int) -> tuple[Sequence[M], int]:
        """One page of `statement`'s rows and the total count of its rows."""
        total = await self.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
        rows = (await self.session.scalars(statement.limit(limit).offset(offset))).all()
        return rows, int(total or 0)


def epoch_bucket(dialect: str, column: InstrumentedAttribute[Any], seconds: int) -> ColumnElement[int]:
    """The number of the `seconds`-long period (since 1970, UTC) a timestamp falls in, computed by the database
    (e.g. 60: its minute); both dialects agree, so grouping by it is portable."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / seconds), BigInteger)
    return cast(func.strftime("%s", column), Integer) // seconds


def iso_utc(dialect: str, column: InstrumentedAttribute[Any]) -> ColumnElement[str]:
    """A timestamp as ISO 8601 text in UTC to the second (`2026-12-01T19:05:03Z`), formatted by the database,
    so a row streamed out needs no conversion in Python."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    return func.strftime("%Y-%m-%dT%H:%M:%SZ", column)
