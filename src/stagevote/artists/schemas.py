"""Wire models of the artists domain: the invitation request and answers, claims, the line-up."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, HttpUrl, TypeAdapter, ValidationInfo, field_validator

from stagevote.artists.models import ArtistStatus, InviteStatus
from stagevote.core.schemas import Schema

_http_url = TypeAdapter(HttpUrl)


def _check_url(value: str) -> str:
    """An http(s) URL, kept as the organizer wrote it (pydantic's HttpUrl would add a trailing slash)."""
    _http_url.validate_python(value)
    return value


SocialLinkName = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^\S(.*\S)?$")]
SocialLinkUrl = Annotated[str, Field(max_length=2048), AfterValidator(_check_url)]
SocialLinks = Annotated[
    dict[SocialLinkName, SocialLinkUrl],
    Field(max_length=20, description='Name → http(s) URL, e.g. {"instagram": "https://instagram.com/band"}'),
]


def _none_is_empty(value: object) -> object:
    return {} if value is None else value


class ArtistInvite(Schema):
    """Invite an artist to an event: an existing one by `artistId`, or a new one by `name` (and bio, links, e-mail).

    Exactly one of the two forms: `artistId` together with any of the other fields is 422.
    """

    artist_id: int | None = Field(default=None, ge=1, description="An existing artist; leave out the other fields")
    name: str | None = Field(default=None, max_length=200, validate_default=True, description="A new artist's name")
    bio: str | None = Field(default=None, max_length=5000)
    social_links: SocialLinks | None = None
    email: EmailStr | None = Field(default=None, description="Where the organizer reaches the new artist")

    @field_validator("name")
    @classmethod
    def _one_form(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "artist_id" not in info.data:  # artistId itself is invalid; that error says enough
            return value
        name = value.strip() if value is not None else None
        if info.data["artist_id"] is not None:
            if value is not None:
                raise ValueError("send either artistId or name, not both")
            return None
        if not name:
            raise ValueError("required: the new artist's name, or send artistId instead")
        return name

    @field_validator("bio", "social_links", "email")
    @classmethod
    def _only_for_a_new_artist(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("artist_id") is not None:
            raise ValueError("only for a new artist (with name), not with artistId")
        return value

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return value.strip().lower() if value is not None else None


class ArtistInvitation(Schema):
    """An invitation just made; `inviteUrl` ends with the claim token the artist uses to claim the profile."""

    artist_id: int
    name: str
    bio: str | None
    social_links: dict[str, str]
    status: ArtistStatus
    invite_status: InviteStatus
    vote_code: str = Field(description="What fans text to vote for this artist at this event (`VOTE 3` or `3`)")
    invite_url: str

    _links = field_validator("social_links", mode="before")(_none_is_empty)


class ArtistListing(Schema):
    """An artist in an event's public line-up (accepted invitations only)."""

    artist_id: int
    name: str
    bio: str | None
    social_links: dict[str, str]
    vote_code: str

    _links = field_validator("social_links", mode="before")(_none_is_empty)


class ArtistInvitationRead(ArtistListing):
    """The organizer's view of one invitation of an event, whatever its answer."""

    status: ArtistStatus
    invite_status: InviteStatus
    email: str | None
    claimed_by_user_id: int | None
    invited_at: dt.datetime
    joined_at: dt.datetime | None


class ClaimRequest(Schema):
    claim_token: str = Field(min_length=1, max_length=2000, description="The last path segment of the inviteUrl")


class ArtistRead(Schema):
    """An artist profile."""

    id: int
    name: str
    bio: str | None
    social_links: dict[str, str]
    status: ArtistStatus
    claimed_by_user_id: int | None

    _links = field_validator("social_links", mode="before")(_none_is_empty)


class InviteAnswer(Schema):
    invite_status: InviteStatus
