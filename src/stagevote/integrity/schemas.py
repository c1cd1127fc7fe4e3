"""Wire models of the integrity domain: a flag raised on an event's joins or votes, with its reason."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from stagevote.core.schemas import Schema

FlagKind = Literal["join_burst", "non_mobile_number", "shared_address", "late_join", "vote_spike"]
Severity = Literal["low", "medium", "high"]


class IntegrityFlag(Schema):
    kind: FlagKind = Field(
        description="join_burst: many numbers of one block joined together · non_mobile_number: a VoIP, toll-free, "
        "premium-rate ... number · shared_address: many web joins from one address · late_join: joined seconds "
        "before a timed round closed, and voted in it · vote_spike: an artist's votes in one minute far above "
        "its own usual rate"
    )
    severity: Severity
    reason: str = Field(description="Why, in words an organizer reads, with the figures behind the flag")
    attendee_id: int | None = Field(
        default=None, description="The attendee flagged (`POST /attendees/{id}/void` acts on them); null for vote_spike"
    )
    vote_ids: list[int] | None = Field(
        default=None,
        description="The votes flagged (`POST /events/{id}/votes/{voteId}/void` acts on each); null when the flag "
        "is about an attendee only",
    )
    detected_at: dt.datetime = Field(
        description="When the pattern shows in the data (the join, the start of the minute), not when it was asked"
    )
