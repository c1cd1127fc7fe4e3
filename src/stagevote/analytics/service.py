"""The rules of analytics: who sees which view of an event's figures, and the figures kept live per process.

Views: an admin sees the exact figures (`full`). A brand linked to the event as its sponsor sees the
privacy-mode view (`aggregate`): counts only, groups of fewer than 5 hidden along with the cells that
would reveal them (`core.suppression`); with `voteConfig.privacyMode: false` sponsors see nothing (403),
never personal data. A developer (or a developer's API key) sees the same aggregate view of any event it
can see. Nobody else gets in (403).

Figures are three SQL aggregates (attendees, votes, messages: one statement each), computed at most once
a second per event and process however many dashboards ask (`LiveFigures`, with one computation in
flight at a time). Streams wait on the same object: a change of votes, attendees or messages in this
process (signals) or in another (relayed on the bus, coalesced to one publish a second per event) wakes
them, and each sends a frame at most once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.analytics.repository import MINUTE, AnalyticsRepository, AttendeeCounts, VoteCounts
from stagevote.analytics.schemas import (
    AnalyticsRead,
    ArtistVotes,
    AttendeeFigures,
    ChannelFigures,
    MessageFigures,
    MinuteVotes,
    RoundVotes,
    View,
    VoteFigures,
)
from stagevote.attendees import service as attendees_service
from stagevote.auth.models import Role
from stagevote.auth.principal import Principal
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.errors import Forbidden, NotFound
from stagevote.core.runtime import Runtime
from stagevote.core.suppression import small_or_none, suppress_line, suppressed
from stagevote.events import service as events_service
from stagevote.events.models import Event
from stagevote.messaging import outbox
from stagevote.voting import service as voting_service

log = structlog.get_logger(__name__)

CACHE_SECONDS = 1.0  # figures are recomputed at most this often per event and process
FRAME_SECONDS = 1.0  # a stream sends at most one frame this often
ANALYTICS_CHANGED = "analytics.changed"  # bus (every instance): {eventId, origin}
STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed")
_EXTENSION = "analytics"


# --- who sees what ---------------------------------------------------------------------------------


async def view_for(
    *, session: AsyncSession, principal: Principal, event_id: int, developers: bool = True
) -> tuple[Event, View]:
    """The event and the view `principal` gets of its figures: `full` (admin) or `aggregate` (the event's
    sponsor in privacy mode; a developer, unless `developers` is False). 404 an event this caller cannot
    see · 403 anyone else, a brand that does not sponsor the event, or a sponsor while privacy mode is off."""
    event = await events_service.get_event(session=session, principal=principal, event_id=event_id)
    if principal.is_admin:
        return event, "full"
    if principal.role is Role.BRAND:
        if not await events_service.is_sponsor(session=session, event_id=event.id, user_id=principal.user_id):
            raise Forbidden("Only the sponsors of this event see its figures.", slug="not-a-sponsor")
        if not events_service.vote_config_of(event).privacy_mode:
            raise Forbidden(
                "The organizer turned privacy mode off for this event, so sponsors see none of its data.",
                slug="privacy-mode-off",
            )
        return event, "aggregate"
    if principal.role is Role.DEVELOPER and developers:
        return event, "aggregate"
    raise Forbidden("Event figures are for the organizer, the event's sponsors and developers.")


# --- the figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The exact figures of an event at `generated_at`."""

    event_id: int
    round_names: dict[int, str]
    attendees: AttendeeCounts
    votes: VoteCounts
    messages: dict[tuple[str, str], int]
    generated_at: dt.datetime


async def compute(*, session: AsyncSession, event_id: int) -> Figures:
    """The figures from the database: one aggregate statement per block."""
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None:
        raise NotFound(f"No event {event_id}.")
    names = {r.number: r.name for r in events_service.vote_config_of(event).rounds}
    analytics = AnalyticsRepository(session)
    return Figures(
        event_id=event_id,
        round_names=names,
        attendees=await analytics.attendee_counts(event_id),
        votes=await analytics.vote_counts(event_id),
        messages=await analytics.message_counts(event_id),
        generated_at=utcnow(),
    )


def _delivery_rate(by_status: dict[str, int | None]) -> float | None:
    ended = [by_status.get(s) for s in ("sent", "delivered", "undelivered", "failed")]
    if any(n is None for n in ended):
        return None
    done = sum(n or 0 for n in ended)
    reached = (by_status.get("sent") or 0) + (by_status.get("delivered") or 0)
    return round(reached / done, 4) if done else None


