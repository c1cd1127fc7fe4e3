"""Broadcasts: one message to many attendees in a few multi-row INSERTs; what RESULTS say; the history.

`queue_many` is the bulk twin of `service.send_sms` / `send_email`, for an audience rather than one
attendee: the same rules (nothing to an opted-out or erased attendee, e-mail only to an address),
but one multi-row `INSERT … ON CONFLICT (dedupe_key) DO NOTHING` per thousand rows instead of a
query, a savepoint and a flush per row, so a broadcast to 10,000 fans, or the NUDGE written in the
unit of work that opens a round, costs a few statements. Every row has a dedupe key, so writing the
same messages twice (a retried request, two instances reacting to one trigger) writes them once.

Events in any status but archived take broadcasts: a draft or published event may message its
pre-registered list before the doors open; an archived one is done with its fans (409).

Marketing messages (NUDGE, CUSTOM, RECAP, and RESULTS to a fan who did not vote in the round: for the final
RESULTS, in no round) are screened on the way in (`screen`): one that would be the fan's
`MARKETING_PER_DAY`+1st marketing message of the event on the channel within 24 hours is skipped, counted
as `capped`, and gets no row; an SMS written during the recipient's quiet hours (`messaging.quiet`) is
written with `next_attempt_at` at the end of them, so the outbox hands it out then (`deferred`). A dry run
(`dry_run`) screens the same messages, writes nothing, and prices them (`messaging.segments`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.artists import service as artists_service
from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.auth.principal import Principal
from stagevote.core.db import utcnow
from stagevote.core.errors import Conflict, Unprocessable
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import Event, EventStatus, RoundStatus
from stagevote.messaging import outbox, quiet, sealing, segments
from stagevote.messaging.models import Message
from stagevote.messaging.repository import MessageRepository
from stagevote.messaging.schemas import BroadcastRequest
from stagevote.messaging.texts import TextKey, subject, text, top_line
from stagevote.voting import service as voting_service
from stagevote.voting.context import VoteContext

Channel = Literal["sms", "email"]
MAX_SMS_BODY = 1600  # Twilio refuses longer bodies
STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed")
# the attempt ended, and the provider took the message (and did not report it lost later)
REACHED = ("sent", "delivered")
ENDED = ("sent", "delivered", "undelivered", "failed")
# per-attendee work between two yields to the event loop (~10 ms: a ballot token and a sealing each)
YIELD_EVERY = 200

# --- queueing to many ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """Who of an audience a channel reaches, and how many it cannot (opted out, no address)."""

    attendees: list[Attendee]
    opted_out: int
    no_address: int


def address_of(attendee: Attendee, channel: Channel) -> str | None:
    return attendee.phone_number if channel == "sms" else attendee.email


def reach(attendees: Iterable[Attendee], channel: Channel) -> Reach:
    """Split an audience as `send_sms`/`send_email` would: erased attendees drop out unseen, opted-out
    ones and those without an address on the channel are counted."""
    reached: list[Attendee] = []
    opted_out = no_address = 0
    for attendee in attendees:
        if attendee.erased_at is not None:
            continue
        if attendee.opted_out:
            opted_out += 1
        elif not address_of(attendee, channel):
            no_address += 1
        else:
            reached.append(attendee)
    return Reach(reached, opted_out, no_address)


@dataclass(frozen=True)
class Outgoing:
    attendee: Attendee
    body: str
    dedupe_key: str
    subject: str | None = None
    marketing: bool | None = None  # None: as its type says (`quiet.MARKETING_TYPES`)


@dataclass(frozen=True)
class Screened:
    """The messages that go (each with whether it is marketing, and when it may go if not now), and how many
    were capped; `deferred` counts those that wait for quiet hours to end."""

    going: list[tuple[Outgoing, bool, dt.datetime | None]]
    capped: int
    deferred: int


async def screen(
    *, session: AsyncSession, runtime: Runtime, channel: Channel, message_type: str, messages: Sequence[Outgoing]
) -> Screened:
    """Leave out whom `reach` would leave out and the marketing messages over the daily cap; time the marketing
    SMS that would arrive during the recipient's quiet hours (see the module docstring)."""
    settings = runtime.settings
    now = utcnow()
    reachable = [
        m for m in messages
        if m.attendee.erased_at is None and not m.attendee.opted_out and address_of(m.attendee, channel)
    ]  # fmt: skip
    marketing = [m.marketing if m.marketing is not None else message_type in quiet.MARKETING_TYPES for m in reachable]
    earlier: dict[int, list[str | None]] = {}
    cap = settings.marketing_per_day
    if cap and any(marketing):
        earlier = await MessageRepository(session).marketing_since(
            event_ids={m.attendee.event_id for m in reachable}, channel=channel, since=now - dt.timedelta(days=1)
        )
    going: list[tuple[Outgoing, bool, dt.datetime | None]] = []
    capped = deferred = 0
    for n, (m, is_marketing) in enumerate(zip(reachable, marketing, strict=True), start=1):
        await yield_now(n)
        if not is_marketing:
            going.append((m, False, None))
            continue
        keys = earlier.setdefault(m.attendee.id, [])
        if cap and m.dedupe_key not in keys:  # a message written before (a replay) is no new message
            if len(keys) >= cap:
                capped += 1
                continue
            keys.append(m.dedupe_key)
        release = quiet.release_at(settings, m.attendee.phone_number or "", now) if channel == "sms" else None
        deferred += release is not None
        going.append((m, True, release))
    return Screened(going, capped, deferred)


