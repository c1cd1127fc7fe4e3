"""The SMS keyword grammar and Twilio's webhooks: every text in gets one TwiML answer, and acts once per MessageSid.

Grammar (case, spacing and punctuation do not matter):
- `STOP` `STOPALL` `UNSUBSCRIBE` `CANCEL` `END` `QUIT`: the number opts out of every event; the reply
  confirming it is the last text it gets. `START` `UNSTOP` `YES`: opts back in. `HELP` `INFO` `AYUDA`: help.
  These are the only words an opted-out number gets an answer to (STOP aside); anything else it texts
  is answered with an empty `<Response/>` and changes nothing.
- `JOIN <KEYWORD>`, `UNIRME <KEYWORD>` (Spanish: the attendee's texts are in Spanish from then on), or the
  keyword alone: join that published or live event (see attendees.service for access types).
- six digits: the confirmation code of one of the number's joined events; the reply carries the ballot link.
- `VOTE <code>`, `VOTAR <code>`, or a code of one to five digits alone: a vote in the open round of the
  event of the number's most recently joined attendee row whose event is live (a fan is at one venue
  at a time), when that event has `smsVoting` on.
- anything else: how to join and vote.
Replies are in Spanish when the attendee's language is Spanish (they joined with UNIRME, or chose it on
the web), or else when the event's default language is; a fan not yet known to us gets Spanish when
their message used a Spanish command word.

Every reply is recorded in `messages` (status `sent`: Twilio sends it as the webhook's answer). The
inbound message is recorded first, by its MessageSid, with `ON CONFLICT DO NOTHING`: a retry of the
same MessageSid finds it and gets the stored TwiML again, and nothing else happens. Replies are stored
like every message text: ballot tokens and codes redacted, the reply itself sealed (`messaging.sealing`).

A vote is the text that comes in bulk (a room voting in the same minute), so it costs what it must: one
statement reads the number's opt-out and its latest live attendee row, the event's rules come from the vote
path's in-process copy (as for a web vote), and on PostgreSQL the vote goes to the group commit
(`voting.service.vote_by_code_in_batch`, the web ballot's writer); what the batch does not insert (the quota
used, a closed round, a repeated token…) takes `cast_vote` one by one, in a savepoint, which gives every
refusal. SQLite has no group commit: there every vote is one by one, in the text's unit of work.

Two commits, in this order: the batch commits the vote on the writer's connection while the text's unit of
work holds its claim; then the unit of work commits the reply, its `messages` row and the claim together. The
"counted" TwiML is answered only after both, so it still means a durable vote. Between the two:
- a retry of the MessageSid waits on the uncommitted claim (as for any text), then gets the stored reply;
- if the unit of work fails or the process dies, the vote stands and the claim is gone. Twilio's retry claims
  again; the batch inserts nothing (the token `sms:{MessageSid}` is used), `cast_vote` finds the vote by its
  token and the answer is the first one, "counted" with the vote's round and receipt. Should the round have
  closed (or the attendee been voided) before the retry, `cast_vote` refuses before it looks at the token, so a
  refusal is answered "counted" too when the token already holds a vote of this attendee: the text acted once,
  and gets the answer of the time it acted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped]

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.core.db import after_commit
from stagevote.core.errors import Conflict, Forbidden, NotFound, ProblemError, Unprocessable
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import Event
from stagevote.messaging import outbox
from stagevote.messaging import service as messaging_service
from stagevote.messaging.service import MessageType
from stagevote.messaging.texts import TextKey, text
from stagevote.sms.repository import InboundMessageRepository
from stagevote.voting import service as voting_service
from stagevote.voting.writer import VoteWriter

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})
JOIN_WORDS = frozenset({"JOIN", "UNIRME"})
VOTE_WORDS = frozenset({"VOTE", "VOTAR"})
SPANISH_WORDS = frozenset({"UNIRME", "VOTAR", "AYUDA"})
# [0-9], not \d: \d also matches the digits of other scripts, which no code is written in
_CODE = re.compile(r"^[0-9]{6}$")
_VOTE_CODE = re.compile(r"^[0-9]{1,5}$")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
EMPTY_TWIML: str = str(MessagingResponse().to_xml())


CommandKind = Literal["stop", "start", "help", "join", "word", "code", "vote", "unknown"]
_COMMAND_WORDS: dict[str, CommandKind] = {
    **dict.fromkeys(STOP_WORDS, "stop"),
    **dict.fromkeys(START_WORDS, "start"),
    **dict.fromkeys(HELP_WORDS, "help"),
    **dict.fromkeys(JOIN_WORDS, "join"),
    **dict.fromkeys(VOTE_WORDS, "vote"),
}


@dataclass(frozen=True)
class Command:
    """What an inbound text asks for; `argument` is the keyword, code or vote code when it has one."""

    kind: CommandKind
    argument: str | None = None
    spanish: bool = False


def parse_command(body: str) -> Command:
    """Read an inbound text by the grammar of the module docstring."""
    words = [w.upper() for w in _TOKEN.findall(body)]
    head = words[0] if words else ""
    spanish = head in SPANISH_WORDS
    compact = "".join(body.split())
    if _CODE.match(compact):
        return Command("code", compact)
    if len(words) == 1:
        kind = _COMMAND_WORDS.get(head)
        if kind is not None:
            return Command(kind, spanish=spanish)
        return Command("vote", _vote_code(head)) if _VOTE_CODE.match(head) else Command("word", head)
    if len(words) == 2 and head in JOIN_WORDS:
        return Command("join", words[1], spanish=spanish)
    if len(words) == 2 and head in VOTE_WORDS:
        return Command("vote", _vote_code(words[1]), spanish=spanish)
    return Command("unknown", spanish=spanish)


def _vote_code(word: str) -> str:
    """Vote codes are numbers: `VOTE 03` is code 3."""
    return (word.lstrip("0") or "0") if word.isdigit() else word


def twiml(body: str | None) -> str:
    """The TwiML answer: `<Response><Message>…</Message></Response>`, or an empty `<Response/>`."""
    if not body:
        return EMPTY_TWIML
    response = MessagingResponse()
    response.message(body)
    return str(response.to_xml())


def verify_signature(*, runtime: Runtime, url: str, params: Mapping[str, Any], signature: str | None) -> None:
    """403 unless `X-Twilio-Signature` signs this URL and these form parameters with our auth token.

    `url` is the address Twilio called: `PUBLIC_URL` plus the path and query string. Without an auth
    token configured nothing can be verified, so every request is refused.
    """
    token = runtime.settings.twilio_auth_token
    if not token or not signature:
        raise Forbidden("Missing X-Twilio-Signature, or no Twilio auth token configured.", slug="bad-signature")
    if not RequestValidator(token.get_secret_value()).validate(url, params, signature):
        raise Forbidden("The X-Twilio-Signature does not match this request.", slug="bad-signature")


@dataclass(frozen=True)
class Reply:
    body: str | None
    message_type: MessageType
    attendee: Attendee | None = None
    event: Event | None = None


async def handle_inbound(
    *,
    session: AsyncSession,
    runtime: Runtime,
    writer: VoteWriter | None,
    message_sid: str,
    from_number: str,
    to_number: str | None,
    body: str,
) -> str:
    """Act on one inbound text (once per MessageSid) and answer the TwiML reply, recorded in `messages`.
    `writer`: the process's group commit of votes (`voting.service.vote_writer`), None on SQLite."""
    inbound = InboundMessageRepository(session)
    if not await inbound.claim(message_sid=message_sid, from_number=from_number, to_number=to_number, body=body):
        earlier = await inbound.reply_of(message_sid)
        return (messaging_service.reply_as_sent(runtime, *earlier) if earlier else None) or EMPTY_TWIML
    phone = attendees_service.parse_phone(from_number, region=runtime.settings.default_phone_region, strict=False)
    reply = Reply(None, "REPLY")
    if phone is not None:
        reply = await _answer(
            session=session, runtime=runtime, writer=writer, phone=phone, command=parse_command(body),
            message_sid=message_sid, words=body,
        )  # fmt: skip
    if reply.body:
        await messaging_service.record_reply(
            session=session,
            runtime=runtime,
            recipient=phone or from_number,
            body=reply.body,
            message_type=reply.message_type,
            attendee_id=reply.attendee.id if reply.attendee is not None else None,
            event_id=reply.event.id if reply.event is not None else None,
        )
    answer = twiml(reply.body)
    kept = messaging_service.seal_reply(runtime, answer)  # the code or ballot link only sealed, never in clear
    await inbound.set_reply(message_sid, kept.body, sealed=kept.sealed)
    return answer


