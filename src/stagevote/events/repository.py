"""Every query of the events domain, including what each caller may read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Select, and_, exists, func, or_, select

from stagevote.artists.models import Artist, EventArtist
from stagevote.auth.models import User
from stagevote.auth.principal import Principal
from stagevote.core.repository import Repository
from stagevote.events.models import Event, EventSponsor, EventStatus, Round


class EventRepository(Repository[Event]):
    model = Event

    def readable_statement(self, principal: Principal | None) -> Select[Event]:
        """Events the caller may see: admins all; others the non-drafts, plus drafts they perform in or sponsor."""
        statement = select(Event)
        if principal is not None and principal.is_admin:
            return statement
        visible = Event.status != EventStatus.DRAFT.value
        if principal is None:
            return statement.where(visible)
        performs = exists().where(
            EventArtist.event_id == Event.id,
            EventArtist.artist_id == Artist.id,
            Artist.claimed_by_user_id == principal.user_id,
        )
        sponsors = exists().where(EventSponsor.event_id == Event.id, EventSponsor.user_id == principal.user_id)
        return statement.where(or_(visible, performs, sponsors))

    async def get_readable(self, event_id: int, principal: Principal | None) -> Event | None:
        return await self.session.scalar(self.readable_statement(principal).where(Event.id == event_id))

    async def list_readable(
        self,
        principal: Principal | None,
        *,
        status: EventStatus | None,
        starts_before: dt.datetime | None,
        ends_after: dt.datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Event], int]:
        statement = self.readable_statement(principal)
        if status is not None:
            statement = statement.where(Event.status == status.value)
        if ends_after is not None:
            statement = statement.where(Event.end_date >= ends_after)
        if starts_before is not None:
            statement = statement.where(Event.start_date <= starts_before)
        return await self.page(statement.order_by(Event.start_date, Event.id), limit=limit, offset=offset)

    async def get_for_update(self, event_id: int) -> Event | None:
        """The event, locked for the rest of the unit of work (PostgreSQL; SQLite locks the whole file).

        `FOR NO KEY UPDATE`: changes of the event wait for each other, but not the votes. Each vote's
        foreign key takes a key-share lock on the event row, which `FOR UPDATE` would make wait until a
        round's close (its seal, its results queued) commits: every vote of the event held up for that.
        """
        statement = (
            select(Event)
            .where(Event.id == event_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def get_by_keyword(self, keyword: str, *, statuses: frozenset[EventStatus]) -> Event | None:
        """The event (not archived) whose keyword this is, among `statuses`."""
        return await self.session.scalar(
            select(Event).where(
                func.lower(Event.keyword) == keyword.lower(),
                Event.status.in_([s.value for s in statuses]),
            )
        )

    async def keyword_taken(self, keyword: str, *, except_event_id: int | None = None) -> bool:
        clauses = [func.lower(Event.keyword) == keyword.lower(), Event.status != EventStatus.ARCHIVED.value]
        if except_event_id is not None:
            clauses.append(Event.id != except_event_id)
        return bool(await self.session.scalar(select(exists().where(and_(*clauses)))))


class RoundRepository(Repository[Round]):
    model = Round

    async def list_for_event(self, event_id: int) -> Sequence[Round]:
        return (
            await self.session.scalars(select(Round).where(Round.event_id == event_id).order_by(Round.number))
        ).all()

    async def page_for_event(self, event_id: int, *, limit: int, offset: int) -> tuple[Sequence[Round], int]:
        statement = select(Round).where(Round.event_id == event_id).order_by(Round.number)
        return await self.page(statement, limit=limit, offset=offset)

    async def get_by_number(self, event_id: int, number: int) -> Round | None:
        return await self.session.scalar(select(Round).where(Round.event_id == event_id, Round.number == number))

    async def get_held_for_vote(self, event_id: int, number: int) -> Round | None:
        """The round as the table has it now, held FOR SHARE (PostgreSQL) until the caller commits: its close
        waits for that commit. SQLite's writers take turns (BEGIN IMMEDIATE), which holds it as well."""
        statement = (
            select(Round)
            .where(Round.event_id == event_id, Round.number == number)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def get_open(self, event_id: int) -> Round | None:
        return await self.session.scalar(select(Round).where(Round.event_id == event_id, Round.status == "open"))

    async def due(self, now: dt.datetime) -> Sequence[Round]:
        """Timed rounds of live events whose clock says they should open or close now."""
        live = select(Event.id).where(Event.status == EventStatus.LIVE.value)
        to_open = and_(
            Round.status == "pending", Round.opens_at <= now, or_(Round.closes_at.is_(None), Round.closes_at > now)
        )
        to_close = and_(
            Round.status.in_(["open", "pending"]),
            Round.closes_at <= now,
            or_(Round.status == "open", Round.opens_at.is_not(None)),
        )
        return (
            await self.session.scalars(
                select(Round)
                .where(Round.event_id.in_(live), or_(to_open, to_close))
                .order_by(Round.event_id, Round.number)
                # waits, never skips: a vote under way holds its round's row (FOR SHARE) until it commits,
                # and under steady voting some vote always does; another instance's clock that changed
                # the row first makes it no longer due (PostgreSQL re-reads the locked row's condition)
                .with_for_update()
            )
        ).all()

    async def active_since(self, since: dt.datetime, now: dt.datetime) -> list[tuple[int, int]]:
        """(event id, number) of the rounds open now, or by their times, or closed since `since`."""
        timed = and_(Round.opens_at <= now, or_(Round.closes_at.is_(None), Round.closes_at >= since))
        statement = (
            select(Round.event_id, Round.number)
            .where(or_(Round.status == "open", Round.closed_at >= since, timed))
            .order_by(Round.event_id, Round.number)
        )
        return [(event_id, number) for event_id, number in await self.session.execute(statement)]

    async def delete(self, round_: Round) -> None:
        await self.session.delete(round_)
        await self.session.flush()


class SponsorRepository(Repository[EventSponsor]):
    model = EventSponsor

    async def page_for_event(
        self, event_id: int, *, limit: int, offset: int
    ) -> tuple[Sequence[tuple[EventSponsor, str]], int]:
        statement = (
            select(EventSponsor, User.email)
            .join(User, User.id == EventSponsor.user_id)
            .where(EventSponsor.event_id == event_id)
            .order_by(EventSponsor.linked_at, EventSponsor.user_id)
        )
        total = await self.session.scalar(select(func.count()).where(EventSponsor.event_id == event_id))
        result = await self.session.execute(statement.limit(limit).offset(offset))
        return [(link, email) for link, email in result], int(total or 0)

    async def is_sponsor(self, event_id: int, user_id: int) -> bool:
        return await self.get((event_id, user_id)) is not None