@dataclass(frozen=True)
class Queued:
    ids: list[int]  # the rows written now (a message whose dedupe key exists already is not written again)
    capped: int
    deferred: int


async def queue_many(
    *, session: AsyncSession, runtime: Runtime, channel: Channel, message_type: str, messages: Sequence[Outgoing]
) -> Queued:
    """Write the messages `screen` lets through as `queued` rows in this unit of work, and deliver them once it
    commits (a deferred one once its quiet hours end)."""
    now = utcnow()
    screened = await screen(
        session=session, runtime=runtime, channel=channel, message_type=message_type, messages=messages
    )
    rows = []
    for n, (m, marketing, release) in enumerate(screened.going, start=1):
        stored = sealing.seal(runtime.secret_key.get_secret_value(), m.body, message_type)
        rows.append(
            {
                "attendee_id": m.attendee.id,
                "event_id": m.attendee.event_id,
                "channel": channel,
                "message_type": message_type,
                "status": "queued",
                "recipient": address_of(m.attendee, channel),
                "subject": m.subject if channel == "email" else None,
                "body": stored.body,
                "sealed_body": stored.sealed,
                "dedupe_key": m.dedupe_key,
                "attempts": 0,
                "next_attempt_at": release,
                "marketing": marketing,
                "created_at": now,
                "updated_at": now,
            }
        )
        await yield_now(n)
    ids = await MessageRepository(session).add_many_unless_duplicate(rows) if rows else []
    if ids:
        outbox.deliver_after_commit(session, runtime)
    return Queued(ids, screened.capped, screened.deferred)


async def yield_now(done: int, *, every: int = YIELD_EVERY) -> None:
    """Let the event loop breathe every `every` items of a long loop (tokens, sealing): votes wait meanwhile."""
    if done % every == 0:
        await asyncio.sleep(0)


# --- what results say ------------------------------------------------------------------------------


async def context_of(session: AsyncSession, event: Event) -> VoteContext:
    """The event's rules, rounds and line-up as this unit of work sees them (not the vote path's cached copy,
    which may predate the change being made)."""
    rounds = {r.number: r for r in await events_service.rounds_of(session=session, event_id=event.id)}
    line_up = await artists_service.accepted_performers(session=session, event_id=event.id)
    return VoteContext(event, events_service.vote_config_of(event), rounds, {p.artist_id: p for p in line_up})


async def results_text(
    *, session: AsyncSession, runtime: Runtime, context: VoteContext, number: int, final: bool
) -> tuple[TextKey, dict[str, object]]:
    """The key and values of the RESULTS text of round `number` (or, `final`, of the event): its top 3
    when the public may see its leaderboard now and anyone voted, otherwise no standings at all."""
    now = utcnow()
    top = ""
    if voting_service.may_see_leaderboard(context, number, None, now):
        board = await voting_service.standings(session=session, runtime=runtime, context=context, number=number)
        top = top_line((s.rank, s.name, s.votes) for s in board.standings if s.votes > 0)
    values: dict[str, object] = {"kw": context.event.keyword, "round": number, "top": top}
    key: TextKey
    if final:
        key = "results_final" if top else "results_final_plain"
    elif context.round_status(number, now) is RoundStatus.CLOSED:
        key = "results_closed" if top else "results_closed_plain"
    else:
        key = "results_so_far" if top else "results_later"
    return key, values


