"""Wire models of the voting domain: a vote, the leaderboard, seals and receipts, voids."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

from pydantic import Field

from stagevote.core.schemas import Schema


class VoteRequest(Schema):
    round: int = Field(ge=1, description="The number of the open round")
    artist_id: int = Field(ge=1)
    token: str = Field(
        min_length=8, max_length=100, description="Chosen by the client; the same token again is the same vote"
    )


class VoteRead(Schema):
    id: int
    event_id: int
    round: int
    artist_id: int
    token: str
    created_at: dt.datetime
    receipt: str = Field(
        description="The fan's receipt: look the vote up with it at /events/{id}/receipts/{receipt}",
    )


class Standing(Schema):
    artist_id: int
    name: str
    votes: int
    rank: int = Field(description="Competition ranking: artists with equal votes share a rank (1, 1, 3)")


class LeaderboardRead(Schema):
    event_id: int
    round: int
    total_votes: int
    standings: list[Standing]
    updated_at: dt.datetime


class SealRead(Schema):
    event_id: int
    round: int
    root: str = Field(description="The Merkle root, 64 hex digits (the README says how the tree is built)")
    votes: int = Field(description="Counted votes the seal covers: the tree's leaves")
    sealed_at: dt.datetime


class ProofStep(Schema):
    side: Literal["left", "right"] = Field(description="Where the sibling sits: `left` means SHA-256(hash || node)")
    hash: str = Field(description="The sibling's SHA-256, hex")


class ReceiptRead(Schema):
    receipt: str
    round: int
    artist_id: int
    status: Literal["counted", "voided"]
    reason: str | None = Field(default=None, description="Why the organizer voided the vote (a `VoidReason`)")
    root: str | None = Field(description="The round's sealed root; null until the round closes")
    proof: list[ProofStep] = Field(description="From the receipt's leaf to `root`; empty before the seal")


class VoidReason(enum.StrEnum):
    """Why an organizer voids a vote or an attendee: a bought or scripted vote, a second vote of one person,
    someone who may not vote here, anything else (say what in `note`)."""

    FRAUD = "fraud"
    DUPLICATE = "duplicate"
    INELIGIBLE = "ineligible"
    OTHER = "other"


class VoidRequest(Schema):
    reason: VoidReason
    note: str | None = Field(default=None, max_length=500, description="Free text for the organizers' records")


class VoteVoidRead(Schema):
    id: int
    event_id: int
    round: int
    artist_id: int
    receipt: str
    status: Literal["voided"] = "voided"
    reason: str
    note: str | None
    voided_at: dt.datetime
    voided_by: int | None


class AttendeeVoidRead(Schema):
    attendee_id: int
    event_id: int
    reason: str
    voided_at: dt.datetime
    votes_voided: int = Field(description="Votes this call voided (votes voided before are not counted again)")
