"""HTTP routes of the artists domain: invitations, claims, answers."""

from __future__ import annotations

from fastapi import APIRouter, status

from stagevote.artists import service
from stagevote.artists.models import Artist, EventArtist
from stagevote.artists.schemas import (
    ArtistInvitation,
    ArtistInvitationRead,
    ArtistInvite,
    ArtistListing,
    ArtistRead,
    ClaimRequest,
    InviteAnswer,
)
from stagevote.auth.dependencies import AdminPrincipal, CurrentPrincipal, OptionalPrincipal
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.core.schemas import Page, Paging

router = APIRouter(tags=["artists"])


def _listed(invitation: EventArtist, artist: Artist, *, admin: bool) -> ArtistInvitationRead | ArtistListing:
    public = ArtistListing(
        artist_id=artist.id,
        name=artist.name,
        bio=artist.bio,
        social_links=artist.social_links or {},
        vote_code=invitation.vote_code,
    )
    if not admin:
        return public
    return ArtistInvitationRead(
        **public.model_dump(),
        status=artist.status,
        invite_status=invitation.invite_status,
        email=artist.email,
        claimed_by_user_id=artist.claimed_by_user_id,
        invited_at=invitation.invited_at,
        joined_at=invitation.joined_at,
    )


@router.post("/events/{event_id}/artists", status_code=status.HTTP_201_CREATED, response_model=ArtistInvitation)
async def invite_artist(
    event_id: int, body: ArtistInvite, _: AdminPrincipal, session: SessionDep, runtime: RuntimeDep
) -> ArtistInvitation:
    """Invite an artist: an existing one by `artistId`, or a new one by `name`.

    The answer's `voteCode` is the smallest number not yet used in the event. 404 unknown event;
    409 the event is closed or archived, or the artist is already invited; 422 an unknown `artistId`
    or a body that is neither (or both) of the two forms.
    """
    made = await service.invite_artist(session=session, runtime=runtime, event_id=event_id, data=body)
    return ArtistInvitation(
        artist_id=made.artist.id,
        name=made.artist.name,
        bio=made.artist.bio,
        social_links=made.artist.social_links or {},
        status=made.artist.status,
        invite_status=made.invitation.invite_status,
        vote_code=made.invitation.vote_code,
        invite_url=made.invite_url,
    )


@router.get("/events/{event_id}/artists", response_model=Page[ArtistInvitationRead | ArtistListing])
async def list_artists(
    event_id: int, principal: OptionalPrincipal, session: SessionDep, page: Paging
) -> Page[ArtistInvitationRead | ArtistListing]:
    """The event's line-up in vote-code order: accepted artists for everyone; every invitation for admins.

    404 when the event does not exist or is a draft the caller may not see.
    """
    rows, total = await service.list_artists(
        session=session, principal=principal, event_id=event_id, limit=page.limit, offset=page.offset
    )
    admin = principal is not None and principal.is_admin
    items = [_listed(invitation, artist, admin=admin) for invitation, artist in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/artists/{artist_id}/claim", response_model=ArtistRead)
async def claim_artist(
    artist_id: int, body: ClaimRequest, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> ArtistRead:
    """Claim an artist profile with the claim token of an invitation (the last segment of its `inviteUrl`).

    The caller becomes an `artist` (staff keep their role). Claiming again as the same user is 200
    and changes nothing. 404 unknown artist; 409 claimed by another user, or the invitation's event
    is closed or archived; 422 (`claimToken`) a token that is invalid, expired or for another artist.
    """
    artist = await service.claim_artist(
        session=session, runtime=runtime, principal=principal, artist_id=artist_id, claim_token=body.claim_token
    )
    return ArtistRead.model_validate(artist)


@router.post("/events/{event_id}/artists/{artist_id}/accept", response_model=InviteAnswer)
async def accept_invitation(
    event_id: int, artist_id: int, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> InviteAnswer:
    """Accept the invitation, as the artist who claimed the profile or an admin: the artist joins the line-up.

    403 anyone else; 404 no such invitation; 409 the event is closed or archived.
    """
    invitation = await service.answer_invitation(
        session=session, runtime=runtime, principal=principal, event_id=event_id, artist_id=artist_id, accept=True
    )
    return InviteAnswer(invite_status=invitation.invite_status)


@router.post("/events/{event_id}/artists/{artist_id}/decline", response_model=InviteAnswer)
async def decline_invitation(
    event_id: int, artist_id: int, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> InviteAnswer:
    """Decline the invitation (also after accepting, to leave the line-up) while the event is not closed.

    403 anyone but the claiming artist or an admin; 404 no such invitation; 409 the event is closed or archived.
    """
    invitation = await service.answer_invitation(
        session=session, runtime=runtime, principal=principal, event_id=event_id, artist_id=artist_id, accept=False
    )
    return InviteAnswer(invite_status=invitation.invite_status)
