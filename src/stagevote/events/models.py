"""Tables of the events domain: events, their rounds, and the brands that sponsor them."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class EventStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    LIVE = "live"
    CLOSED = "closed"
    ARCHIVED = "archived"


class AccessType(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    HYBRID = "hybrid"


class RoundStatus(enum.StrEnum):
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("access_type IN ('public','private','hybrid')", name="access_type"),
        CheckConstraint("status IN ('draft','published','live','closed','archived')", name="status"),
        CheckConstraint("end_date > start_date", name="dates_in_order"),
        # a keyword names one event at a time: unique, case-insensitive, among events not archived
        Index(
            "uq_events_keyword_active",
            func.lower(text("keyword")),
            unique=True,
            sqlite_where=text("status != 'archived'"),
            postgresql_where=text("status != 'archived'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    start_date: Mapped[dt.datetime] = mapped_column(index=True)
    end_date: Mapped[dt.datetime]
    venue: Mapped[str | None] = mapped_column(Text)
    access_type: Mapped[str] = mapped_column(String(10))
    keyword: Mapped[str] = mapped_column(String(32))
    default_language: Mapped[str] = mapped_column(String(5), default="en")
    vote_config: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default=EventStatus.DRAFT.value, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Round(Base):
    """The state of one round of an event; its definition lives in the event's voteConfig."""

    __tablename__ = "rounds"
    __table_args__ = (
        UniqueConstraint("event_id", "number"),
        CheckConstraint("status IN ('pending','open','closed')", name="status"),
        CheckConstraint("number >= 1", name="number_positive"),
        # one open round per event, whatever the code in front of it does
        Index(
            "uq_rounds_one_open_per_event",
            "event_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    number: Mapped[int]
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=RoundStatus.PENDING.value)
    opens_at: Mapped[dt.datetime | None]
    closes_at: Mapped[dt.datetime | None]
    opened_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]


class EventSponsor(Base):
    """A brand user linked to an event: it sees that event's aggregated, PII-free numbers."""

    __tablename__ = "event_sponsors"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    linked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
