"""The rules of attendees: joining by SMS or the web, confirming the phone, pre-registration, who may vote.

Access types:
- `public`: anyone joins.
- `private`: only numbers the organizer pre-registered join (`POST /events/{id}/attendees`); anyone else
  is refused (403 on the web, a polite SMS) and leaves no row.
- `hybrid`: anyone joins, but a vote counts only from an attendee who was pre-registered or confirmed
  the phone: a walk-in must confirm even when `voteConfig.requireConfirmation` is false, while a
  pre-registered number may vote without confirming.
In `public` and `private` events `requireConfirmation` decides alone.

Confirmation is a double opt-in: a 6-digit code (`secrets.randbelow`) goes to the phone, stored only as
an HMAC-SHA256 keyed by the server's secret (six digits need no slow hash: the tries are what is
limited). It expires after 10 minutes and allows 5 wrong tries (then 429 until it expires); joining
again (the web call, or texting the keyword) issues a new code and resets the tries. Whoever holds
the code proves they hold the phone, so the ballot token is only ever answered to a correct code
(`POST /attendees/{id}/confirm`) or sent to the phone itself: a web join answers `{attendeeId}` and
nothing more, even when no confirmation is needed (the ballot link then goes out by SMS at once).

Opt-outs are per phone number (`phone_opt_outs`) and mirrored on every attendee row of the number
(`attendees.opted_out`), so the vote path and the messaging layer read a column instead of a table.

The consent record (`consents`) keeps every opt-in and opt-out a fan made: an SMS JOIN (the words as texted),
a web join (channel `web`, the `TERMS_VERSION` the page showed), STOP and START (the words as texted; a row
for each attendee row of the number, as the opt-out holds across events, or one for the number alone). An
admin's pre-registration is not the fan's consent and records none; nor does a carrier's report that a
number unsubscribed (Twilio 21610), which opts the number out all the same. Erasure keeps each consent's
kind, channel, terms version and time, and blanks the number and the words.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import phonenumbers
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees.models import Attendee, Consent
from stagevote.attendees.repository import AttendeeRepository, ConsentRepository, PhoneOptOutRepository
from stagevote.audit import service as audit
from stagevote.audit.service import Caller
from stagevote.auth.principal import Principal
from stagevote.core.db import after_commit, utcnow
from stagevote.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from stagevote.core.network import UNKNOWN as UNKNOWN_CLIENT
from stagevote.core.runtime import Runtime
from stagevote.core.schemas import MAX_INT
from stagevote.core.security import InvalidToken, decode_jwt, encode_jwt
from stagevote.events import service as events_service
from stagevote.events.models import AccessType, Event, EventStatus
from stagevote.events.schemas import VoteConfig
from stagevote.messaging import service as messaging_service
from stagevote.messaging.models import Message
from stagevote.messaging.texts import text
from stagevote.voting.models import Vote

BALLOT = "ballot"
CODE_LIFETIME = dt.timedelta(minutes=10)
MAX_CODE_TRIES = 5
# the web join sends an SMS to the number it is given: limit it per number and per caller
JOIN_RATE_PER_PHONE = "10/hour"
JOIN_RATE_PER_IP = "30/minute"
JOINABLE = frozenset({EventStatus.PUBLISHED, EventStatus.LIVE})
# the organizer prepares the list of a private event before publishing it, and may add to it until it closes
REGISTRABLE = frozenset({EventStatus.DRAFT, EventStatus.PUBLISHED, EventStatus.LIVE})
MAX_IMPORT_ROWS = 50_000
ATTENDEES_CHANGED = "attendees.changed"  # in-process signal: {eventId} (None: attendees of any event)
# in the unit of work (hooks): what other domains hold about an attendee, exported or erased with it
ATTENDEE_EXPORT = "attendee.export"  # {attendeeId, phoneNumber, export: {section: [...]}}, filled by subscribers
ATTENDEE_ERASED = "attendee.erased"  # {attendeeId, phoneNumber, lastHolder}: the data is erased in this commit

_email = TypeAdapter(EmailStr)
CodeResult = Literal["confirmed", "wrong", "locked", "expired", "none"]


# --- phone numbers ---------------------------------------------------------------------------------


def parse_phone(raw: str, *, region: str, strict: bool = True) -> str | None:
    """The number in E.164, or None. `strict` wants a number valid in its country's plan; otherwise a
    possible one is enough (what a carrier hands us in `From` is real even if our metadata lags)."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    ok = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if ok else None


def phone_number_of(raw: str, *, runtime: Runtime) -> str:
    """The number in E.164; 422 (`phoneNumber`) when it is not a valid phone number."""
    phone = parse_phone(raw, region=runtime.settings.default_phone_region)
    if phone is None:
        raise Unprocessable.field(
            "phoneNumber", "not a valid phone number; write it with its country code, e.g. +14155550100"
        )
    return phone


