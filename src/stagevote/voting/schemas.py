"""Wire models of the voting domain: a vote, and the leaderboard."""

from __future__ import annotations

import datetime as dt

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
