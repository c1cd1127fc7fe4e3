"""Tables of the voting domain: one row per vote (one per attendee, round and slot), round seals, replaced tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from stagevote.core.db import Base, utcnow
from stagevote.voting.receipts import CURRENT_VERSION


def _code(length: int) -> TypeEngine[str]:
    """An opaque code, only ever compared for equality: byte order on PostgreSQL, not the locale's."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Vote(Base):
    __tablename__ = "votes"
    __table_args__ = (
        # the quota lives in the database: slots run 1..votesPerRound, each taken once
        UniqueConstraint("attendee_id", "event_id", "round", "slot"),
        CheckConstraint("slot >= 1", name="slot_positive"),
        CheckConstraint("round >= 1", name="round_positive"),
        CheckConstraint("channel IN ('web','sms')", name="channel"),
        Index("ix_votes_event_id_round_artist_id", "event_id", "round", "artist_id"),
        # version 1 receipts only (voting/receipts.py): a version 2 vote stores none, and adds no entry here
        Index(
            "ix_votes_receipt",
            "receipt",
            unique=True,
            postgresql_where=text("receipt IS NOT NULL"),
            sqlite_where=text("receipt IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # looked up by attendee through the unique (attendee_id, event_id, round, slot): no index of its own
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), index=True)
    round: Mapped[int]
    slot: Mapped[int] = mapped_column(default=1)
    token: Mapped[str] = mapped_column(_code(100), unique=True)
    channel: Mapped[str] = mapped_column(String(5), default="web")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # how the fan's receipt is derived from the row (voting/receipts.py): 2, from the row and its id, never
    # stored; 1 for votes cast before migration 0012, whose receipt is in `receipt` (NULL before 0006)
    receipt_version: Mapped[int] = mapped_column(SmallInteger, default=CURRENT_VERSION, server_default="2")
    receipt: Mapped[str | None] = mapped_column(_code(32))
    # a void (voting/voids.py): the vote stays, no longer counted; its facts and receipt do not change
    voided_at: Mapped[dt.datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(20))
    void_note: Mapped[str | None] = mapped_column(Text)
    voided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class RoundSeal(Base):
    """A closed round's Merkle root (core/merkle.py) over the receipts of the votes it counted, written when
    the round closed. `receipts` keeps those receipts (sorted, one a line) so `stagevote audit verify`
    can name what changed since."""

    __tablename__ = "round_seals"
    __table_args__ = (UniqueConstraint("event_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    round: Mapped[int]
    root: Mapped[str] = mapped_column(String(64))
    votes: Mapped[int]
    receipts: Mapped[str] = mapped_column(Text)
    sealed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VoteToken(Base):
    """A token a vote was cast with before a vote change gave its row another one (`allowVoteChange`).

    A retry of that earlier request must still find what it made (200, never a second change): the
    row keeps the artist and time as that request recorded them. Written only by the change path;
    a token here is never taken by a new vote.
    """

    __tablename__ = "vote_tokens"

    token: Mapped[str] = mapped_column(String(100), primary_key=True)
    vote_id: Mapped[int] = mapped_column(ForeignKey("votes.id", ondelete="CASCADE"), index=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    created_at: Mapped[dt.datetime]
