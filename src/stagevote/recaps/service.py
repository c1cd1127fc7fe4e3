"""The rules of recap pages: rendered from the event's final figures once it closes, stored, announced once.

The page is static and self-contained (Jinja2, autoescaped; CSS inline; no script): the event, the winner
and the standings (with bars) of each round, turnout, and the votes per minute as an inline SVG chart. It
holds no phone number, e-mail or attendee id. Standings are left out when the organizer keeps the
leaderboard `hidden`.

It is rendered by itself once an event closes (after the close has committed, in a unit of work of its
own: a failure is logged and never undoes the close), and again on `POST /events/{id}/recap`. The first
render sends the RECAP message, with the page's link, to each attendee whose ballot counts
(`messaging.journey.send_recap`, whose dedupe keys make that once per attendee whatever happens).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.analytics import service as analytics_service
from stagevote.core.db import after_commit, unit_of_work, utcnow
from stagevote.core.errors import Conflict, NotFound, ProblemError
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.models import Event, EventStatus
from stagevote.messaging import journey
from stagevote.recaps.models import Recap
from stagevote.recaps.repository import RecapRepository
from stagevote.recaps.storage import storage_for
from stagevote.reports.service import slug
from stagevote.voting import seals as vote_seals
from stagevote.voting.context import vote_context

log = structlog.get_logger(__name__)


class StorageUnavailable(ProblemError):
    status, slug = 503, "recap-storage-unavailable"


RECAPPABLE = frozenset({EventStatus.CLOSED.value, EventStatus.ARCHIVED.value})
CHART_WIDTH, CHART_HEIGHT, MOST_BARS = 720, 160, 240
MINUTE = 60  # seconds; the per-minute figures count minutes since 1970 (UTC)
_templates = Environment(
    loader=PackageLoader("stagevote.recaps", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Standing:
    rank: int
    name: str
    votes: int
    percent: float  # of the round's votes
    bar: float  # width of the bar, 0-100, relative to the round's best


@dataclass(frozen=True)
class RoundRecap:
    number: int
    name: str
    total: int
    winners: list[str]
    standings: list[Standing]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


def _standings(counts: dict[int, int], names: dict[int, str]) -> list[Standing]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], names.get(item[0], "").lower(), item[0]))
    total = sum(counts.values())
    best = ordered[0][1] if ordered else 0
    rows: list[Standing] = []
    for position, (artist_id, votes) in enumerate(ordered, start=1):
        rank = rows[-1].rank if rows and rows[-1].votes == votes else position
        rows.append(
            Standing(
                rank=rank,
                name=names.get(artist_id, ""),
                votes=votes,
                percent=round(100 * votes / total, 1) if total else 0.0,
                bar=round(100 * votes / best, 1) if best else 0.0,
            )
        )
    return rows


def _chart(per_minute: dict[int, int]) -> tuple[list[Bar], int, int]:
    """Bars of votes per minute from the first vote to the last (several minutes a bar past `MOST_BARS`);
    the bars, the minutes a bar stands for, and the tallest bar's votes."""
    if not per_minute:
        return [], 1, 0
    first, last = min(per_minute), max(per_minute)
    span = last - first + 1
    step = max(1, math.ceil(span / MOST_BARS))
    buckets = [0] * math.ceil(span / step)
    for minute, votes in per_minute.items():
        buckets[(minute - first) // step] += votes
    tallest = max(buckets) or 1
    width = CHART_WIDTH / len(buckets)
    bars = []
    for index, votes in enumerate(buckets):
        height = CHART_HEIGHT * votes / tallest
        start = dt.datetime.fromtimestamp((first + index * step) * MINUTE, dt.UTC)
        bars.append(
            Bar(
                x=round(index * width, 2),
                y=round(CHART_HEIGHT - height, 2),
                width=round(max(width - 1, 0.5), 2),
                height=round(height, 2),
                label=f"{start:%H:%M} UTC: {votes} vote{'s' if votes != 1 else ''}",
            )
        )
    return bars, step, tallest


def _clock(minute: int) -> str:
    return f"{dt.datetime.fromtimestamp(minute * MINUTE, dt.UTC):%H:%M}"


async def render(*, session: AsyncSession, runtime: Runtime, event: Event) -> str:
    """The recap page of the event, from its figures now."""
    figures = await analytics_service.compute(session=session, event_id=event.id)
    context = await vote_context(session=session, runtime=runtime, event_id=event.id)
    config = events_service.vote_config_of(event)
    names = dict(figures.votes.artist_names)
    if context is not None:
        names |= {p.artist_id: p.name for p in context.performers.values()}
    rounds: list[RoundRecap] = []
    for round_config in config.rounds:
        number = round_config.number
        candidates = [p.artist_id for p in context.candidates(number)] if context is not None else []
        counts = dict.fromkeys(candidates, 0) | {
            a: n for (r, a), n in figures.votes.by_round_artist.items() if r == number
        }
        standings = _standings(counts, names)
        winners = [s.name for s in standings if s.rank == 1 and s.votes > 0]
        rounds.append(RoundRecap(number, round_config.name, sum(counts.values()), winners, standings))
    bars, minutes_per_bar, tallest = _chart(figures.votes.per_minute)
    attendees = figures.attendees
    values: dict[str, Any] = {
        "event": event,
        "rounds": rounds,
        "show_standings": config.leaderboard_visibility != "hidden",
        "turnout": {
            "attendees": attendees.joined,
            "confirmed": attendees.confirmed,
            "voters": figures.votes.voters,
            "votes": figures.votes.total,
            "share": round(100 * figures.votes.voters / attendees.joined) if attendees.joined else 0,
        },
        "chart": {
            "bars": bars,
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "minutes_per_bar": minutes_per_bar,
            "tallest": tallest,
            "first": _clock(min(figures.votes.per_minute, default=0)),
            "last": _clock(max(figures.votes.per_minute, default=0)),
        },
        "generated_at": figures.generated_at,
        # each closed round's Merkle root (voting/seals.py): a fan checks a receipt's proof against it
        "seals": await vote_seals.seal_roots(session=session, event_id=event.id),
    }
    return _templates.get_template("recap.html").render(**values)


def page_name(event: Event) -> str:
    return f"{event.id}-{slug(event.title) or 'recap'}.html"


async def publish(*, session: AsyncSession, runtime: Runtime, event_id: int) -> Recap:
    """Render the event's recap page and store it; the first time, send the RECAP message. 404 unknown
    event · 409 an event that has not closed · 503 the storage refused the page."""
    event = await events_service.get_event_unchecked(session=session, event_id=event_id)
    if event is None or event.status == EventStatus.DRAFT.value:
        raise NotFound(f"No event {event_id}.")
    if event.status not in RECAPPABLE:
        raise Conflict(f"The event is {event.status}; its recap follows its close.", slug="event-not-closed")
    page = await render(session=session, runtime=runtime, event=event)
    name = page_name(event)
    try:
        url = await storage_for(runtime.settings).put(name, page.encode())
    except Exception as exc:  # the folder or the bucket refused: the caller may try again later
        log.warning("recap_storage_failed", event_id=event.id, exc_info=True)
        raise StorageUnavailable(
            "The recap page could not be stored right now; try again in a moment.", headers={"Retry-After": "30"}
        ) from exc
    recaps = RecapRepository(session)
    first = await recaps.record(event_id=event.id, url=url, storage_key=name, at=utcnow())
    if first:
        await journey.send_recap(session, runtime, event.id, url)
    recap = await recaps.get(event.id)
    if recap is None:  # pragma: no cover - written just above in this unit of work
        raise NotFound(f"No recap for event {event_id}.")
    return recap


async def recap_url(*, session: AsyncSession, event_id: int) -> str:
    """The URL of the event's recap page. 404 unknown (or draft) event, or no recap rendered yet."""
    await events_service.get_event(session=session, principal=None, event_id=event_id)
    recap = await RecapRepository(session).get(event_id)
    if recap is None:
        raise NotFound(f"Event {event_id} has no recap page yet; it is rendered when the event closes.")
    return recap.url


def install(runtime: Runtime) -> None:
    """Render the recap page by itself once an event's close has committed."""

    async def event_closed(session: AsyncSession, payload: dict[str, Any]) -> None:
        event_id = int(payload["eventId"])

        async def render_recap() -> None:
            try:
                async with unit_of_work(runtime.sessionmaker) as own:
                    await publish(session=own, runtime=runtime, event_id=event_id)
            except Exception:  # the event is closed all the same; POST /events/{id}/recap tries again
                log.exception("recap_render_failed", event_id=event_id)

        after_commit(session, render_recap)

    runtime.hooks.subscribe(events_service.EVENT_CLOSED, event_closed)
