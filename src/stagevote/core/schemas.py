"""Wire-model basics shared by every domain: camelCase JSON and the collection envelope."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

T = TypeVar("T")
# The largest integer every integer column holds (PostgreSQL INTEGER): ids, counts, offsets stay below it.
MAX_INT = 2**31 - 1
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)


def _within_range(value: dt.datetime) -> dt.datetime:
    # Python's datetimes end in year 9999: a date there has no room for the day of grace a ballot adds,
    # nor for the UTC conversion of an offset. Events happen within this millennium.
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 1970-01-01 and 2999-12-31 (UTC)")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""A date and time with its offset, between 1970 and 2999 (UTC)."""


class Schema(BaseModel):
    """A JSON body: snake_case in Python, camelCase on the wire; unknown keys are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True, extra="ignore")


class Page(BaseModel, Generic[T]):
    """The envelope every collection answers with."""

    items: list[T]
    total: int
    limit: int
    offset: int


class PageParams(BaseModel):
    """`?limit=&offset=` of a collection."""

    limit: int
    offset: int


async def page_params(
    limit: int = Query(50, ge=1, le=500, description="Items per page (1-500)."),
    offset: int = Query(0, ge=0, le=MAX_INT, description="Items to skip."),
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]
"""A route parameter: the `?limit=&offset=` of a collection."""
