"""Minimal messaging: inline SMS replies on record, and outbound SMS written as rows and delivered after commit.

`send_sms` is the one door for a message that is not a direct reply: it writes the `messages` row
(status `queued`) in the caller's unit of work and, once that commits, `deliver_sms` claims the row
with a conditional update (`queued` → `sending`, so a message is never sent twice) and hands it to
the configured provider. Today the delivery runs right after the commit, in the same process; the
outbox of issue 4 will run `deliver_sms` from a task queue instead, without its callers changing.
"""

from __future__ import annotations

from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees.models import Attendee
from stagevote.core.db import after_commit, unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.messaging.models import Message
from stagevote.messaging.providers import SmsDeliveryError, sms_provider_for
from stagevote.messaging.repository import MessageRepository

log = structlog.get_logger(__name__)

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
    recipient: str,
    body: str,
    message_type: MessageType,
    attendee_id: int | None = None,
    event_id: int | None = None,
) -> Message:
    """Keep an inline reply (TwiML, sent by the provider as the answer to an inbound SMS) on record."""
    return await MessageRepository(session).add(
        Message(
            attendee_id=attendee_id,
            event_id=event_id,
            channel="sms",
            message_type=message_type,
            status="sent",
            recipient=recipient,
            body=body,
            sent_at=utcnow(),
        )
    )


async def send_sms(
    *, session: AsyncSession, runtime: Runtime, attendee: Attendee, body: str, message_type: MessageType
) -> Message | None:
    """Queue an SMS to the attendee, delivered once the caller's unit of work commits.

    An attendee who opted out (or whose data was erased) is sent nothing and gets no row: None.
    """
    if attendee.opted_out or attendee.phone_number is None or attendee.erased_at is not None:
        return None
    message = await MessageRepository(session).add(
        Message(
            attendee_id=attendee.id,
            event_id=attendee.event_id,
            channel="sms",
            message_type=message_type,
            status="queued",
            recipient=attendee.phone_number,
            body=body,
        )
    )
    message_id = message.id

    async def deliver() -> None:
        await deliver_sms(runtime=runtime, message_id=message_id)

    after_commit(session, deliver)
    return message


async def deliver_sms(*, runtime: Runtime, message_id: int) -> None:
    """Send one queued SMS through the configured provider and record the outcome (`sent` or `failed`)."""
    async with unit_of_work(runtime.sessionmaker) as session:
        message = await MessageRepository(session).claim(message_id, status="queued", claimed="sending")
        if message is None or message.recipient is None:
            return
        recipient, body = message.recipient, message.body
    provider_id: str | None = None
    error: str | None = None
    try:
        provider_id = await sms_provider_for(runtime.settings).send(to=recipient, body=body)
    except SmsDeliveryError as exc:
        error = str(exc)
        log.warning("sms_delivery_failed", message_id=message_id, error=error)
    status = "failed" if error is not None else "sent"
    async with unit_of_work(runtime.sessionmaker) as session:
        await MessageRepository(session).finish(
            message_id,
            claimed="sending",
            status=status,
            provider_message_id=provider_id,
            error=error,
            sent_at=utcnow() if error is None else None,
        )
    runtime.metrics.messages.labels("sms", status).inc()


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
