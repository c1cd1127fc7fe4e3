"""Every query of the artists domain: artist profiles, invitations, an event's line-up and its vote codes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select

from stagevote.artists.models import Artist, EventArtist, InviteStatus
from stagevote.core.repository import Repository


class ArtistRepository(Repository[Artist]):
    model = Artist

    async def get_for_update(self, artist_id: int) -> Artist | None:
        """The artist, freshly read and locked for this unit of work.

        `FOR NO KEY UPDATE` (PostgreSQL) leaves the key-share locks that foreign-key checks take
        alone, so an invitation being inserted for this artist does not wait for, or deadlock with, a claim.
        """
        statement = (
            select(Artist)
            .where(Artist.id == artist_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def get_many(self, artist_ids: Sequence[int]) -> dict[int, Artist]:
        if not artist_ids:
            return {}
        rows = await self.session.scalars(select(Artist).where(Artist.id.in_(artist_ids)))
        return {artist.id: artist for artist in rows}


class EventArtistRepository(Repository[EventArtist]):
    model = EventArtist

    async def get_invitation(self, event_id: int, artist_id: int) -> EventArtist | None:
        return await self.get((event_id, artist_id))

    async def next_vote_code(self, event_id: int) -> str:
        """The smallest positive number not yet used as a vote code in the event ("1", "2", …)."""
        codes = await self.session.scalars(select(EventArtist.vote_code).where(EventArtist.event_id == event_id))
        taken = {int(code) for code in codes if code.isdigit()}
        return str(next(n for n in range(1, len(taken) + 2) if n not in taken))

    def _line_up(self, event_id: int) -> Select[EventArtist]:
        # numeric order of the codes ("2" before "10") that works on every backend, then a stable tie-break
        return (
            select(EventArtist)
            .where(EventArtist.event_id == event_id)
            .order_by(func.length(EventArtist.vote_code), EventArtist.vote_code, EventArtist.artist_id)
        )

    async def accepted_line_up(self, event_id: int) -> Sequence[tuple[EventArtist, Artist]]:
        """Every accepted artist of the event with its invitation, in vote-code order."""
        statement = (
            self._line_up(event_id)
            .where(EventArtist.invite_status == InviteStatus.ACCEPTED.value)
            .add_columns(Artist)
            .join(Artist, Artist.id == EventArtist.artist_id)
        )
        result = await self.session.execute(statement)
        return [(invitation, artist) for invitation, artist in result]

    async def page_for_event(
        self, event_id: int, *, accepted_only: bool, limit: int, offset: int
    ) -> tuple[Sequence[tuple[EventArtist, Artist]], int]:
        """One page of an event's invitations (all of them, or only the accepted ones), each with its artist."""
        statement = self._line_up(event_id)
        if accepted_only:
            statement = statement.where(EventArtist.invite_status == InviteStatus.ACCEPTED.value)
        invitations, total = await self.page(statement, limit=limit, offset=offset)
        artists = await ArtistRepository(self.session).get_many([i.artist_id for i in invitations])
        return [(i, artists[i.artist_id]) for i in invitations], total