async def record_status(*, session: AsyncSession, runtime: Runtime, message_sid: str, message_status: str) -> None:
    """A delivery report: move the message forward (an older status arriving late changes nothing).

    A report that moved a message is counted in `stagevote_messages_total{channel="sms", status}`, so the
    delivery rate is `delivered / (delivered + undelivered + failed)` over that counter.
    """
    status = message_status.strip().lower()
    moved = await messaging_service.record_delivery_status(
        session=session, provider_message_id=message_sid, status=status
    )
    if moved:
        counter = runtime.metrics.messages.labels("sms", status)

        async def count() -> None:
            counter.inc()
            await runtime.signals.publish(outbox.MESSAGES_CHANGED, {"eventId": None})

        after_commit(session, count)


async def _language(session: AsyncSession, phone: str, command: Command) -> tuple[str, Attendee | None, Event | None]:
    """The language to answer a number in, with its latest attendee row when it has one."""
    found = await attendees_service.latest_attendee(session=session, phone_number=phone)
    attendee, event = found if found is not None else (None, None)
    if command.spanish:
        return "es", attendee, event
    return attendees_service.language_of(attendee, event), attendee, event


async def _answer(
    *,
    session: AsyncSession,
    runtime: Runtime,
    writer: VoteWriter | None,
    phone: str,
    command: Command,
    message_sid: str,
    words: str,
) -> Reply:
    """The reply to a text; `words` (the text as received) go into the consent record of a JOIN, STOP or START."""
    if command.kind in ("stop", "start", "help"):
        return await _carrier_word(session=session, runtime=runtime, phone=phone, command=command, words=words)
    if command.kind == "vote" and command.argument is not None:  # its look-up answers the opt-out too
        return await _vote(
            session=session, runtime=runtime, writer=writer, phone=phone, command=command,
            vote_code=command.argument, sid=message_sid,
        )  # fmt: skip
    if await attendees_service.is_opted_out(session=session, runtime=runtime, phone_number=phone):
        return Reply(None, "REPLY")  # an opted-out number hears nothing until START
    if command.kind in ("join", "word") and command.argument is not None:
        event = await events_service.get_joinable_event_by_keyword(session=session, keyword=command.argument)
        if event is not None:
            return await _join(session=session, runtime=runtime, phone=phone, event=event, command=command, words=words)
    if command.kind == "code" and command.argument is not None:
        return await _confirm(session=session, runtime=runtime, phone=phone, code=command.argument)
    return await _how_to(session=session, phone=phone, command=command)


