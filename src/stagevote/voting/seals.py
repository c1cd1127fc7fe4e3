"""Sealed rounds: each closed round's Merkle root over its counted votes' receipts, receipt look-ups, the audit.

When a round closes (by hand, by the clock, or with the event), a hook in the same unit of work seals
it: the receipts of its counted (not voided) votes, each recomputed from its row with the server's key
(voting/receipts.py), go into the tree of core/merkle.py; the root, the number of votes and the sorted
receipts are stored in `round_seals`. A seal is history: a void after it changes the receipt's
`status`, not the root. A proof's sibling hashes are SHA-256 of other receipts (80 random-looking
bits each): they prove inclusion and reveal no other vote. A round is sealed once. No vote commits after
its round's seal: a vote insert holds the round's row until it commits (voting/repository.py), so
the close waits for it and the seal holds it, and a vote after the close finds the round closed.

`verify_event` (the `stagevote audit verify EVENT` command) recomputes every sealed round from the
votes table: the stored receipts must give the stored root, and the receipts recomputed from the rows
(leaving out the votes voided before the seal) must be exactly the sealed ones. A row changed behind
the app's back gets another receipt, a deleted one leaves a sealed receipt without a row, an inserted
one brings a receipt the seal does not hold: each is named.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.core import merkle
from stagevote.core.db import utcnow
from stagevote.core.errors import Conflict, NotFound
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import EventStatus
from stagevote.voting.models import RoundSeal, Vote
from stagevote.voting.receipts import normalized, receipt_of_row, vote_id_of
from stagevote.voting.repository import SealRepository, VoteRepository
from stagevote.voting.schemas import ProofStep, ReceiptRead, SealRead


def sealed_receipts(seal: RoundSeal) -> list[str]:
    return seal.receipts.split()


async def seal_round(*, session: AsyncSession, runtime: Runtime, event_id: int, number: int) -> RoundSeal:
    """Seal a round that just closed, in the caller's unit of work; a round already sealed keeps its seal."""
    seals = SealRepository(session)
    existing = await seals.of_round(event_id, number)
    if existing is not None:
        return existing
    secret_key = runtime.secret_key.get_secret_value()
    facts = await VoteRepository(session).counted_facts(event_id, number)
    receipts = sorted(receipt_of_row(secret_key, vote) for vote in facts)
    seal = RoundSeal(
        event_id=event_id,
        round=number,
        root=merkle.root_of(receipts),
        votes=len(receipts),
        receipts="\n".join(receipts),
        sealed_at=utcnow(),
    )
    return await seals.add(seal)


def install(runtime: Runtime) -> None:
    """Seal every round in the unit of work that closes it."""

    async def on_round_closed(session: AsyncSession, payload: dict[str, Any]) -> None:
        await seal_round(
            session=session, runtime=runtime, event_id=int(payload["eventId"]), number=int(payload["number"])
        )

    runtime.hooks.subscribe(events_service.ROUND_CLOSED, on_round_closed)


async def _visible_event(session: AsyncSession, event_id: int) -> None:
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None or event.status == EventStatus.DRAFT.value:
        raise NotFound(f"No event {event_id}.")


async def get_seal(*, session: AsyncSession, event_id: int, number: int) -> SealRead:
    """The seal of a round: 404 unknown event or round · 409 while the round is not closed and sealed."""
    await _visible_event(session, event_id)
    rounds = {r.number: r for r in await events_service.rounds_of(session=session, event_id=event_id)}
    if number not in rounds:
        raise NotFound(f"Event {event_id} has no round {number}.")
    seal = await SealRepository(session).of_round(event_id, number)
    if seal is None:
        raise Conflict(
            f"Round {number} is {rounds[number].status}: it is sealed once it closes.", slug="round-not-sealed"
        )
    return SealRead(event_id=event_id, round=number, root=seal.root, votes=seal.votes, sealed_at=seal.sealed_at)


async def seal_roots(*, session: AsyncSession, event_id: int) -> dict[int, str]:
    """The root of each sealed round of an event, by round number."""
    return {seal.round: seal.root for seal in await SealRepository(session).of_event(event_id)}


