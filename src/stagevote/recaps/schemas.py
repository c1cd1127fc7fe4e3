"""Wire models of the recaps domain: where an event's recap page is."""

from __future__ import annotations

from pydantic import Field

from stagevote.core.schemas import Schema


class RecapRead(Schema):
    url: str = Field(description="The recap page: under /recaps/ of this app, or in the S3 bucket (or its CDN)")