async def _how_to(*, session: AsyncSession, phone: str, command: Command) -> Reply:
    """A text we cannot act on: how to join (JOIN alone, or a keyword no open event has), or join and vote."""
    language, attendee, event = await _language(session, phone, command)
    if command.kind == "join":
        key: TextKey = "unknown_event" if command.argument is not None else "join_how"
        return Reply(text(key, language, word=command.argument or ""), "JOIN", attendee, event)
    return Reply(text("unknown", language), "REPLY", attendee, event)


async def _carrier_word(*, session: AsyncSession, runtime: Runtime, phone: str, command: Command, words: str) -> Reply:
    """STOP, START and HELP: what carriers expect every sender to honour, opted out or not."""
    if command.kind == "stop":
        if not await attendees_service.opt_out(session=session, runtime=runtime, phone_number=phone, words=words):
            return Reply(None, "STOP")  # already opted out: the confirmation was the last text
        language, attendee, event = await _language(session, phone, command)
        return Reply(text("stop", language), "STOP", attendee, event)
    if command.kind == "start":
        await attendees_service.opt_in(session=session, runtime=runtime, phone_number=phone, words=words)
        language, attendee, event = await _language(session, phone, command)
        return Reply(text("start", language), "REPLY", attendee, event)
    language, attendee, event = await _language(session, phone, command)
    return Reply(text("help", language), "HELP", attendee, event)