async def get_receipt(*, session: AsyncSession, runtime: Runtime, event_id: int, receipt: str) -> ReceiptRead:
    """What a receipt's holder may know: the vote's round, artist and status, and its proof of inclusion
    in the round's seal (empty, and `root` null, before the seal). 404 for a code this event never gave."""
    secret_key = runtime.secret_key.get_secret_value()
    code = normalized(receipt)
    vote = await _vote_of_receipt(session, secret_key, event_id, code)
    if vote is None:
        raise NotFound("No vote of this event has that receipt.")
    seal = await SealRepository(session).of_round(event_id, vote.round)
    proof = merkle.proof_of(sealed_receipts(seal), code) if seal is not None else None
    return ReceiptRead(
        receipt=code,
        round=vote.round,
        artist_id=vote.artist_id,
        status="voided" if vote.voided_at is not None else "counted",
        reason=vote.void_reason,
        root=seal.root if seal is not None else None,
        proof=[ProofStep.model_validate(step) for step in proof or []],
    )


async def _vote_of_receipt(session: AsyncSession, secret_key: str, event_id: int, code: str) -> Vote | None:
    """The event's vote that gives this receipt now: read back to its id (version 2) or looked up (version 1)."""
    votes = VoteRepository(session)
    vote_id = vote_id_of(secret_key, code)
    if vote_id is not None:
        vote = await votes.get_in_event(vote_id, event_id)
        if vote is not None and receipt_of_row(secret_key, vote) == code:
            return vote
    return await votes.get_by_stored_receipt(event_id, code) if code else None


@dataclass
class SealCheck:
    """What the audit found in one sealed round; it holds when `problems` is empty."""

    round: int
    votes: int
    problems: list[str] = field(default_factory=list)


@dataclass
class AuditReport:
    event_id: int
    seals: list[SealCheck]

    @property
    def holds(self) -> bool:
        return all(not check.problems for check in self.seals)


def _counted_at_seal(vote: Vote, sealed_at: dt.datetime) -> bool:
    return vote.voided_at is None or vote.voided_at > sealed_at


def check_seal(secret_key: str, seal: RoundSeal, votes: list[Vote]) -> SealCheck:
    """Recompute one seal from the round's current rows (see the module docstring)."""
    sealed = sealed_receipts(seal)
    check = SealCheck(round=seal.round, votes=seal.votes)
    if merkle.root_of(sealed) != seal.root or len(sealed) != seal.votes:
        check.problems.append(f"round {seal.round}: the seal's receipts do not give its root: the seal was changed")
    sealed_set = set(sealed)
    now = {receipt_of_row(secret_key, v): v for v in votes if _counted_at_seal(v, seal.sealed_at)}
    unmatched = {r: v for r, v in now.items() if r not in sealed_set}
    missing = sealed_set - set(now)
    by_id = {vote_id_of(secret_key, r): r for r in missing}  # a version 2 receipt reads back to its vote
    for vote in sorted(unmatched.values(), key=lambda v: v.id):
        was = vote.receipt if vote.receipt_version == 1 else by_id.get(vote.id)
        if was is not None and was in missing:
            missing.discard(was)
            check.problems.append(f"round {seal.round}: vote {vote.id} (receipt {was}) was changed since the seal")
        else:
            check.problems.append(f"round {seal.round}: vote {vote.id} was added after the seal")
    for receipt in sorted(missing):
        check.problems.append(f"round {seal.round}: the vote with receipt {receipt} was removed since the seal")
    return check


async def verify_event(*, session: AsyncSession, secret_key: str, event_id: int) -> AuditReport:
    """Check every sealed round of the event against the votes table. 404 unknown event."""
    if await events_service.get_event_unchecked(session=session, event_id=event_id) is None:
        raise NotFound(f"No event {event_id}.")
    by_round: dict[int, list[Vote]] = defaultdict(list)
    for vote in await VoteRepository(session).of_event(event_id):
        by_round[vote.round].append(vote)
    seals = await SealRepository(session).of_event(event_id)
    return AuditReport(event_id, [check_seal(secret_key, seal, by_round[seal.round]) for seal in seals])