def _channel(counts: dict[tuple[str, str], int], channel: str, aggregate: bool) -> ChannelFigures:
    by_status = {s: counts.get((channel, s), 0) for s in STATUSES}
    total = sum(by_status.values())
    shown: dict[str, int | None] = dict(by_status)
    shown_total: int | None = total
    if aggregate:
        shown = dict(suppress_line(by_status))
        shown_total = small_or_none(total)
        if shown_total is None:
            shown = dict.fromkeys(by_status)
    rate = _delivery_rate(shown)
    if aggregate and rate is not None and sum(by_status[s] for s in ("sent", "delivered", "undelivered", "failed")) < 5:
        rate = None
    return ChannelFigures(**shown, total=shown_total, delivery_rate=rate)


def present(figures: Figures, view: View) -> AnalyticsRead:
    """The figures as `view` shows them: exact, or with small groups (and their complements) hidden."""
    aggregate = view == "aggregate"
    votes = figures.votes
    total: int | None = votes.total
    by_round: dict[int, int | None] = dict(votes.by_round)
    by_artist: dict[int, int | None] = dict(votes.by_artist)
    per_minute: dict[int, int | None] = dict(votes.per_minute)
    attendees = figures.attendees
    people = AttendeeFigures(joined=attendees.joined, confirmed=attendees.confirmed, opted_out=attendees.opted_out)
    if aggregate:
        total = small_or_none(votes.total)
        by_round, by_artist, per_minute = (
            _hide_line(votes.by_round, total is None),
            _hide_line(votes.by_artist, total is None),
            _hide_line(votes.per_minute, total is None),
        )
        people = _hide_people(attendees)
    return AnalyticsRead(
        event_id=figures.event_id,
        view=view,
        attendees=people,
        votes=VoteFigures(
            total=total,
            by_round=[
                RoundVotes(round=n, name=figures.round_names.get(n, f"Round {n}"), votes=v)
                for n, v in sorted(by_round.items())
            ],
            by_artist=[
                ArtistVotes(artist_id=a, name=votes.artist_names.get(a, ""), votes=v)
                for a, v in sorted(by_artist.items(), key=lambda item: (-(votes.by_artist[item[0]]), item[0]))
            ],
            per_minute=[
                MinuteVotes(minute=dt.datetime.fromtimestamp(m * MINUTE, dt.UTC), votes=v)
                for m, v in sorted(per_minute.items())
            ],
        ),
        messages=MessageFigures(
            sms=_channel(figures.messages, "sms", aggregate), email=_channel(figures.messages, "email", aggregate)
        ),
        generated_at=figures.generated_at,
    )


def _hide_people(counts: AttendeeCounts) -> AttendeeFigures:
    """Attendee counts without small groups: `joined` splits into confirmed and not, and into opted out and
    not; where one side of a split is small, the other is hidden too (`joined` minus it would give it away)."""
    joined = small_or_none(counts.joined)
    if joined is None:
        return AttendeeFigures(joined=None, confirmed=None, opted_out=None)
    confirmed = suppress_line({"yes": counts.confirmed, "no": counts.joined - counts.confirmed})["yes"]
    opted_out = suppress_line({"yes": counts.opted_out, "no": counts.joined - counts.opted_out})["yes"]
    return AttendeeFigures(joined=joined, confirmed=confirmed, opted_out=opted_out)


def _hide_line(counts: dict[int, int], total_hidden: bool) -> dict[int, int | None]:
    """A line of counts that add up to the total: all hidden when the total is, else suppressed as a line."""
    if total_hidden:
        return dict.fromkeys(counts)
    hidden = suppressed(counts, [list(counts)])
    return {key: None if key in hidden else n for key, n in counts.items()}


# --- live figures, per process ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    at: float
    version: int
    figures: Figures