# --- who may vote ----------------------------------------------------------------------------------


def needs_confirmation(*, attendee: Attendee, event: Event, config: VoteConfig) -> bool:
    """Whether the attendee must confirm the phone before voting (see the module docstring)."""
    if event.access_type == AccessType.HYBRID.value:
        return not attendee.pre_registered
    return config.require_confirmation


def ensure_may_vote(*, attendee: Attendee, event: Event, config: VoteConfig) -> None:
    """403 unless the attendee may vote at the event now: not erased, not opted out, on the list of a
    private event, and confirmed where confirmation is required. No query: columns only."""
    if attendee.event_id != event.id:
        raise Forbidden("This attendee belongs to another event.", slug="other-event")
    if attendee.erased_at is not None:
        raise Forbidden("This attendee's personal data was erased; they can no longer vote.", slug="attendee-erased")
    if attendee.voided_at is not None:
        raise Forbidden("The organizer voided this attendee's votes; they can no longer vote.", slug="attendee-voided")
    if attendee.opted_out:
        raise Forbidden("This number opted out (STOP); text START to take part again.", slug="opted-out")
    if event.access_type == AccessType.PRIVATE.value and not attendee.pre_registered:
        raise Forbidden("This event is private: only numbers registered by the organizer vote.", slug="not-registered")
    if attendee.confirmed_at is None and needs_confirmation(attendee=attendee, event=event, config=config):
        raise Forbidden("Confirm your phone number with the code we sent first.", slug="not-confirmed")


@dataclass(frozen=True)
class BallotRule:
    """`ensure_may_vote`'s rule for one event as flags, for a statement that checks many attendees at once
    (the vote path's group commit): beyond not erased and not opted out, an attendee votes when
    `registered_only` is false or they were pre-registered, and has confirmed the phone when the flag
    for their kind (`confirm_registered`, `confirm_walk_in`) asks it."""

    registered_only: bool
    confirm_registered: bool
    confirm_walk_in: bool


def ballot_rule(*, event: Event, config: VoteConfig) -> BallotRule:
    hybrid = event.access_type == AccessType.HYBRID.value
    return BallotRule(
        registered_only=event.access_type == AccessType.PRIVATE.value,
        confirm_registered=False if hybrid else config.require_confirmation,
        confirm_walk_in=True if hybrid else config.require_confirmation,
    )


def holds_a_ballot(*, attendee: Attendee, event: Event, config: VoteConfig) -> bool:
    """Whether the attendee's ballot counts, an opt-out aside: `ensure_may_vote` as a yes or no, without
    the opt-out (messaging counts opted-out attendees as skipped, so it must still see them)."""
    if attendee.event_id != event.id or attendee.erased_at is not None or attendee.voided_at is not None:
        return False
    if event.access_type == AccessType.PRIVATE.value and not attendee.pre_registered:
        return False
    return attendee.confirmed_at is not None or not needs_confirmation(attendee=attendee, event=event, config=config)


def language_of(attendee: Attendee | None, event: Event | None) -> str:
    """The language texts to this attendee are written in: theirs, else the event's, else English."""
    if attendee is not None and attendee.language_pref:
        return attendee.language_pref
    return event.default_language if event is not None else "en"


# --- audiences (who a broadcast or an automatic message goes to) -----------------------------------

Audience = Literal["all", "confirmed", "voted", "not_voted"]


async def audience(
    *, session: AsyncSession, event: Event, who: Audience, round_number: int | None = None
) -> list[Attendee]:
    """The event's attendees a message to `who` is meant for, opted-out ones included (the sender skips them).

    Erased attendees are in no audience. `all`: every other attendee. `confirmed`: those whose ballot
    counts (`holds_a_ballot`: confirmed, or needing no confirmation, e.g. pre-registered in a hybrid
    event; on the list of a private one). `voted`: those who cast a vote in `round_number`.
    `not_voted`: the `confirmed` ones who cast none in it.
    """
    voted = {"voted": True, "not_voted": False}.get(who)
    if voted is not None and round_number is None:
        raise ValueError(f"the audience {who} needs a round")
    rows = await AttendeeRepository(session).reachable_of_event(event.id, round_number=round_number, voted=voted)
    if who in ("all", "voted"):
        return list(rows)
    config = events_service.vote_config_of(event)
    return [a for a in rows if holds_a_ballot(attendee=a, event=event, config=config)]


def announce_change(*, session: AsyncSession, runtime: Runtime, event_id: int | None) -> None:
    """Once this unit of work commits, tell this process that attendees of the event (None: of any event,
    as after a STOP) joined, confirmed, opted out or were erased: live analytics follow."""

    async def tell() -> None:
        await runtime.signals.publish(ATTENDEES_CHANGED, {"eventId": event_id})

    after_commit(session, tell)


# --- ballot tokens ---------------------------------------------------------------------------------


