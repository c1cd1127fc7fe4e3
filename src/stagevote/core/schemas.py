"""Wire-model basics shared by every domain: camelCase JSON and the collection envelope."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

T = TypeVar("T")


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
    offset: int = Query(0, ge=0, description="Items to skip."),
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]
"""A route parameter: the `?limit=&offset=` of a collection."""
