"""HTTP routes of the messaging domain: broadcasts to an event's attendees, and the event's message history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from stagevote.audit import service as audit
from stagevote.audit.service import Caller
from stagevote.auth.dependencies import AdminPrincipal
from stagevote.core.network import ClientAddressDep
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.core.schemas import Paging
from stagevote.messaging import broadcasts
from stagevote.messaging.schemas import (
    BroadcastRequest,
    BroadcastResult,
    Channel,
    ChannelStats,
    Cost,
    DryRunResult,
    MessageHistory,
    MessageRead,
    MessageStats,
    MessageStatus,
    Skipped,
)
from stagevote.messaging.service import MessageType

router = APIRouter(tags=["messaging"])


@router.post(
    "/events/{event_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BroadcastResult | DryRunResult,
    responses={
        202: {"model": BroadcastResult, "description": "Queued"},
        200: {"model": DryRunResult, "description": "`dryRun=true`: what it would do; nothing queued"},
    },
)
async def broadcast(
    event_id: int,
    body: BroadcastRequest,
    principal: AdminPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    dry_run: Annotated[
        bool, Query(alias="dryRun", description="Answer 200 with recipients, segments and cost; queue nothing")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Send the same key again (a retry) and nothing is queued twice",
        ),
    ] = None,
) -> BroadcastResult | DryRunResult:
    """Queue one message to each attendee of the audience; delivery follows (see the history for outcomes).

    Audiences: `all` · `confirmed` (their ballot counts: confirmed, or needing no confirmation, e.g.
    pre-registered in a hybrid event) · `voted` / `not_voted` in `round` (default: the current round;
    `not_voted` is among the confirmed). Opted-out attendees, and for e-mail those without an address,
    are counted in `skipped` and get no message and no history row; erased attendees are in no audience.
    Without a body, NUDGE carries each attendee's ballot link, RESULTS the standings of `round` (those
    the public may see now) and RECAP a thank-you, in the attendee's language; an e-mail without a
    subject gets the type's.

    Any status but archived takes broadcasts (a draft's pre-registered list included). 404 unknown event ·
    409 archived event · 422 (`body`) CUSTOM without a body, an SMS over 1,600 characters · 422 (`round`)
    a round the event does not have.

    Marketing messages (NUDGE, CUSTOM, RECAP; RESULTS to fans who did not vote in the round) over
    `MARKETING_PER_DAY` per fan, event and channel in 24 hours are skipped (`skipped.capped`); an SMS to a
    fan in quiet hours is queued to go when they end (`deferred`). With `dryRun=true`: 200, nothing queued,
    and for SMS the encoding (gsm7 or ucs2), segments and the estimated cost (README, "Honest messaging").
    """
    if dry_run:
        response.status_code = status.HTTP_200_OK
        found = await broadcasts.dry_run(
            session=session, runtime=runtime, principal=principal, event_id=event_id, request=body
        )
        estimate = found.estimate
        return DryRunResult(
            recipients=found.recipients,
            skipped=Skipped(opted_out=found.opted_out, no_address=found.no_address, capped=found.capped),
            deferred=found.deferred,
            encoding=estimate.encoding if estimate is not None else None,
            segments_per_message=estimate.segments_per_message if estimate is not None else 0,
            total_segments=estimate.total_segments if estimate is not None else 0,
            estimated_cost=Cost(
                amount=float(round(estimate.cost, 4)) if estimate is not None else 0.0, currency=found.currency
            ),
        )
    sent = await broadcasts.broadcast(
        session=session,
        runtime=runtime,
        principal=principal,
        event_id=event_id,
        request=body,
        idempotency_key=idempotency_key,
    )
    # in the audit log: what was sent to whom, as counts (never the text, which may be anyone's words)
    await audit.record_by(
        session,
        Caller.of(principal.user_id, client),
        action="message.broadcast",
        target=f"event:{event_id}",
        changes={
            "channel": body.channel,
            "messageType": body.message_type,
            "audience": body.audience,
            "round": body.round,
            "queued": sent.queued,
            "skipped": {"optedOut": sent.opted_out, "noAddress": sent.no_address, "capped": sent.capped},
            "deferred": sent.deferred,
        },
        event_id=event_id,
    )
    return BroadcastResult(
        queued=sent.queued,
        skipped=Skipped(opted_out=sent.opted_out, no_address=sent.no_address, capped=sent.capped),
        deferred=sent.deferred,
    )


def _stats(counts: dict[tuple[str, str], int]) -> MessageStats:
    by_channel: dict[str, ChannelStats] = {}
    for channel in ("sms", "email"):
        by_status = {s: n for (c, s), n in counts.items() if c == channel}
        by_channel[channel] = ChannelStats(
            **{s: by_status.get(s, 0) for s in broadcasts.STATUSES},
            total=sum(by_status.values()),
            delivery_rate=broadcasts.delivery_rate(by_status),
        )
    overall: dict[str, int] = {}
    for (_, s), n in counts.items():
        overall[s] = overall.get(s, 0) + n
    return MessageStats(
        sms=by_channel["sms"],
        email=by_channel["email"],
        total=sum(overall.values()),
        delivery_rate=broadcasts.delivery_rate(overall),
    )


@router.get("/events/{event_id}/messages", response_model=MessageHistory)
async def message_history(
    event_id: int,
    principal: AdminPrincipal,
    session: SessionDep,
    page: Paging,
    message_type: Annotated[MessageType | None, Query(alias="messageType")] = None,
    status_: Annotated[MessageStatus | None, Query(alias="status")] = None,
    channel: Channel | None = None,
) -> MessageHistory:
    """Every message of the event, newest first, filtered by type, status and channel; `stats` counts all of
    the event's messages by channel and status, filters aside, with each channel's `deliveryRate`:
    (sent + delivered) / (sent + delivered + undelivered + failed), null until an attempt has ended.
    404 unknown event."""
    found = await broadcasts.history(
        session=session,
        principal=principal,
        event_id=event_id,
        message_type=message_type,
        status=status_,
        channel=channel,
        limit=page.limit,
        offset=page.offset,
    )
    return MessageHistory(
        items=[MessageRead.model_validate(m) for m in found.messages],
        total=found.total,
        limit=page.limit,
        offset=page.offset,
        stats=_stats(dict(found.counts)),
    )