def ballot_token_for(*, runtime: Runtime, attendee: Attendee, event: Event) -> str:
    """A signed ballot token, valid until a day after the event ends (at least a day)."""
    lifetime = max(event.end_date + dt.timedelta(days=1) - utcnow(), dt.timedelta(days=1))
    return encode_jwt(
        {"att": attendee.id, "evt": event.id},
        secret=runtime.secret_key.get_secret_value(),
        purpose=BALLOT,
        lifetime=lifetime,
    )


def ballot_url(runtime: Runtime, token: str) -> str:
    return f"{runtime.settings.public_url}/b/{token}"


def attendee_id_of_ballot(*, runtime: Runtime, ballot_token: str, event_id: int) -> int:
    """The attendee id a ballot token of this event names (no query); 401 for a bad, expired or other event's token."""
    try:
        claims = decode_jwt(ballot_token, secret=runtime.secret_key.get_secret_value(), purpose=BALLOT)
        attendee_id, token_event = int(claims["att"]), int(claims["evt"])
    except (InvalidToken, KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("Invalid or expired ballot token; join again for a new ballot link.") from exc
    if token_event != event_id:
        raise Unauthorized("This ballot token is for another event.")
    return attendee_id


async def attendee_for_ballot(*, session: AsyncSession, runtime: Runtime, ballot_token: str, event_id: int) -> Attendee:
    """The attendee a ballot token speaks for; 401 for a bad or expired token, or one for another event."""
    attendee_id = attendee_id_of_ballot(runtime=runtime, ballot_token=ballot_token, event_id=event_id)
    attendee = await AttendeeRepository(session).get(attendee_id)
    if attendee is None or attendee.event_id != event_id or attendee.erased_at is not None:
        raise Unauthorized("This ballot no longer exists.")
    return attendee


# --- opt-out ---------------------------------------------------------------------------------------


async def may_be_messaged(*, session: AsyncSession, attendee_id: int) -> bool:
    """Whether anything may still be sent to this attendee: not opted out, not erased."""
    attendee = await AttendeeRepository(session).get(attendee_id)
    return attendee is not None and not attendee.opted_out and attendee.erased_at is None


def phone_digest(runtime: Runtime, phone_number: str) -> str:
    """The keyed hash (HMAC-SHA256 with the server's secret) an erased attendee's opt-out is kept as."""
    message = f"phone-opt-out:{phone_number}".encode()
    return hmac.new(runtime.secret_key.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


async def is_opted_out(*, session: AsyncSession, runtime: Runtime, phone_number: str) -> bool:
    """Whether the number texted STOP (and not START since), its attendee data erased or not."""
    return await PhoneOptOutRepository(session).is_opted_out(phone_number, phone_digest(runtime, phone_number))


async def record_consent(
    *,
    session: AsyncSession,
    attendee: Attendee,
    kind: Literal["opt_in", "opt_out"],
    channel: Literal["sms", "web"],
    words: str | None = None,
    terms_version: str | None = None,
) -> None:
    """Keep an opt-in or opt-out of this attendee on record, with the words texted or the terms agreed to."""
    session.add(
        Consent(
            attendee_id=attendee.id, event_id=attendee.event_id, phone_number=attendee.phone_number, kind=kind,
            channel=channel, words=words, terms_version=terms_version, at=utcnow(),
        )
    )  # fmt: skip
    await session.flush()


async def opt_out(*, session: AsyncSession, runtime: Runtime, phone_number: str, words: str | None = None) -> bool:
    """STOP: nothing more goes to the number, from any event; False when it had already opted out.

    `words`: what the number texted, kept in the consent record (even a repeated STOP); None (a carrier's
    report) records nothing."""
    if words is not None:
        await ConsentRepository(session).add_for_phone(
            phone_number, kind="opt_out", channel="sms", words=words, at=utcnow()
        )
    opt_outs = PhoneOptOutRepository(session)
    newly = await opt_outs.add_if_new(phone_number)
    already = await opt_outs.has_digest(phone_digest(runtime, phone_number))
    await AttendeeRepository(session).set_opted_out(phone_number, True)
    announce_change(session=session, runtime=runtime, event_id=None)
    return newly and not already


async def opt_in(*, session: AsyncSession, runtime: Runtime, phone_number: str, words: str | None = None) -> bool:
    """START: the number may be sent messages again; False when it had not opted out. `words`: as `opt_out`."""
    if words is not None:
        await ConsentRepository(session).add_for_phone(
            phone_number, kind="opt_in", channel="sms", words=words, at=utcnow()
        )
    opt_outs = PhoneOptOutRepository(session)
    removed = await opt_outs.remove(phone_number)
    forgotten = await opt_outs.remove_digest(phone_digest(runtime, phone_number))
    await AttendeeRepository(session).set_opted_out(phone_number, False)
    announce_change(session=session, runtime=runtime, event_id=None)
    return removed or forgotten


async def latest_attendee(
    *, session: AsyncSession, phone_number: str, live_only: bool = False
) -> tuple[Attendee, Event] | None:
    """The number's most recently joined attendee row (of a live event, with `live_only`) and its event.

    An SMS vote goes to this row's event: the fan is at one venue at a time.
    """
    statuses = frozenset({EventStatus.LIVE}) if live_only else None
    return await AttendeeRepository(session).latest_of_phone(phone_number, statuses=statuses)


@dataclass(frozen=True)
class PhoneVoter:
    """What an SMS vote needs of a number: whether it opted out, and its latest attendee row of a live event.

    `attendee` is a snapshot of the columns the vote path reads (`VOTER_COLUMNS`: `ensure_may_vote`,
    `language_of`, `needs_confirmation`), not a row of the session: read it, never change it."""

    opted_out: bool
    attendee: Attendee | None


async def phone_voter(*, session: AsyncSession, runtime: Runtime, phone_number: str) -> PhoneVoter:
    """`is_opted_out` and `latest_attendee(live_only=True)` in one statement (two when the number has no such
    row), without the ORM's loading: an SMS vote's look-up."""
    digest = phone_digest(runtime, phone_number)
    found = await AttendeeRepository(session).latest_live_of_phone_with_opt_out(phone_number, digest)
    if found is None:
        return PhoneVoter(await PhoneOptOutRepository(session).is_opted_out(phone_number, digest), None)
    opted_out = bool(found.pop("opted_out_anywhere"))
    return PhoneVoter(opted_out=opted_out, attendee=Attendee(**found))


# --- joining ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    """What joining did: a fresh `code` to send, or a `ballot_token` when the attendee may vote already."""

    attendee: Attendee
    event: Event
    created: bool
    code: str | None = None
    ballot_token: str | None = None
    already_confirmed: bool = False


def _code_digest(runtime: Runtime, attendee_id: int, code: str) -> str:
    message = f"attendee-confirmation:{attendee_id}:{code}".encode()
    return hmac.new(runtime.secret_key.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def _issue_code(runtime: Runtime, attendee: Attendee, now: dt.datetime) -> str:
    code = f"{secrets.randbelow(10**6):06d}"
    attendee.confirmation_code_hash = _code_digest(runtime, attendee.id, code)
    attendee.confirmation_expires_at = now + CODE_LIFETIME
    attendee.confirmation_attempts = 0
    return code


def _require_joinable(event: Event) -> None:
    if EventStatus(event.status) not in JOINABLE:
        raise Conflict(f"This event is {event.status}; it no longer takes attendees.", slug="event-not-joinable")


PRIVATE_REFUSAL = "This event is private: only numbers registered by the organizer may join."


async def join(
    *,
    session: AsyncSession,
    runtime: Runtime,
    event: Event,
    phone_number: str,
    email: str | None = None,
    language_pref: str | None = None,
) -> Joined:
    """Join a published or live event with an E.164 number (the SMS JOIN and the web join share this).

    403 a number not pre-registered for a private event. Joining again re-issues a fresh code to an
    attendee still to confirm, and gives an attendee who may vote the ballot token again.
    """
    _require_joinable(event)
    attendees = AttendeeRepository(session)
    attendee = await attendees.get_by_phone_for_update(event.id, phone_number)
    created = False
    if attendee is None:
        if event.access_type == AccessType.PRIVATE.value:
            raise Forbidden(PRIVATE_REFUSAL, slug="not-registered")
        opted_out = await is_opted_out(session=session, runtime=runtime, phone_number=phone_number)
        new_id = await attendees.insert_if_new(
            {"event_id": event.id, "phone_number": phone_number, "opted_out": opted_out, "pre_registered": False}
        )
        created = new_id is not None
        attendee = await attendees.get_by_phone_for_update(event.id, phone_number)
        if attendee is None:  # erased between the insert and this read: nothing sensible to do but retry
            raise Conflict("This number changed while joining; try again.", slug="join-conflict")
    elif event.access_type == AccessType.PRIVATE.value and not attendee.pre_registered:
        raise Forbidden(PRIVATE_REFUSAL, slug="not-registered")
    if email is not None:
        attendee.email = email
    if language_pref is not None:
        attendee.language_pref = language_pref
    config = events_service.vote_config_of(event)
    if attendee.confirmed_at is None and needs_confirmation(attendee=attendee, event=event, config=config):
        result = Joined(attendee, event, created, code=_issue_code(runtime, attendee, utcnow()))
    else:
        token = ballot_token_for(runtime=runtime, attendee=attendee, event=event)
        result = Joined(
            attendee, event, created, ballot_token=token, already_confirmed=attendee.confirmed_at is not None
        )
    await attendees.flush()
    announce_change(session=session, runtime=runtime, event_id=event.id)
    return result


async def join_on_web(
    *,
    session: AsyncSession,
    runtime: Runtime,
    event_id: int,
    phone_number: str,
    email: str | None,
    language_pref: str | None,
    client_ip: str,
) -> Attendee:
    """The web twin of texting the keyword: join, then a CONFIRM SMS with the code (or the ballot link).

    429 past the rate limits (per caller address, per number) · 422 (`phoneNumber`) not a phone number ·
    404 unknown or draft event · 409 event closed or archived, or the number opted out (STOP) · 403 a
    private event that does not have the number on its list.
    """
    await runtime.limiter.hit(JOIN_RATE_PER_IP, "join-ip", client_ip, what="join attempts from this address")
    phone = phone_number_of(phone_number, runtime=runtime)
    await runtime.limiter.hit(JOIN_RATE_PER_PHONE, "join-phone", phone, what="join attempts for this number")
    event = await events_service.get_event(session=session, principal=None, event_id=event_id)
    _require_joinable(event)
    if await is_opted_out(session=session, runtime=runtime, phone_number=phone):
        raise Conflict(
            "This number has opted out of our texts (STOP); text START to our number to receive them again.",
            slug="opted-out",
        )
    joined = await join(
        session=session, runtime=runtime, event=event, phone_number=phone, email=email, language_pref=language_pref
    )
    attendee = joined.attendee
    attendee.join_address = None if client_ip == UNKNOWN_CLIENT else client_ip
    await record_consent(
        session=session, attendee=attendee, kind="opt_in", channel="web", terms_version=runtime.settings.terms_version
    )
    language = language_of(attendee, event)
    if joined.code is not None:
        body = text("web_code", language, kw=event.keyword, code=joined.code)
    else:
        url = ballot_url(runtime, joined.ballot_token or "")
        body = text("already_in" if joined.already_confirmed else "web_ballot", language, kw=event.keyword, url=url)
    await messaging_service.send_sms(
        session=session, runtime=runtime, attendee=attendee, body=body, message_type="CONFIRM"
    )
    return attendee


# --- confirming ------------------------------------------------------------------------------------


def _check_code(
    runtime: Runtime, attendee: Attendee, code: str, now: dt.datetime, *, from_the_phone: bool = False
) -> CodeResult:
    """Compare a code with the attendee's; a wrong one spends a try. `confirmed` sets `confirmed_at`.

    `from_the_phone`: the code was texted from the attendee's own number (a signed webhook). Holding
    the phone is what the code proves, so the right code confirms even once wrong tries locked it:
    wrong tries on the web, anyone's, never lock the phone itself out.
    """
    if attendee.confirmation_code_hash is None:
        return "none"
    if attendee.confirmation_expires_at is None or attendee.confirmation_expires_at <= now:
        return "expired"
    if attendee.confirmation_attempts >= MAX_CODE_TRIES and not from_the_phone:
        return "locked"
    if hmac.compare_digest(_code_digest(runtime, attendee.id, code), attendee.confirmation_code_hash):
        if attendee.confirmed_at is None:
            attendee.confirmed_at = now
        return "confirmed"
    attendee.confirmation_attempts += 1
    return "locked" if attendee.confirmation_attempts >= MAX_CODE_TRIES else "wrong"


def tries_left(attendee: Attendee) -> int:
    return max(0, MAX_CODE_TRIES - attendee.confirmation_attempts)


@dataclass(frozen=True)
class Confirmed:
    attendee: Attendee
    event: Event
    ballot_token: str
    ballot_url: str


def _wrong_code(left: int) -> Unprocessable:
    error = Unprocessable.field("code", f"wrong code; {left} {'try' if left == 1 else 'tries'} left")
    error.commit_session = True  # the spent try must stay spent
    return error


def _locked() -> TooManyRequests:
    """Five wrong tries: `Retry-After` is a code's whole lifetime, whatever this code has left.

    The time a pending code has left would tell a prober that the id exists and when its fan joined;
    an id with no code answers the same constant. A fan told to wait longer than needed loses little:
    joining again sends a new code at once.
    """
    error = TooManyRequests(
        "Too many wrong codes; wait until this code expires, then join again for a new one.",
        retry_after=int(CODE_LIFETIME.total_seconds()),
    )
    error.commit_session = True
    return error


async def _no_code_here(runtime: Runtime, attendee_id: int) -> ProblemError:
    """The answer for an id with no code to check (no such attendee, erased, or never sent one).

    It is the answer to a wrong code, tries left and lock included: it counts down from 5 and locks
    for the lifetime of a code, as if a code were pending that nothing matches. So probing ids tells
    which exist no better than guessing codes does.
    """
    spent = await runtime.limiter.spend(
        f"{MAX_CODE_TRIES}/{int(CODE_LIFETIME.total_seconds())} seconds", "confirm-none", str(attendee_id)
    )
    if spent.allowed and spent.remaining > 0:
        return _wrong_code(spent.remaining)
    return _locked()


async def confirm_on_web(
    *, session: AsyncSession, runtime: Runtime, attendee_id: int, code: str, client_ip: str = UNKNOWN_CLIENT
) -> Confirmed:
    """Confirm the phone with the code it was sent; the ballot token, and the ballot link by SMS.

    Rate-limited per caller (`client_ip`, the key per-IP limits count by) and per attendee id, whether
    the id exists or not (429 with `Retry-After`). 422 (`code`) a wrong code (tries left in the detail),
    an expired one · 429 five wrong tries: no more until the code expires (then join again for a new
    one) · 409 the event no longer takes attendees. An unknown attendee id, or one sent no code, is
    answered exactly as a wrong code is. The same right code again answers the same way (a double
    submit); only the first sends the SMS.
    """
    settings = runtime.settings
    await runtime.limiter.hit(
        settings.confirm_rate_per_ip, "confirm-ip", client_ip, what="confirmation attempts from this address"
    )
    await runtime.limiter.hit(
        settings.confirm_rate_per_attendee, "confirm-attendee", str(attendee_id), what="confirmation attempts"
    )
    attendees = AttendeeRepository(session)
    attendee = await attendees.get_for_update(attendee_id) if 0 < attendee_id <= MAX_INT else None
    if attendee is None or attendee.erased_at is not None or attendee.confirmation_code_hash is None:
        raise await _no_code_here(runtime, attendee_id)
    event = await events_service.get_event(session=session, principal=None, event_id=attendee.event_id)
    _require_joinable(event)
    now = utcnow()
    was_confirmed = attendee.confirmed_at is not None
    result = _check_code(runtime, attendee, code.strip(), now)
    await attendees.flush()
    if result == "confirmed" and not was_confirmed:
        announce_change(session=session, runtime=runtime, event_id=event.id)
    if result == "none":  # pragma: no cover - handled above, before the event was read
        raise await _no_code_here(runtime, attendee_id)
    if result == "expired":
        raise Unprocessable.field("code", "this code has expired; ask for a new one by joining again")
    if result == "locked":
        raise _locked()
    if result == "wrong":
        raise _wrong_code(tries_left(attendee))
    token = ballot_token_for(runtime=runtime, attendee=attendee, event=event)
    url = ballot_url(runtime, token)
    if not was_confirmed:
        body = text("confirmed", language_of(attendee, event), kw=event.keyword, url=url)
        await messaging_service.send_sms(
            session=session, runtime=runtime, attendee=attendee, body=body, message_type="CONFIRM"
        )
    return Confirmed(attendee, event, token, url)


@dataclass(frozen=True)
class CodeOutcome:
    """What a code texted in did, for the reply: `attendee`/`event` are known unless `result` is none."""

    result: CodeResult
    attendee: Attendee | None = None
    event: Event | None = None
    ballot_token: str | None = None


async def confirm_by_sms(*, session: AsyncSession, runtime: Runtime, phone_number: str, code: str) -> CodeOutcome:
    """A 6-digit code texted in: it confirms whichever of the number's joinable attendee rows it was sent to.

    The text comes from the phone itself (Twilio signs the webhook), so the right code confirms even when
    wrong tries (on the web, anyone's) locked it. A code that matches none spends a try of the most
    recent code still pending.
    """
    rows = await AttendeeRepository(session).with_code_of_phone(phone_number, statuses=JOINABLE)
    now = utcnow()
    for attendee, event in rows:
        if hmac.compare_digest(_code_digest(runtime, attendee.id, code), attendee.confirmation_code_hash or ""):
            result = _check_code(runtime, attendee, code, now, from_the_phone=True)
            await AttendeeRepository(session).flush()
            if result == "confirmed":
                announce_change(session=session, runtime=runtime, event_id=event.id)
            token = ballot_token_for(runtime=runtime, attendee=attendee, event=event) if result == "confirmed" else None
            return CodeOutcome(result, attendee, event, token)
    pending = [(a, e) for a, e in rows if a.confirmed_at is None]
    if not pending:
        return CodeOutcome("none")
    attendee, event = pending[0]
    result = _check_code(runtime, attendee, code, now)
    await AttendeeRepository(session).flush()
    return CodeOutcome(result, attendee, event)


# --- the organizer's list --------------------------------------------------------------------------


async def _event_for_registration(*, session: AsyncSession, principal: Principal, event_id: int) -> Event:
    event = await events_service.get_event(session=session, principal=principal, event_id=event_id)
    if EventStatus(event.status) not in REGISTRABLE:
        raise Conflict(f"This event is {event.status}; its attendee list is closed.", slug="event-not-joinable")
    return event


async def pre_register(
    *,
    session: AsyncSession,
    runtime: Runtime,
    principal: Principal,
    event_id: int,
    phone_number: str,
    email: str | None,
) -> Attendee:
    """Add one number to the event's list (pre-registered). 404 unknown event · 409 closed or archived event,
    or the number is already an attendee · 422 (`phoneNumber`) not a phone number."""
    event = await _event_for_registration(session=session, principal=principal, event_id=event_id)
    phone = phone_number_of(phone_number, runtime=runtime)
    opted_out = await is_opted_out(session=session, runtime=runtime, phone_number=phone)
    attendees = AttendeeRepository(session)
    new_id = await attendees.insert_if_new(
        {"event_id": event.id, "phone_number": phone, "email": email, "opted_out": opted_out, "pre_registered": True}
    )
    if new_id is None:
        raise Conflict("This number is already an attendee of the event.", slug="attendee-exists")
    announce_change(session=session, runtime=runtime, event_id=event.id)
    attendee = await attendees.get(new_id)
    if attendee is None:  # pragma: no cover - just inserted in this unit of work
        raise NotFound(f"No attendee {new_id}.")
    return attendee


@dataclass
class ImportReport:
    created: int = 0
    duplicates: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


_PHONE_HEADERS = frozenset({"phonenumber", "phone", "mobile", "number"})
_EMAIL_HEADERS = frozenset({"email", "emailaddress", "mail"})


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _columns(header: Sequence[str]) -> tuple[int, int | None]:
    keys = [_header_key(name) for name in header]
    phone = next((i for i, k in enumerate(keys) if k in _PHONE_HEADERS), None)
    if phone is None:
        raise Unprocessable.field("file", "line 1 must be a header naming the columns: phoneNumber,email")
    email = next((i for i, k in enumerate(keys) if k in _EMAIL_HEADERS), None)
    return phone, email


def _records(reader: Any) -> Iterator[list[str]]:
    """The rows of a CSV reader; a file it cannot read (a field past the csv module's 128 KiB, a stray
    quote) is 422 (`file`) naming the line, not a 500."""
    try:
        yield from reader
    except csv.Error as exc:
        raise Unprocessable.field("file", f"line {reader.line_num}: {exc}") from exc


async def import_attendees(
    *, session: AsyncSession, runtime: Runtime, principal: Principal, event_id: int, content: str
) -> ImportReport:
    """Pre-register the numbers of a CSV file (header `phoneNumber,email`).

    Numbers already attendees of the event, or repeated in the file, count as duplicates and change
    nothing; a row with an invalid number or e-mail is reported with its line (the header is line 1)
    and the others are still added. 404 unknown event · 409 closed or archived · 422 no header.
    """
    event = await _event_for_registration(session=session, principal=principal, event_id=event_id)
    region = runtime.settings.default_phone_region
    report = ImportReport()
    reader = csv.reader(io.StringIO(content))
    header: list[str] | None = None
    phone_column, email_column = 0, None
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for record in _records(reader):
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = record
            phone_column, email_column = _columns(header)
            continue
        line = reader.line_num
        if len(rows) + report.duplicates + len(report.invalid) >= MAX_IMPORT_ROWS:
            raise Unprocessable.field("file", f"at most {MAX_IMPORT_ROWS} rows in one upload; split the file")
        raw_phone = record[phone_column].strip() if phone_column < len(record) else ""
        raw_email = record[email_column].strip() if email_column is not None and email_column < len(record) else ""
        phone = parse_phone(raw_phone, region=region) if raw_phone else None
        if phone is None:
            reason = "missing" if not raw_phone else f"'{raw_phone[:40]}' is not a valid phone number"
            report.invalid.append((line, f"phoneNumber: {reason}"))
            continue
        email: str | None = None
        if raw_email:
            try:
                email = str(_email.validate_python(raw_email)).lower()
            except ValidationError:
                report.invalid.append((line, f"email: '{raw_email[:80]}' is not a valid e-mail address"))
                continue
        if phone in seen:
            report.duplicates += 1
            continue
        seen.add(phone)
        rows.append({"event_id": event.id, "phone_number": phone, "email": email, "pre_registered": True})
    if header is None:
        raise Unprocessable.field("file", "the file is empty; line 1 must be the header phoneNumber,email")
    opted_out = await PhoneOptOutRepository(session).opted_out_among({p: phone_digest(runtime, p) for p in seen})
    for row in rows:
        row["opted_out"] = row["phone_number"] in opted_out
    report.created = await AttendeeRepository(session).insert_many_if_new(rows)
    if report.created:
        announce_change(session=session, runtime=runtime, event_id=event.id)
    report.duplicates += len(rows) - report.created
    return report


async def list_attendees(
    *,
    session: AsyncSession,
    principal: Principal,
    event_id: int,
    confirmed: bool | None,
    opted_out: bool | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Attendee], int]:
    await events_service.get_event(session=session, principal=principal, event_id=event_id)
    return await AttendeeRepository(session).page_for_event(
        event_id, confirmed=confirmed, opted_out=opted_out, limit=limit, offset=offset
    )


# --- data rights: what is held about one attendee, and erasing it ----------------------------------


@dataclass(frozen=True)
class AttendeeData:
    """Everything held about one attendee: the row, when the number opted out, votes, messages, and the
    sections other domains add (`inboundMessages`: what the number texted us)."""

    attendee: Attendee
    opted_out_at: dt.datetime | None
    votes: Sequence[Vote]
    messages: Sequence[Message]
    sections: dict[str, Any]
    consents: Sequence[Consent] = ()


async def export_attendee(*, session: AsyncSession, runtime: Runtime, caller: Caller, attendee_id: int) -> AttendeeData:
    """What we hold about the attendee, to answer "what do you hold on me?". 404 unknown attendee."""
    attendees = AttendeeRepository(session)
    attendee = await attendees.get(attendee_id)
    if attendee is None:
        raise NotFound(f"No attendee {attendee_id}.")
    phone = attendee.phone_number
    opted_out_at = await PhoneOptOutRepository(session).opted_out_at(phone) if phone else None
    payload: dict[str, Any] = {"attendeeId": attendee.id, "phoneNumber": phone, "export": {}}
    await runtime.hooks.run(ATTENDEE_EXPORT, session, payload)
    await _record(session, caller, attendee, "attendee.exported")
    return AttendeeData(
        attendee=attendee,
        opted_out_at=opted_out_at,
        votes=await attendees.votes_of(attendee.id),
        messages=await messaging_service.messages_of_attendee(session=session, attendee_id=attendee.id),
        sections=payload["export"],
        consents=await ConsentRepository(session).of_attendee(attendee.id),
    )


async def _record(session: AsyncSession, caller: Caller, attendee: Attendee, action: str) -> None:
    """An export or erasure in the audit log: the attendee's id and event, nothing personal."""
    await audit.record_by(
        session,
        caller,
        action=action,
        target=f"attendee:{attendee.id}",
        changes={"attendeeId": attendee.id},
        event_id=attendee.event_id,
    )


async def erase_attendee(*, session: AsyncSession, runtime: Runtime, caller: Caller, attendee_id: int) -> None:
    """Erase the attendee's personal data: phone number, e-mail, confirmation code, the bodies and
    recipients of their messages, and the number and words of their consents (the fact and time stay).
    Their votes stay counted (the rows stay, linked to the erased attendee),
    so leaderboards and reports do not move. A number that opted out stays opted out: its STOP is kept as a
    keyed hash of the number (`phone_opt_out_digests`), and in clear only while another attendee row still
    holds the number. The address their web join came from (`join_address`) is blanked too. Erasing twice
    is erasing once (the audit log records the first: `attendee.erased`, with the attendee's id only; audit
    rows hold no personal data, so nothing there needs erasing). 404 unknown attendee."""
    attendees = AttendeeRepository(session)
    attendee = await attendees.get_for_update(attendee_id)
    if attendee is None:
        raise NotFound(f"No attendee {attendee_id}.")
    if attendee.erased_at is not None:
        return
    phone = attendee.phone_number
    last_holder = False
    if phone is not None:
        last_holder = not await attendees.others_hold_phone(phone, except_attendee_id=attendee.id)
        opt_outs = PhoneOptOutRepository(session)
        digest = phone_digest(runtime, phone)
        if attendee.opted_out or await opt_outs.is_opted_out(phone, digest):
            await opt_outs.keep_as_digest(phone, digest)
            if last_holder:
                await opt_outs.forget_in_clear(phone)
    await messaging_service.erase_for_attendee(
        session=session, attendee_id=attendee.id, phone_number=phone if last_holder else None
    )
    await ConsentRepository(session).erase(attendee_id=attendee.id, phone_number=phone if last_holder else None)
    await runtime.hooks.run(
        ATTENDEE_ERASED, session, {"attendeeId": attendee.id, "phoneNumber": phone, "lastHolder": last_holder}
    )
    attendee.phone_number = None
    attendee.email = None
    attendee.confirmation_code_hash = None
    attendee.confirmation_expires_at = None
    attendee.join_address = None
    attendee.erased_at = utcnow()
    await attendees.flush()
    await _record(session, caller, attendee, "attendee.erased")
    announce_change(session=session, runtime=runtime, event_id=attendee.event_id)


# --- voids: an organizer takes an attendee out of the count (voting/voids.py voids their votes) -----------


async def mark_voided(*, session: AsyncSession, runtime: Runtime, attendee_id: int, reason: str) -> Attendee:
    """Mark the attendee voided: no vote of theirs is taken from now on. Voiding twice keeps the first
    reason and time. 404 unknown attendee."""
    attendees = AttendeeRepository(session)
    attendee = await attendees.get_for_update(attendee_id)
    if attendee is None:
        raise NotFound(f"No attendee {attendee_id}.")
    if attendee.voided_at is None:
        attendee.voided_at = utcnow()
        attendee.void_reason = reason
        await attendees.flush()
        announce_change(session=session, runtime=runtime, event_id=attendee.event_id)
    return attendee
