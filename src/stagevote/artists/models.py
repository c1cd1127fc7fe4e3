"""Tables of the artists domain: artist profiles and their invitations to events."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class ArtistStatus(enum.StrEnum):
    INVITED = "invited"
    CLAIMED = "claimed"
    APPROVED = "approved"
    WITHDRAWN = "withdrawn"


class InviteStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class Artist(Base):
    __tablename__ = "artists"
    __table_args__ = (CheckConstraint("status IN ('invited','claimed','approved','withdrawn')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    social_links: Mapped[dict[str, Any] | None]
    email: Mapped[str | None] = mapped_column(String(255))
    claimed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ArtistStatus.INVITED.value)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EventArtist(Base):
    """An artist's invitation to one event, with the code fans text to vote for them there."""

    __tablename__ = "event_artists"
    __table_args__ = (
        CheckConstraint("invite_status IN ('pending','accepted','declined')", name="invite_status"),
        UniqueConstraint("event_id", "vote_code"),
    )

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"), primary_key=True, index=True)
    invite_status: Mapped[str] = mapped_column(String(20), default=InviteStatus.PENDING.value)
    vote_code: Mapped[str] = mapped_column(String(10))
    invited_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    joined_at: Mapped[dt.datetime | None]