# --- the broadcast ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broadcast:
    queued: int
    opted_out: int
    no_address: int
    capped: int = 0
    deferred: int = 0


@dataclass(frozen=True)
class DryRun:
    """What a broadcast would do: whom it would reach and skip, and (SMS) what it would cost; None for e-mail."""

    recipients: int
    opted_out: int
    no_address: int
    capped: int
    deferred: int
    estimate: segments.Estimate | None
    currency: str


def _key_prefix(event_id: int, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"BROADCAST:{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{event_id}:{idempotency_key}".encode()).hexdigest()[:32]
    return f"BROADCAST:{digest}"


def _body_of(request: BroadcastRequest) -> str | None:
    body = request.body.strip() if request.body is not None else ""
    if not body:
        if request.message_type == "CUSTOM":
            raise Unprocessable.field("body", "a CUSTOM message needs a body")
        return None
    if request.channel == "sms" and len(body) > MAX_SMS_BODY:
        raise Unprocessable.field("body", f"an SMS has at most {MAX_SMS_BODY} characters")
    return body


async def voters_of(session: AsyncSession, context: VoteContext, number: int | None) -> set[int]:
    """The attendees who voted in round `number` (None: in any round of the event): RESULTS are theirs."""
    numbers = [number] if number is not None else sorted(context.rounds)
    voted: set[int] = set()
    for each in numbers:
        found = await attendees_service.audience(session=session, event=context.event, who="voted", round_number=each)
        voted |= {a.id for a in found}
    return voted


@dataclass(frozen=True)
class _Composed:
    reached: Reach
    messages: list[Outgoing]


async def _compose(
    *,
    session: AsyncSession,
    runtime: Runtime,
    principal: Principal,
    event_id: int,
    request: BroadcastRequest,
    idempotency_key: str | None,
) -> _Composed:
    """The message of the broadcast to each attendee of its audience the channel reaches (see `broadcast`)."""
    event = await events_service.get_event(session=session, principal=principal, event_id=event_id)
    if event.status == EventStatus.ARCHIVED.value:
        raise Conflict("This event is archived; it sends no more messages.", slug="event-archived")
    body = _body_of(request)
    context = await context_of(session, event)
    if request.round is not None and request.round not in context.rounds:
        raise Unprocessable.field("round", f"this event has no round {request.round}")
    number = request.round if request.round is not None else context.current_round(utcnow())
    who = request.audience
    attendees = await attendees_service.audience(
        session=session, event=event, who=who, round_number=number if who in ("voted", "not_voted") else None
    )
    reached = reach(attendees, request.channel)
    results: tuple[TextKey, dict[str, object]] | None = None
    voters: set[int] = set()
    over = event.status == EventStatus.CLOSED.value
    if request.message_type == "RESULTS":
        voters = await voters_of(session, context, None if over and request.round is None else number)
        if body is None:
            results = await results_text(session=session, runtime=runtime, context=context, number=number, final=over)
    prefix = _key_prefix(event.id, idempotency_key)
    messages: list[Outgoing] = []
    for n, attendee in enumerate(reached.attendees, start=1):
        await yield_now(n)
        language = attendees_service.language_of(attendee, event)
        if body is not None:
            said = body
        elif results is not None:
            said = text(results[0], language, **results[1])
        elif request.message_type == "NUDGE":  # the ballot link is the attendee's own
            token = attendees_service.ballot_token_for(runtime=runtime, attendee=attendee, event=event)
            said = text("nudge", language, kw=event.keyword, url=attendees_service.ballot_url(runtime, token))
        else:  # RECAP: until the event has a recap page (see journey.send_recap), a thank-you without a link
            said = text("recap_plain", language, kw=event.keyword)
        title = request.subject or subject(request.message_type, language, title=event.title)
        marketing = attendee.id not in voters if request.message_type == "RESULTS" else None
        messages.append(Outgoing(attendee, said, f"{prefix}:{attendee.id}", subject=title, marketing=marketing))
    return _Composed(reached, messages)


