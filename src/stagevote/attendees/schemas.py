"""Wire models of the attendees domain: joining, confirming, pre-registering and listing attendees."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import EmailStr, Field, field_validator

from stagevote.core.schemas import Schema
from stagevote.events.schemas import Language


def _lower_email(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


class JoinRequest(Schema):
    """Join an event from the web: a CONFIRM SMS with the code (or the ballot link) follows."""

    phone_number: str = Field(
        min_length=1, max_length=40, description="E.164 (+15551234567), or national in the default region"
    )
    email: EmailStr | None = None
    language_pref: Language | None = Field(default=None, description="Language of the texts; default: the event's")

    _email = field_validator("email")(_lower_email)


class JoinAccepted(Schema):
    attendee_id: int = Field(description="Send it with the code to POST /attendees/{attendeeId}/confirm")


class ConfirmRequest(Schema):
    # [0-9], not \d: \d also matches the digits of other scripts (Arabic-Indic, Devanagari…)
    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", description="The 6-digit code sent by SMS")


class AttendeeRead(Schema):
    """An attendee of one event: one per (event, phone number)."""

    id: int
    event_id: int
    phone_number: str | None = Field(description="E.164; null once the attendee's personal data was erased")
    email: str | None
    joined_at: dt.datetime
    confirmed_at: dt.datetime | None
    opted_out: bool
    pre_registered: bool = Field(description="Added by the organizer (needed to join a private event)")


class Confirmation(Schema):
    attendee: AttendeeRead
    ballot_token: str = Field(description="`Authorization: Bearer <ballotToken>` for POST /events/{id}/vote")
    ballot_url: str = Field(description="The fan's ballot page, `{PUBLIC_URL}/b/{ballotToken}`")


class PreRegistration(Schema):
    """One number the organizer adds to the event (a private event admits only these)."""

    phone_number: str = Field(min_length=1, max_length=40)
    email: EmailStr | None = None

    _email = field_validator("email")(_lower_email)


class ImportProblem(Schema):
    line: int = Field(description="Line of the file, the header being line 1")
    message: str


class ImportResult(Schema):
    """What a CSV upload did: rows added, numbers already attendees (or repeated in the file), rows refused."""

    created: int
    duplicates: int
    invalid: list[ImportProblem]


class ExportedAttendee(Schema):
    id: int
    event_id: int
    phone_number: str | None = Field(description="E.164; null once erased")
    email: str | None
    language_pref: str | None
    joined_at: dt.datetime
    confirmed_at: dt.datetime | None = Field(description="When the phone was confirmed (double opt-in)")
    opted_out: bool
    opted_out_at: dt.datetime | None = Field(default=None, description="When the number texted STOP, if it did")
    pre_registered: bool
    erased_at: dt.datetime | None
    join_address: str | None = Field(
        default=None, description="Where the latest web join came from (IPv4, or an IPv6 /64); null once erased"
    )


class ExportedVote(Schema):
    id: int
    round: int
    artist_id: int
    channel: str
    created_at: dt.datetime


class ExportedMessage(Schema):
    id: int
    channel: str
    message_type: str
    status: str
    recipient: str | None
    subject: str | None
    body: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


class ExportedText(Schema):
    message_sid: str
    body: str
    reply: str | None = Field(description="Our answer (TwiML)")
    received_at: dt.datetime


class ExportedConsent(Schema):
    event_id: int | None
    kind: Literal["opt_in", "opt_out"]
    channel: Literal["sms", "web"]
    words: str | None = Field(description="The text as received (JOIN …, STOP, START); null on the web, or erased")
    terms_version: str | None = Field(description="The terms a web join agreed to")
    at: dt.datetime


class AttendeeExport(Schema):
    """Everything held about one attendee: the attendee, their votes, the messages sent to them and the texts
    their number sent us."""

    attendee: ExportedAttendee
    votes: list[ExportedVote]
    messages: list[ExportedMessage]
    inbound_messages: list[ExportedText]
    consents: list[ExportedConsent] = Field(default_factory=list, description="Every opt-in and opt-out, oldest first")
    exported_at: dt.datetime
