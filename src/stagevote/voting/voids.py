"""Voids: an organizer takes a vote, or every vote of an attendee, out of the count, for a stated reason.

A voided vote stays in the table (its facts and receipt unchanged, so it never looks like tampering to
`stagevote audit verify`), with `voided_at`, `void_reason` (a `VoidReason`), `void_note` and `voided_by`.
Every count leaves it out from then on: the leaderboard (its tally is dropped after the commit and
seeded again from the table), reports, analytics and the recap, and the seal of a round that closes
later. A round sealed before the void keeps its root: the receipt answers `status: voided`.

A voided vote keeps its slot: the fan does not get the vote back. Voiding an attendee voids all their
votes, in every round, and refuses any further vote of theirs (403 `attendee-voided`; the group commit's
statement skips them too); their ballot no longer counts for messaging either (`holds_a_ballot`: no
NUDGE or RECAP). Voiding twice is voiding once (the first reason stays). Each void that changes something
is recorded in the audit log (`vote.voided`, `attendee.voided`) in the same unit of work.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees import service as attendees_service
from stagevote.audit.service import Caller, record_by
from stagevote.core.db import after_commit, utcnow
from stagevote.core.errors import NotFound
from stagevote.core.runtime import Runtime
from stagevote.voting.receipts import receipt_of_row
from stagevote.voting.repository import VoteRepository
from stagevote.voting.schemas import AttendeeVoidRead, VoidRequest, VoteVoidRead
from stagevote.voting.service import VOTES_CHANGED, tally_key


def _recount_after_commit(session: AsyncSession, runtime: Runtime, rounds: set[tuple[int, int]]) -> None:
    """Once the void commits: drop the rounds' tallies (the next read seeds them from the table, without the
    voided votes) and tell the live screens."""

    async def recount() -> None:
        for event_id, number in sorted(rounds):
            await runtime.tally.drop(tally_key(event_id, number))
            await runtime.signals.publish(VOTES_CHANGED, {"eventId": event_id, "round": number})

    if rounds:
        after_commit(session, recount)


async def void_vote(
    *, session: AsyncSession, runtime: Runtime, caller: Caller, event_id: int, vote_id: int, body: VoidRequest
) -> VoteVoidRead:
    """Void one vote of the event. 404 no such vote in this event."""
    vote = await VoteRepository(session).get_in_event_for_update(vote_id, event_id)
    if vote is None:
        raise NotFound(f"Event {event_id} has no vote {vote_id}.")
    if vote.voided_at is None:
        vote.voided_at = utcnow()
        vote.void_reason = body.reason.value
        vote.void_note = body.note
        vote.voided_by = caller.user_id
        await VoteRepository(session).flush()
        _recount_after_commit(session, runtime, {(vote.event_id, vote.round)})
        changes = {"round": vote.round, "artistId": vote.artist_id, "reason": vote.void_reason}
        await record_by(
            session, caller, action="vote.voided", target=f"vote:{vote.id}", changes=changes, event_id=event_id
        )
    return VoteVoidRead.model_validate(
        {
            "id": vote.id,
            "event_id": vote.event_id,
            "round": vote.round,
            "artist_id": vote.artist_id,
            "receipt": receipt_of_row(runtime.secret_key.get_secret_value(), vote),
            "reason": vote.void_reason,
            "note": vote.void_note,
            "voided_at": vote.voided_at,
            "voided_by": vote.voided_by,
        }
    )


async def void_attendee(
    *, session: AsyncSession, runtime: Runtime, caller: Caller, attendee_id: int, body: VoidRequest
) -> AttendeeVoidRead:
    """Void every vote of the attendee and refuse their next ones. 404 unknown attendee."""
    attendee = await attendees_service.mark_voided(
        session=session, runtime=runtime, attendee_id=attendee_id, reason=body.reason.value
    )
    voided = await VoteRepository(session).void_of_attendee(
        attendee.id, reason=body.reason.value, note=body.note, by=caller.user_id, at=utcnow()
    )
    _recount_after_commit(session, runtime, set(voided))
    await record_by(
        session,
        caller,
        action="attendee.voided",
        target=f"attendee:{attendee.id}",
        changes={"reason": attendee.void_reason, "votesVoided": len(voided)},
        event_id=attendee.event_id,
    )
    return AttendeeVoidRead.model_validate(
        {
            "attendee_id": attendee.id,
            "event_id": attendee.event_id,
            "reason": attendee.void_reason,
            "voided_at": attendee.voided_at,
            "votes_voided": len(voided),
        }
    )