async def _join(
    *, session: AsyncSession, runtime: Runtime, phone: str, event: Event, command: Command, words: str
) -> Reply:
    try:
        joined = await attendees_service.join(
            session=session,
            runtime=runtime,
            event=event,
            phone_number=phone,
            language_pref="es" if command.spanish else None,
        )
    except Forbidden:  # a private event without this number on its list
        language = "es" if command.spanish else event.default_language
        return Reply(text("private", language, kw=event.keyword), "JOIN", None, event)
    attendee = joined.attendee
    await attendees_service.record_consent(
        session=session, attendee=attendee, kind="opt_in", channel="sms", words=words
    )
    language = attendees_service.language_of(attendee, event)
    if joined.code is not None:
        body = text("join_code", language, kw=event.keyword, code=joined.code)
    else:
        url = attendees_service.ballot_url(runtime, joined.ballot_token or "")
        body = text("already_in" if joined.already_confirmed else "join_ballot", language, kw=event.keyword, url=url)
    return Reply(body, "JOIN", attendee, event)


async def _confirm(*, session: AsyncSession, runtime: Runtime, phone: str, code: str) -> Reply:
    outcome = await attendees_service.confirm_by_sms(session=session, runtime=runtime, phone_number=phone, code=code)
    attendee, event = outcome.attendee, outcome.event
    if outcome.result == "none" or attendee is None or event is None:
        language, known, known_event = await _language(session, phone, Command("code"))
        return Reply(text("code_none", language), "CONFIRM", known, known_event)
    language = attendees_service.language_of(attendee, event)
    if outcome.result == "confirmed":
        url = attendees_service.ballot_url(runtime, outcome.ballot_token or "")
        body = text("confirmed", language, kw=event.keyword, url=url)
    elif outcome.result == "wrong":
        body = text("code_wrong", language, tries=attendees_service.tries_left(attendee))
    elif outcome.result == "locked":
        body = text("code_locked", language, kw=event.keyword)
    else:
        body = text("code_expired", language, kw=event.keyword)
    return Reply(body, "CONFIRM", attendee, event)


async def _vote(
    *,
    session: AsyncSession,
    runtime: Runtime,
    writer: VoteWriter | None,
    phone: str,
    command: Command,
    vote_code: str,
    sid: str,
) -> Reply:
    """A `VOTE <code>`: the number's opt-out and latest live attendee row in one statement, the event from the
    vote path's copy, then the group commit (PostgreSQL) or, for anything it does not insert, `cast_vote`."""
    voter = await attendees_service.phone_voter(session=session, runtime=runtime, phone_number=phone)
    if voter.opted_out:
        return Reply(None, "REPLY")  # an opted-out number hears nothing until START
    attendee = voter.attendee
    known = None
    if attendee is not None:
        known = await voting_service.event_for_vote(session=session, runtime=runtime, event_id=attendee.event_id)
    if attendee is None or known is None:
        language, attendee, event = await _language(session, phone, command)
        return Reply(text("vote_not_joined", language), "VOTE", attendee, event)
    event, config = known
    language = attendees_service.language_of(attendee, event)
    if not config.sms_voting:
        return Reply(text("vote_sms_off", language, kw=event.keyword), "VOTE", attendee, event)
    if attendee.confirmed_at is None and attendees_service.needs_confirmation(
        attendee=attendee, event=event, config=config
    ):
        return Reply(text("vote_confirm_first", language, kw=event.keyword), "VOTE", attendee, event)
    return await _cast(
        session=session, runtime=runtime, writer=writer, attendee=attendee, event=event, language=language,
        vote_code=vote_code, token=f"sms:{sid}",
    )  # fmt: skip


