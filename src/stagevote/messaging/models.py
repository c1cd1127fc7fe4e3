"""Tables of the messaging domain: every SMS or e-mail to a fan is a row before it is sent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("channel IN ('sms','email')", name="channel"),
        CheckConstraint("status IN ('queued','sending','sent','delivered','undelivered','failed')", name="status"),
        Index("ix_messages_event_id_message_type", "event_id", "message_type"),
        Index("ix_messages_status_updated_at", "status", "updated_at"),
        Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_messages_status_leased_until", "status", "leased_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="SET NULL"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    message_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    recipient: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    # with ballot tokens and codes redacted (`messaging.sealing`); the text as sent is `sealed_body`
    body: Mapped[str] = mapped_column(Text, default="")
    # the text as sent, encrypted under a key derived from SECRET_KEY; None when `body` is that text
    sealed_body: Mapped[str | None] = mapped_column(Text)
    # what made this message, when it must be made once only (e.g. "NUDGE:12:2:open:345")
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # queued: not to be handed out before (a retry's back-off); sending: when to ask the provider about it
    next_attempt_at: Mapped[dt.datetime | None]
    # handed to a delivery (with its rate permit) until then; a lease that ran out unclaimed was lost
    leased_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None]
    # marketing (NUDGE, CUSTOM, RECAP; RESULTS of a round the fan did not vote in): waits for the recipient's
    # quiet hours to end and counts against the daily cap (`messaging.quiet`); transactional messages do not
    marketing: Mapped[bool] = mapped_column(default=False, server_default=false())
