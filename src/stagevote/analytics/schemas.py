"""Wire models of the analytics domain: an event's live figures, exact for staff, suppressed for sponsors."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from stagevote.core.schemas import Schema

View = Literal["full", "aggregate"]
SUPPRESSED = "null: a group of fewer than 5, or hidden so that such a group cannot be derived from a total"


class AttendeeFigures(Schema):
    joined: int | None = Field(description=f"Attendees, pre-registered numbers included ({SUPPRESSED})")
    confirmed: int | None = Field(description="Attendees who confirmed their phone")
    opted_out: int | None = Field(description="Attendees whose number texted STOP")


class RoundVotes(Schema):
    round: int
    name: str
    votes: int | None


class ArtistVotes(Schema):
    artist_id: int
    name: str
    votes: int | None


class MinuteVotes(Schema):
    minute: dt.datetime = Field(description="The start of the minute (UTC)")
    votes: int | None


class VoteFigures(Schema):
    total: int | None
    by_round: list[RoundVotes]
    by_artist: list[ArtistVotes]
    per_minute: list[MinuteVotes] = Field(description="Minutes with at least one vote, in order")


class ChannelFigures(Schema):
    queued: int | None = 0
    sending: int | None = 0
    sent: int | None = 0
    delivered: int | None = 0
    undelivered: int | None = 0
    failed: int | None = 0
    total: int | None = 0
    delivery_rate: float | None = Field(
        default=None,
        description="(sent + delivered) / (sent + delivered + undelivered + failed); null before any attempt ended",
    )


class MessageFigures(Schema):
    sms: ChannelFigures
    email: ChannelFigures


class AnalyticsRead(Schema):
    """An event's figures. `view` is `full` for admins; `aggregate` for sponsors and developers: the same
    figures with groups of fewer than 5 (and the cells that would reveal them) as null."""

    event_id: int
    view: View
    attendees: AttendeeFigures
    votes: VoteFigures
    messages: MessageFigures
    generated_at: dt.datetime
