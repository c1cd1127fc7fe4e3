"""Tables of the recaps domain: where each closed event's recap page was written."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class Recap(Base):
    """The recap page of an event: its public URL and its name in the storage."""

    __tablename__ = "recaps"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    storage_key: Mapped[str] = mapped_column(Text)
    first_rendered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rendered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
