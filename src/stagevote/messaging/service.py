"""Messaging: every SMS or e-mail to a fan is a `messages` row, written in the caller's unit of work.

`send_sms` / `send_email` are the doors for messages that are not inline replies: the row is
written with the action that caused it, and once that commits the outbox hands it to a delivery,
which sends it exactly once. `record_reply` keeps an inline TwiML reply on record.
Every text is stored with its ballot tokens and codes redacted, the text itself sealed (`sealing`):
`text_as_sent` opens it, `seal_reply` / `reply_as_sent` do the same for the sms domain's stored replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees.models import Attendee
from stagevote.core.db import utcnow
from stagevote.core.runtime import Runtime
from stagevote.messaging import outbox, sealing
from stagevote.messaging.models import Message
from stagevote.messaging.repository import MessageRepository

MessageType = Literal["JOIN", "CONFIRM", "HELP", "STOP", "VOTE", "REPLY", "NUDGE", "RESULTS", "RECAP", "CUSTOM"]
# Where a provider's status report may move a message from: never backwards, never out of a final status.
_MOVES_FROM: dict[str, frozenset[str]] = {
    "sent": frozenset({"queued", "sending"}),
    "delivered": frozenset({"queued", "sending", "sent"}),
    "undelivered": frozenset({"queued", "sending", "sent"}),
    "failed": frozenset({"queued", "sending", "sent"}),
}


async def record_reply(
    *,
    session: AsyncSession,
    runtime: Runtime,
    recipient: str,
    body: str,
    message_type: MessageType,
    attendee_id: int | None = None,
    event_id: int | None = None,
) -> None:
    """Keep an inline reply (TwiML, sent by the provider as the answer to an inbound SMS) on record,
    its ballot token or code redacted. One INSERT, no ORM object: every inbound text records one."""
    stored = sealing.seal(runtime.secret_key.get_secret_value(), body, message_type)
    await MessageRepository(session).add_reply(
        attendee_id=attendee_id,
        event_id=event_id,
        channel="sms",
        message_type=message_type,
        status="sent",
        recipient=recipient,
        body=stored.body,
        sealed_body=stored.sealed,
        sent_at=utcnow(),
    )


def text_as_sent(runtime: Runtime, message: Message) -> str:
    """The text the recipient gets (or got): the sealed one, opened; the body when nothing was sealed."""
    return sealing.unseal(runtime.secret_key.get_secret_value(), message.body, message.sealed_body)


def seal_reply(runtime: Runtime, reply: str) -> sealing.Stored:
    """A TwiML reply to keep for a repeated MessageSid: redacted, and the reply itself sealed."""
    return sealing.seal(runtime.secret_key.get_secret_value(), reply, "CONFIRM")  # a reply may carry a code


def reply_as_sent(runtime: Runtime, reply: str, sealed: str | None) -> str | None:
    """The TwiML reply kept by `seal_reply`; None when it cannot be opened (SECRET_KEY changed)."""
    try:
        return sealing.unseal(runtime.secret_key.get_secret_value(), reply, sealed)
    except sealing.Unsealable:
        return None


async def send_sms(
    *,
    session: AsyncSession,
    runtime: Runtime,
    attendee: Attendee,
    body: str,
    message_type: MessageType,
    dedupe_key: str | None = None,
) -> Message | None:
    """Queue an SMS to the attendee: a `messages` row now, delivered by the outbox once this commits.

    An attendee who opted out (or whose data was erased) is sent nothing and gets no row: None. A
    `dedupe_key` already used means the message exists: None, and nothing new is written.
    """
    if attendee.opted_out or attendee.phone_number is None or attendee.erased_at is not None:
        return None
    return await _queue(
        session, runtime, attendee, channel="sms", recipient=attendee.phone_number, subject=None, body=body,
        message_type=message_type, dedupe_key=dedupe_key,
    )  # fmt: skip


async def send_email(
    *,
    session: AsyncSession,
    runtime: Runtime,
    attendee: Attendee,
    subject: str,
    body: str,
    message_type: MessageType,
    dedupe_key: str | None = None,
) -> Message | None:
    """Queue an e-mail to the attendee; None (no row) without an address, after an opt-out, or a used key."""
    if attendee.opted_out or not attendee.email or attendee.erased_at is not None:
        return None
    return await _queue(
        session, runtime, attendee, channel="email", recipient=attendee.email, subject=subject, body=body,
        message_type=message_type, dedupe_key=dedupe_key,
    )  # fmt: skip


async def _queue(
    session: AsyncSession,
    runtime: Runtime,
    attendee: Attendee,
    *,
    channel: str,
    recipient: str,
    subject: str | None,
    body: str,
    message_type: MessageType,
    dedupe_key: str | None,
) -> Message | None:
    stored = sealing.seal(runtime.secret_key.get_secret_value(), body, message_type)
    message = await MessageRepository(session).add_unless_duplicate(
        Message(
            attendee_id=attendee.id,
            event_id=attendee.event_id,
            channel=channel,
            message_type=message_type,
            status="queued",
            recipient=recipient,
            subject=subject,
            body=stored.body,
            sealed_body=stored.sealed,
            dedupe_key=dedupe_key,
        )
    )
    if message is not None:
        outbox.deliver_after_commit(session, runtime)
    return message


async def messages_of_attendee(*, session: AsyncSession, attendee_id: int) -> Sequence[Message]:
    """Every message to the attendee, oldest first (for the attendee's data export)."""
    return await MessageRepository(session).of_attendee(attendee_id)


async def erase_for_attendee(*, session: AsyncSession, attendee_id: int, phone_number: str | None) -> int:
    """Erase the bodies, subjects, recipients and errors of the attendee's messages, and of the replies that
    went to `phone_number` for no attendee (pass it only when no other attendee holds that number)."""
    recipients = [phone_number] if phone_number else []
    return await MessageRepository(session).erase(attendee_id=attendee_id, recipients=recipients)


async def record_delivery_status(*, session: AsyncSession, provider_message_id: str, status: str) -> bool:
    """Move a message to the status its provider reports; False when it is unknown, or the report is stale.

    Statuses only move forward (queued → sending → sent → delivered / undelivered / failed): a report
    that arrives late never moves a message back. Interim provider statuses (`queued`, `sending`,
    `accepted`) change nothing.
    """
    moves_from = _MOVES_FROM.get(status)
    if moves_from is None:
        return False
    moved = await MessageRepository(session).advance(provider_message_id, status=status, from_statuses=moves_from)
    return moved > 0