async def _cast(
    *,
    session: AsyncSession,
    runtime: Runtime,
    writer: VoteWriter | None,
    attendee: Attendee,
    event: Event,
    language: str,
    vote_code: str,
    token: str,
) -> Reply:
    """The vote, by the group commit when it takes it; else one by one, in a savepoint, which answers every refusal."""
    if writer is not None:
        batched = await voting_service.vote_by_code_in_batch(
            session=session, runtime=runtime, writer=writer, event_id=event.id, attendee_id=attendee.id,
            vote_code=vote_code, token=token, channel="sms",
        )  # fmt: skip
        if batched is not None:
            return _counted(language, event, attendee, vote_code, batched.round, batched.receipt)
    try:
        async with session.begin_nested():  # a refused vote leaves nothing behind, whatever it had written
            cast = await voting_service.cast_vote(
                session=session,
                runtime=runtime,
                event_id=event.id,
                attendee=attendee,
                round_number=None,
                artist_id=None,
                vote_code=vote_code,
                token=token,
                channel="sms",
            )
    except ProblemError as exc:
        # the vote may stand already: a batch committed it, and this MessageSid's reply was lost with its
        # unit of work (see the module docstring); it is answered as the first delivery would have been
        earlier = await voting_service.vote_of_token(session=session, runtime=runtime, token=token)
        if earlier is not None and earlier.attendee_id == attendee.id:
            receipt = voting_service.receipt_of(runtime, earlier)
            return _counted(language, event, attendee, vote_code, earlier.round, receipt)
        return Reply(_refusal(exc, language, event=event, vote_code=vote_code), "VOTE", attendee, event)
    receipt = voting_service.receipt_of(runtime, cast.vote)
    return _counted(language, event, attendee, vote_code, cast.vote.round, receipt)


def _counted(language: str, event: Event, attendee: Attendee, vote_code: str, round_number: int, receipt: str) -> Reply:
    body = text("vote_counted", language, code=vote_code, kw=event.keyword, round=round_number, receipt=receipt)
    return Reply(body, "VOTE", attendee, event)


def _refusal(exc: ProblemError, language: str, *, event: Event, vote_code: str) -> str:
    """A friendly text for a vote the voting service refused."""
    if isinstance(exc, Unprocessable):
        return text("vote_bad_code", language, code=vote_code, kw=event.keyword)
    if isinstance(exc, Forbidden):
        return text("vote_forbidden", language, kw=event.keyword, detail=exc.detail)
    if isinstance(exc, Conflict) and exc.slug in ("event-not-live", "round-not-open"):
        return text("vote_closed", language, kw=event.keyword, detail=exc.detail)
    if isinstance(exc, NotFound):
        return text("vote_not_joined", language)
    return text("vote_refused", language, kw=event.keyword, detail=exc.detail)


# --- the attendee's data rights: the texts a number sent us go with its export and its erasure ------------


async def _export_texts(session: AsyncSession, payload: dict[str, Any]) -> None:
    phone = payload.get("phoneNumber")
    rows = await InboundMessageRepository(session).of_number(phone) if phone else []
    payload["export"]["inboundMessages"] = [
        {"messageSid": r.message_sid, "body": r.body, "reply": r.reply, "receivedAt": r.received_at.isoformat()}
        for r in rows
    ]


async def _erase_texts(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Erase what the number texted and what it was answered, when no other attendee row holds the number
    (the texts belong to the phone, not to one event); the MessageSid stays, so a retry still acts once."""
    phone = payload.get("phoneNumber")
    if phone and payload.get("lastHolder"):
        await InboundMessageRepository(session).erase_of_number(phone)


def install(runtime: Runtime) -> None:
    """Subscribe the SMS domain to the attendees domain's data-rights hooks."""
    runtime.hooks.subscribe(attendees_service.ATTENDEE_EXPORT, _export_texts)
    runtime.hooks.subscribe(attendees_service.ATTENDEE_ERASED, _erase_texts)
