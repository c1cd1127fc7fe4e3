"""The rules of artists: inviting them to events, vote codes, claiming a profile, answering an invitation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.artists.models import Artist, ArtistStatus, EventArtist, InviteStatus
from stagevote.artists.repository import ArtistRepository, EventArtistRepository
from stagevote.artists.schemas import ArtistInvite
from stagevote.auth import service as auth_service
from stagevote.auth.principal import Principal
from stagevote.core.db import utcnow
from stagevote.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from stagevote.core.runtime import Runtime
from stagevote.core.security import InvalidToken, decode_jwt, encode_jwt
from stagevote.events import service as events_service
from stagevote.events.models import Event, EventStatus

CLAIM = "artist-claim"
# Invitations are made, claimed and answered only while the line-up can still change.
OPEN_FOR_ARTISTS = frozenset({EventStatus.DRAFT, EventStatus.PUBLISHED, EventStatus.LIVE})
ALREADY_INVITED = "This artist is already invited to the event."


@dataclass(frozen=True)
class Invitation:
    """An invitation just made, with the link that lets the artist claim the profile."""

    artist: Artist
    invitation: EventArtist
    claim_token: str
    invite_url: str


def _require_open_for_artists(event: Event, what: str) -> None:
    if EventStatus(event.status) not in OPEN_FOR_ARTISTS:
        raise Conflict(
            f"{what} only while the event is draft, published or live; it is {event.status}.", slug="event-closed"
        )


def claim_token_for(*, runtime: Runtime, artist_id: int, event_id: int) -> str:
    """A signed token that lets whoever holds it claim the artist's profile (its invitation to the event)."""
    return encode_jwt(
        {"artist": artist_id, "event": event_id},
        secret=runtime.secret_key.get_secret_value(),
        purpose=CLAIM,
        lifetime=dt.timedelta(days=runtime.settings.claim_token_days),
    )


async def invite_artist(*, session: AsyncSession, runtime: Runtime, event_id: int, data: ArtistInvite) -> Invitation:
    """Invite an existing artist (`artistId`) or a new one (`name`) to an event; the caller is an admin.

    404 unknown event · 409 event closed or archived, or the artist already invited · 422 unknown `artistId`.
    The vote code is the smallest number not yet used in the event; the event row stays locked until
    commit, so concurrent invitations to one event take their codes one after the other.
    """
    event = await events_service.get_event_for_change(session=session, event_id=event_id)
    _require_open_for_artists(event, "Artists are invited")
    artists = ArtistRepository(session)
    invitations = EventArtistRepository(session)
    if data.artist_id is not None:
        found = await artists.get(data.artist_id)
        if found is None:
            raise Unprocessable.field("artistId", f"there is no artist {data.artist_id}")
        artist = found
        if await invitations.get_invitation(event.id, artist.id) is not None:
            raise Conflict(ALREADY_INVITED, slug="artist-invited")
    elif data.name is not None:
        artist = await artists.add(
            Artist(
                name=data.name,
                bio=data.bio,
                social_links=data.social_links,
                email=data.email,
                status=ArtistStatus.INVITED.value,
            )
        )
    else:  # ArtistInvite already refuses a body with neither form
        raise Unprocessable.field("name", "required: the new artist's name, or send artistId instead")
    try:
        invitation = await invitations.add(
            EventArtist(
                event_id=event.id,
                artist_id=artist.id,
                invite_status=InviteStatus.PENDING.value,
                vote_code=await invitations.next_vote_code(event.id),
            )
        )
    except IntegrityError as exc:  # only if something bypassed the event lock: same artist or same code
        raise Conflict("Another invitation to this event was made at the same moment; try again.") from exc
    token = claim_token_for(runtime=runtime, artist_id=artist.id, event_id=event.id)
    return Invitation(artist, invitation, token, f"{runtime.settings.public_url}/claim/{token}")


async def list_artists(
    *, session: AsyncSession, principal: Principal | None, event_id: int, limit: int, offset: int
) -> tuple[Sequence[tuple[EventArtist, Artist]], int]:
    """The event's line-up: every invitation for admins, the accepted artists for everyone else.

    404 when the caller may not see the event (a draft, for the public).
    """
    await events_service.get_event(session=session, principal=principal, event_id=event_id)
    admin = principal is not None and principal.is_admin
    return await EventArtistRepository(session).page_for_event(
        event_id, accepted_only=not admin, limit=limit, offset=offset
    )


@dataclass(frozen=True)
class Performer:
    """An accepted artist as the vote path and the leaderboard need it."""

    artist_id: int
    name: str
    vote_code: str


async def accepted_performers(*, session: AsyncSession, event_id: int) -> list[Performer]:
    """The event's accepted artists, in vote-code order."""
    line_up = await EventArtistRepository(session).accepted_line_up(event_id)
    return [Performer(artist.id, artist.name, invitation.vote_code) for invitation, artist in line_up]


