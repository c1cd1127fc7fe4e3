"""Wire models of the messaging domain: a broadcast to an event's attendees, and the message history."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from stagevote.core.schemas import Schema

Channel = Literal["sms", "email"]
BroadcastType = Literal["NUDGE", "RESULTS", "RECAP", "CUSTOM"]
AudienceName = Literal["all", "confirmed", "voted", "not_voted"]
MessageStatus = Literal["queued", "sending", "sent", "delivered", "undelivered", "failed"]
MAX_BODY = 10_000  # an e-mail; an SMS body is held to 1,600 characters (Twilio's limit) by the service


class BroadcastRequest(Schema):
    """One message to many attendees of an event."""

    channel: Channel
    message_type: BroadcastType = Field(description="CUSTOM needs a body; the others fall back to their template")
    body: str | None = Field(default=None, max_length=MAX_BODY, description="The text, the same for everyone")
    subject: str | None = Field(default=None, max_length=200, description="E-mail only; default: from the type")
    audience: AudienceName = Field(
        default="all",
        description="all · confirmed (their ballot counts) · voted / not_voted (in `round`)",
    )
    round: int | None = Field(
        default=None, ge=1, description="For voted, not_voted and RESULTS; default: the current round"
    )


class Skipped(Schema):
    opted_out: int = Field(description="Attendees who opted out (STOP): sent nothing, no history row")
    no_address: int = Field(description="Attendees without an address on the channel (no e-mail)")
    capped: int = Field(
        default=0,
        description="Fans who had their MARKETING_PER_DAY marketing messages of the event on the channel in the"
        " last 24 hours: sent nothing, no history row",
    )


class BroadcastResult(Schema):
    queued: int = Field(description="Messages queued for delivery, one per attendee reached")
    skipped: Skipped
    deferred: int = Field(
        default=0, description="Of those queued, SMS held until the recipient's quiet hours end (then sent)"
    )


class Cost(Schema):
    amount: float = Field(description="Estimated price of every segment, from the SMS_PRICES table")
    currency: str


class DryRunResult(Schema):
    """What the broadcast would do, with nothing queued."""

    recipients: int = Field(description="Messages that would be queued")
    skipped: Skipped
    deferred: int = Field(description="Of the recipients, those in quiet hours now: their SMS would wait")
    encoding: Literal["gsm7", "ucs2"] | None = Field(
        description="ucs2 when any recipient's text needs it; null for e-mail"
    )
    segments_per_message: int = Field(description="Segments of the longest text (texts differ by ballot link)")
    total_segments: int = Field(description="Segments of all the texts, each counted as its recipient gets it")
    estimated_cost: Cost


class MessageRead(Schema):
    id: int
    attendee_id: int | None
    channel: Channel
    message_type: str
    status: MessageStatus
    sent_at: dt.datetime | None
    recipient: str | None
    body: str
    subject: str | None
    attempts: int
    error: str | None
    created_at: dt.datetime


class ChannelStats(Schema):
    """Messages of one channel by status, and its delivery rate."""

    queued: int = 0
    sending: int = 0
    sent: int = 0
    delivered: int = 0
    undelivered: int = 0
    failed: int = 0
    total: int = 0
    delivery_rate: float | None = Field(
        default=None,
        description="(sent + delivered) / (sent + delivered + undelivered + failed): of the messages whose"
        " attempt has ended, the share the provider took and did not report lost; null before any ended",
    )


class MessageStats(Schema):
    sms: ChannelStats
    email: ChannelStats
    total: int
    delivery_rate: float | None = Field(description="The same rate over both channels")


class MessageHistory(Schema):
    """A page of the event's messages, newest first, and statistics over all of them (filters aside)."""

    items: list[MessageRead]
    total: int
    limit: int
    offset: int
    stats: MessageStats
