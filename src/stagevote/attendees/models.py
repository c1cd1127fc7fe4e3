"""Tables of the attendees domain: one attendee per (event, phone number), the numbers that opted out, consents."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stagevote.core.db import Base, utcnow


class Attendee(Base):
    __tablename__ = "attendees"
    __table_args__ = (
        UniqueConstraint("event_id", "phone_number"),
        CheckConstraint("confirmation_attempts >= 0", name="attempts_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    # E.164; NULL once the attendee's personal data was erased (their votes still count)
    phone_number: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(255))
    language_pref: Mapped[str | None] = mapped_column(String(5))
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opted_out: Mapped[bool] = mapped_column(default=False)
    pre_registered: Mapped[bool] = mapped_column(default=False)
    confirmed_at: Mapped[dt.datetime | None]
    confirmation_code_hash: Mapped[str | None] = mapped_column(String(255))
    confirmation_expires_at: Mapped[dt.datetime | None]
    confirmation_attempts: Mapped[int] = mapped_column(default=0)
    erased_at: Mapped[dt.datetime | None]
    # where the latest web join came from (IPv4 address, or the /64 of an IPv6 one; behind TRUSTED_PROXIES the
    # client they name): what the integrity flags count joins per address by. NULL for SMS joins, once erased
    join_address: Mapped[str | None] = mapped_column(String(45))
    # voided by an organizer (POST /attendees/{id}/void): their votes no longer count, and no new vote is taken
    voided_at: Mapped[dt.datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(20))


class PhoneOptOut(Base):
    """A phone number that texted STOP: nothing is sent to it, from any event, until it texts START."""

    __tablename__ = "phone_opt_outs"

    phone_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    opted_out_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PhoneOptOutDigest(Base):
    """The opt-out of a number whose attendee data was erased: a keyed hash (HMAC-SHA256 with the server's
    secret) of the number instead of the number, so it stays opted out without being kept in clear."""

    __tablename__ = "phone_opt_out_digests"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    opted_out_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """One opt-in or opt-out, as it happened: when, on which channel, and the exact words texted (JOIN …, STOP,
    START) or the version of the terms a web join agreed to. Erasure blanks the number and the words and keeps
    the fact and its time (`attendees.service.erase_attendee`)."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint("kind IN ('opt_in','opt_out')", name="kind"),
        CheckConstraint("channel IN ('sms','web')", name="channel"),
        Index("ix_consents_event_id_id", "event_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="SET NULL"), index=True)
    # None: a STOP or START from a number that is no attendee of any event
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    phone_number: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164; None once erased
    kind: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))
    words: Mapped[str | None] = mapped_column(Text)  # the text as received; None on the web, or once erased
    terms_version: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
