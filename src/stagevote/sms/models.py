"""Tables of the sms domain: inbound messages already handled, so a Twilio retry acts once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class InboundMessage(Base):
    """One inbound SMS by its `MessageSid`, with the reply it got (sent again on a retry)."""

    __tablename__ = "inbound_messages"

    message_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    # the TwiML answered, with ballot tokens and codes redacted; `sealed_reply` is the TwiML itself, sealed
    reply: Mapped[str | None] = mapped_column(Text)
    sealed_reply: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