async def broadcast(
    *,
    session: AsyncSession,
    runtime: Runtime,
    principal: Principal,
    event_id: int,
    request: BroadcastRequest,
    idempotency_key: str | None = None,
) -> Broadcast:
    """Queue one message to each attendee of the audience the channel reaches.

    404 unknown event · 409 archived event · 422 (`body`) CUSTOM without a body, an SMS over 1,600
    characters · 422 (`round`) a round the event does not have. Without a body, NUDGE carries each
    attendee's ballot link, RESULTS the standings of the round (those the public may see now), and
    RECAP a thank-you (the recap page's link goes out with `journey.send_recap`).
    The same `idempotency_key` again (per event) queues nothing new and answers as the first time did.
    Marketing messages over the daily cap are skipped (`capped`); those in quiet hours wait (`deferred`).
    """
    composed = await _compose(
        session=session, runtime=runtime, principal=principal, event_id=event_id, request=request,
        idempotency_key=idempotency_key,
    )  # fmt: skip
    queued = await queue_many(
        session=session,
        runtime=runtime,
        channel=request.channel,
        message_type=request.message_type,
        messages=composed.messages,
    )
    # a replay of the same idempotency key wrote nothing now; its messages were queued the first time
    reached = composed.reached
    return Broadcast(
        queued=len(composed.messages) - queued.capped,
        opted_out=reached.opted_out,
        no_address=reached.no_address,
        capped=queued.capped,
        deferred=queued.deferred,
    )


async def dry_run(
    *, session: AsyncSession, runtime: Runtime, principal: Principal, event_id: int, request: BroadcastRequest
) -> DryRun:
    """What `broadcast` would do now, and nothing written: the recipients, those skipped, those that would
    wait for quiet hours, and for SMS the encoding, segments and estimated cost of the texts each recipient
    would get (per recipient: a NUDGE's ballot link is each one's own). Refuses what `broadcast` refuses."""
    composed = await _compose(
        session=session, runtime=runtime, principal=principal, event_id=event_id, request=request,
        idempotency_key=None,
    )  # fmt: skip
    screened = await screen(
        session=session,
        runtime=runtime,
        channel=request.channel,
        message_type=request.message_type,
        messages=composed.messages,
    )
    estimate = None
    if request.channel == "sms":
        texts = ((m.attendee.phone_number or "", m.body) for m, _, _ in screened.going)
        estimate = segments.estimate(texts, runtime.settings.sms_prices)
    reached = composed.reached
    return DryRun(
        recipients=len(screened.going),
        opted_out=reached.opted_out,
        no_address=reached.no_address,
        capped=screened.capped,
        deferred=screened.deferred,
        estimate=estimate,
        currency=runtime.settings.sms_price_currency,
    )


# --- history ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    messages: Sequence[Shown]
    total: int
    counts: Mapping[tuple[str, str], int]


async def history(
    *,
    session: AsyncSession,
    principal: Principal,
    event_id: int,
    message_type: str | None,
    status: str | None,
    channel: str | None,
    limit: int,
    offset: int,
) -> History:
    """A page of the event's messages (newest first, filtered) and its counts by channel and status
    (unfiltered). 404 unknown event."""
    await events_service.get_event(session=session, principal=principal, event_id=event_id)
    messages = MessageRepository(session)
    rows, total = await messages.page_for_event(
        event_id, message_type=message_type, status=status, channel=channel, limit=limit, offset=offset
    )
    return History([_shown(m) for m in rows], total, await messages.counts_by_status(event_id))


@dataclass(frozen=True)
class Shown:
    """A message as the history shows it: its body redacted (again: a row stored before texts were sealed
    may still hold a token), never the sealed text."""

    id: int
    attendee_id: int | None
    channel: str
    message_type: str
    status: str
    sent_at: dt.datetime | None
    recipient: str | None
    body: str
    subject: str | None
    attempts: int
    error: str | None
    created_at: dt.datetime


def _shown(message: Message) -> Shown:
    return Shown(
        message.id, message.attendee_id, message.channel, message.message_type, message.status, message.sent_at,
        message.recipient, sealing.redact(message.body, message.message_type), message.subject, message.attempts,
        message.error, message.created_at,
    )  # fmt: skip


def delivery_rate(by_status: Mapping[str, int]) -> float | None:
    """Of the messages whose attempt ended, the share the provider took and did not report lost:
    (sent + delivered) / (sent + delivered + undelivered + failed); None before any ended.

    `sent` counts as reached because it is final where no delivery report follows (e-mail, the console
    provider); an SMS that Twilio later reports undelivered moves out of it.
    """
    ended = sum(by_status.get(s, 0) for s in ENDED)
    if ended == 0:
        return None
    return round(sum(by_status.get(s, 0) for s in REACHED) / ended, 4)