class LiveFigures:
    """Per process: each event's figures (computed at most once a second, one computation at a time), a
    version per event that every change moves on, and the streams waiting for the next one."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._origin = uuid.uuid4().hex
        self._entries: dict[int, _Entry] = {}
        self._versions: dict[int, int] = {}
        self._changed: dict[int, asyncio.Event] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._relayed_at: dict[int | None, float] = {}
        self._relay_pending: set[int | None] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def version(self, event_id: int) -> int:
        return self._versions.get(event_id, 0)

    async def figures(
        self, event_id: int, *, at_least: int | None = None, session: AsyncSession | None = None
    ) -> Figures:
        """The event's figures: no older than a second, or (`at_least`) computed since that version. Computed in
        `session` when given (a request's: on SQLite a second transaction would wait for its lock), else in a
        unit of work of their own."""
        entry = self._fresh(event_id, at_least)
        if entry is not None:
            return entry.figures
        async with self._locks.setdefault(event_id, asyncio.Lock()):
            entry = self._fresh(event_id, at_least)  # another caller computed them while this one waited
            if entry is not None:
                return entry.figures
            version = self.version(event_id)
            if session is not None:
                figures = await compute(session=session, event_id=event_id)
            else:
                async with unit_of_work(self._runtime.sessionmaker) as own:
                    figures = await compute(session=own, event_id=event_id)
            self._entries[event_id] = _Entry(time.monotonic(), version, figures)
            return figures

    def _fresh(self, event_id: int, at_least: int | None) -> _Entry | None:
        entry = self._entries.get(event_id)
        if entry is None:
            return None
        if at_least is not None:
            return entry if entry.version >= at_least else None
        return entry if time.monotonic() - entry.at < CACHE_SECONDS else None

    async def wait_for_change(self, event_id: int, seen: int) -> None:
        """Return once the event's version has moved past `seen`."""
        while self.version(event_id) <= seen:
            changed = self._changed.setdefault(event_id, asyncio.Event())
            await changed.wait()

    def moved(self, event_id: int | None) -> None:
        """Something of the event changed (None: of any event): move its version on, wake its streams."""
        keys = list(self._versions.keys() | self._changed.keys()) if event_id is None else [event_id]
        for key in keys:
            self._versions[key] = self.version(key) + 1
            changed = self._changed.pop(key, None)
            if changed is not None:
                changed.set()

    def changed_here(self, event_id: int | None) -> None:
        """A change made by this process: wake the streams here, and tell the other instances (coalesced)."""
        self.moved(event_id)
        if self._runtime.redis is not None:
            self._relay(event_id)

    def _relay(self, event_id: int | None) -> None:
        if event_id in self._relay_pending:
            return
        self._relay_pending.add(event_id)
        delay = max(0.0, self._relayed_at.get(event_id, -FRAME_SECONDS) + FRAME_SECONDS - time.monotonic())
        task = asyncio.create_task(self._publish_later(event_id, delay), name="stagevote-analytics-relay")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_later(self, event_id: int | None, delay: float) -> None:
        await asyncio.sleep(delay)
        self._relay_pending.discard(event_id)
        self._relayed_at[event_id] = time.monotonic()
        try:
            await self._runtime.bus.publish(ANALYTICS_CHANGED, {"eventId": event_id, "origin": self._origin})
        except Exception:  # the bus is a hint: the other instances' figures are at most a change behind
            log.warning("analytics_relay_failed", event_id=event_id, exc_info=True)

    async def heard(self, payload: dict[str, Any]) -> None:
        """A change relayed by another instance."""
        if payload.get("origin") == self._origin:
            return
        event_id = payload.get("eventId")
        self.moved(int(event_id) if event_id is not None else None)

    async def stream(self, event_id: int, view: View) -> AsyncIterator[AnalyticsRead]:
        """The figures at once, then after each change, at most once a second; ends when cancelled."""
        while True:
            version = self.version(event_id)
            figures = await self.figures(event_id, at_least=version)
            yield present(figures, view)
            sent = time.monotonic()
            await self.wait_for_change(event_id, version)
            await asyncio.sleep(max(0.0, sent + FRAME_SECONDS - time.monotonic()))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def live_figures(runtime: Runtime) -> LiveFigures:
    live: LiveFigures = runtime.extensions[_EXTENSION]
    return live


async def figures_for(*, session: AsyncSession, runtime: Runtime, event_id: int, view: View) -> AnalyticsRead:
    """The event's figures as `view` shows them, at most a second old."""
    return present(await live_figures(runtime).figures(event_id, session=session), view)


def install(runtime: Runtime) -> None:
    """Keep live figures in this process: hear votes, attendees and messages change, here and elsewhere."""
    live = LiveFigures(runtime)
    runtime.extensions[_EXTENSION] = live

    async def changed(payload: dict[str, Any]) -> None:
        event_id = payload.get("eventId")
        live.changed_here(int(event_id) if event_id is not None else None)

    for topic in (voting_service.VOTES_CHANGED, attendees_service.ATTENDEES_CHANGED, outbox.MESSAGES_CHANGED):
        runtime.signals.subscribe(topic, changed)
    runtime.bus.subscribe(ANALYTICS_CHANGED, live.heard)


async def close(runtime: Runtime) -> None:
    live = runtime.extensions.get(_EXTENSION)
    if isinstance(live, LiveFigures):
        await live.close()