def _claimed_event_id(*, runtime: Runtime, claim_token: str, artist_id: int) -> int:
    try:
        claims = decode_jwt(claim_token, secret=runtime.secret_key.get_secret_value(), purpose=CLAIM)
        token_artist, token_event = int(claims["artist"]), int(claims["event"])
    except (InvalidToken, KeyError, TypeError, ValueError) as exc:
        raise Unprocessable.field("claimToken", "invalid or expired; ask the organizer for a new invitation") from exc
    if token_artist != artist_id:
        raise Unprocessable.field("claimToken", "this token claims another artist")
    return token_event


async def claim_artist(
    *, session: AsyncSession, runtime: Runtime, principal: Principal, artist_id: int, claim_token: str
) -> Artist:
    """The signed-in caller claims an artist profile with the token of its invitation, and becomes an artist.

    404 unknown artist, or the invitation no longer exists · 422 (`claimToken`) a token that is
    malformed, tampered with, expired, or for another artist: the token is the proof, not the caller's
    identity, so a bad one is invalid input rather than 401 · 409 the event of the invitation is
    closed or archived, or another user already claimed the profile. Claiming again as the same
    user changes nothing and answers 200. Admins and other staff keep their role.
    """
    artists = ArtistRepository(session)
    if await artists.get(artist_id) is None:
        raise NotFound(f"No artist {artist_id}.")
    event_id = _claimed_event_id(runtime=runtime, claim_token=claim_token, artist_id=artist_id)
    if await EventArtistRepository(session).get_invitation(event_id, artist_id) is None:
        raise NotFound("This invitation no longer exists.")
    # lock order: the event, then the artist (as in invite_artist), so a claim never waits in a cycle
    event = await events_service.get_event_for_change(session=session, event_id=event_id)
    _require_open_for_artists(event, "Artist profiles are claimed")
    artist = await artists.get_for_update(artist_id)
    if artist is None:
        raise NotFound(f"No artist {artist_id}.")
    if artist.claimed_by_user_id is not None and artist.claimed_by_user_id != principal.user_id:
        raise Conflict("Another user already claimed this artist profile.", slug="artist-claimed")
    if artist.claimed_by_user_id is None:
        artist.claimed_by_user_id = principal.user_id
        if artist.status == ArtistStatus.INVITED.value:
            artist.status = ArtistStatus.CLAIMED.value
        await artists.flush()
    await auth_service.promote_to_artist(session=session, user=principal.user)
    return artist


async def answer_invitation(
    *, session: AsyncSession, runtime: Runtime, principal: Principal, event_id: int, artist_id: int, accept: bool
) -> EventArtist:
    """Accept or decline an invitation, as the artist who claimed the profile or as an admin.

    404 unknown event or invitation, or an event the caller may not see · 403 neither the claiming
    artist nor an admin · 409 the event is closed or archived. The answer may change (accept, then
    decline) while the event is draft, published or live; answering the same again changes nothing.
    """
    event = await events_service.get_event_for_change(session=session, event_id=event_id)
    if not principal.is_admin:  # a draft the caller may not read does not exist for them
        await events_service.get_event(session=session, principal=principal, event_id=event_id)
    invitation = await EventArtistRepository(session).get_invitation(event_id, artist_id)
    artist = await ArtistRepository(session).get(artist_id)
    if invitation is None or artist is None:
        raise NotFound(f"Artist {artist_id} is not invited to event {event_id}.")
    if not principal.is_admin and artist.claimed_by_user_id != principal.user_id:
        raise Forbidden("Only the artist who claimed this profile, or an admin, answers its invitations.")
    _require_open_for_artists(event, "Invitations are answered")
    if accept and invitation.invite_status != InviteStatus.ACCEPTED.value:
        invitation.invite_status = InviteStatus.ACCEPTED.value
        invitation.joined_at = utcnow()
    elif not accept:
        invitation.invite_status = InviteStatus.DECLINED.value
        invitation.joined_at = None
    await EventArtistRepository(session).flush()
    events_service.announce_change(session=session, runtime=runtime, event_id=event_id)  # the line-up changed
    return invitation


@dataclass(frozen=True)
class ClaimableInvitation:
    """What an invitation link shows before the artist signs in: who is invited, to what, and the answer so far."""

    artist: Artist
    event: Event
    invitation: EventArtist


async def invitation_of_claim_token(
    *, session: AsyncSession, runtime: Runtime, claim_token: str
) -> ClaimableInvitation | None:
    """The invitation a claim token (the last segment of an `inviteUrl`) stands for; None for a token that is
    malformed, tampered with or expired, or whose invitation is gone. The token is the proof: no sign-in."""
    try:
        claims = decode_jwt(claim_token, secret=runtime.secret_key.get_secret_value(), purpose=CLAIM)
        artist_id, event_id = int(claims["artist"]), int(claims["event"])
    except (InvalidToken, KeyError, TypeError, ValueError):
        return None
    invitation = await EventArtistRepository(session).get_invitation(event_id, artist_id)
    artist = await ArtistRepository(session).get(artist_id)
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if invitation is None or artist is None or event is None:
        return None
    return ClaimableInvitation(artist, event, invitation)
