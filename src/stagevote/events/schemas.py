"""Wire models of the events domain, `voteConfig` with its validation rules among them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from stagevote.core.schemas import Schema, Timestamp
from stagevote.events.models import AccessType, EventStatus, RoundStatus

# Words the SMS grammar gives a meaning of its own: an event keyword may not be one of them.
RESERVED_KEYWORDS = frozenset(
    {
        "JOIN",
        "UNIRME",
        "VOTE",
        "VOTAR",
        "HELP",
        "INFO",
        "AYUDA",
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "UNSTOP",
        "START",
        "YES",
    }
)
KEYWORD_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,31}$")
Language = Literal["en", "es"]
LeaderboardVisibility = Literal["live", "after_close", "hidden"]


def normalize_keyword(value: str) -> str:
    keyword = value.strip().upper()
    if not KEYWORD_PATTERN.match(keyword):
        raise ValueError("2 to 32 letters or digits, starting with a letter")
    if keyword in RESERVED_KEYWORDS:
        raise ValueError(f"'{keyword}' is a reserved SMS word; pick another keyword")
    return keyword


class RoundConfig(Schema):
    """One round as the organizer defines it."""

    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1, le=100)
    name: str = Field(min_length=1, max_length=100)
    artist_ids: list[int] | None = Field(default=None, description="null: every accepted artist of the event")
    opens_at: Timestamp | None = None
    closes_at: Timestamp | None = None

    @field_validator("closes_at")
    @classmethod
    def _closes_after_opening(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        opens_at = info.data.get("opens_at")
        if value is not None and opens_at is not None and value <= opens_at:
            raise ValueError("must be after opensAt")
        return value

    @field_validator("artist_ids")
    @classmethod
    def _distinct_artists(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one artist, or null for every accepted artist")
            if len(set(value)) != len(value):
                raise ValueError("an artist is listed twice")
        return value


class VoteConfig(Schema):
    """The voting rules of an event (the `vote_config` column)."""

    model_config = ConfigDict(extra="forbid")

    rounds: list[RoundConfig] = Field(
        default_factory=lambda: [RoundConfig(number=1, name="Final")], min_length=1, max_length=100
    )
    votes_per_round: int = Field(default=1, ge=1, le=20)
    allow_vote_change: bool = False
    require_confirmation: bool = True
    sms_voting: bool = True
    leaderboard_visibility: LeaderboardVisibility = "live"
    privacy_mode: bool = True
    nudge_minutes_before_close: int = Field(default=5, ge=0, le=1440)

    @field_validator("rounds")
    @classmethod
    def _numbered_in_order(cls, value: list[RoundConfig]) -> list[RoundConfig]:
        numbers = [r.number for r in value]
        if numbers != list(range(1, len(value) + 1)):
            raise ValueError("rounds must be numbered 1, 2, 3… in order")
        return value

    def round(self, number: int) -> RoundConfig | None:
        return next((r for r in self.rounds if r.number == number), None)


class _EventFields(Schema):
    @field_validator("keyword", check_fields=False)
    @classmethod
    def _keyword(cls, value: str | None) -> str | None:
        return None if value is None else normalize_keyword(value)

    @field_validator("title", check_fields=False)
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value.strip() if value is not None else None


class EventCreate(_EventFields):
    title: str = Field(min_length=1, max_length=200)
    start_date: Timestamp
    end_date: Timestamp
    venue: str | None = Field(default=None, max_length=300)
    access_type: AccessType = AccessType.PUBLIC
    keyword: str = Field(description="What fans text to join, e.g. ROCKFEST; unique among events not archived")
    default_language: Language = "en"
    vote_config: VoteConfig = Field(default_factory=VoteConfig)

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        start = info.data.get("start_date")
        if start is not None and value <= start:
            raise ValueError("must be after startDate")
        return value


class EventUpdate(_EventFields):
    """Fields to change; a field left out, or sent with its current value, is not a change."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None
    venue: str | None = Field(default=None, max_length=300)
    access_type: AccessType | None = None
    keyword: str | None = None
    default_language: Language | None = None
    vote_config: VoteConfig | None = None


class EventPublic(Schema):
    """What anyone may see of a published event."""

    id: int
    title: str
    start_date: dt.datetime
    end_date: dt.datetime
    venue: str | None
    access_type: AccessType
    keyword: str
    default_language: str
    vote_config: VoteConfig
    status: EventStatus


class EventRead(EventPublic):
    """The organizer's view of an event."""

    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class RoundRead(Schema):
    number: int
    name: str
    status: RoundStatus
    opens_at: dt.datetime | None
    closes_at: dt.datetime | None
    opened_at: dt.datetime | None
    closed_at: dt.datetime | None


class SponsorLink(Schema):
    user_id: int


class SponsorRead(Schema):
    user_id: int
    email: str
    linked_at: dt.datetime
