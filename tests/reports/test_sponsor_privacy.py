"""Privacy mode: a sponsor of the event gets aggregates only, small groups (and the groups a published total
would give away) suppressed; with privacy mode off sponsors get 403, never personal data; developers get
the aggregate figures, not reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import openpyxl
from httpx import AsyncClient
from sqlalchemy import select

from stagevote.analytics.repository import AttendeeCounts, VoteCounts
from stagevote.analytics.service import Figures, present
from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.voting.models import Vote
from tests.conftest import Actor, Actors
from tests.factories import live_show, web_fan
from tests.http import ok, problem
from tests.reports.conftest import brand_of, seed_show, web_vote


def lone_hidden_cells(cells: dict[Any, int], shown: set[Any], *groupings: Callable[[Any], Any]) -> list[Any]:
    """Lines (all cells, and one per value of each grouping) that hold exactly one hidden cell."""
    lines: list[list[Any]] = [list(cells)]
    for grouping in groupings:
        groups: dict[Any, list[Any]] = defaultdict(list)
        for key in cells:
            groups[grouping(key)].append(key)
        lines.extend(groups.values())
    return [line for line in lines if sum(1 for key in line if key not in shown) == 1 and len(line) > 1]


async def test_a_sponsor_gets_votes_by_round_artist_and_hour_without_small_groups(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors
) -> None:
    seeded = await seed_show(client, runtime, admin)
    brand = await brand_of(client, actors, seeded.event_id, admin)
    r = await client.get(f"/events/{seeded.event_id}/report", params={"dataset": "votes"}, headers=brand.headers)
    rows = list(csv.reader(io.StringIO(r.text)))
    assert r.status_code == 200 and rows[0] == ["round", "round_name", "artist", "hour", "votes"]

    names = {v: k for k, v in seeded.show.artists.items()}
    async with unit_of_work(runtime.sessionmaker) as session:
        votes = (await session.scalars(select(Vote).where(Vote.event_id == seeded.event_id))).all()
    cells: dict[tuple[int, str, str], int] = defaultdict(int)
    for v in votes:
        hour = v.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:00:00Z")
        cells[(v.round, names[v.artist_id], hour)] += 1
    shown = {(int(r[0]), r[2].removeprefix("'"), r[3]): int(r[4]) for r in rows[1:]}
    assert all(cells[key] == n for key, n in shown.items())  # what is shown is exact
    assert all(n >= 5 for n in shown.values())  # no group of fewer than 5
    hidden = {key for key, n in cells.items() if key not in shown}
    assert {key for key, n in cells.items() if n < 5} <= hidden
    # round 1: Owls 12, Foxes 5, the third 3: the 3 is hidden, and Foxes' 5 with it (the round's total is
    # published); round 2: Owls 4, Foxes 8, the third 6: the 4 and, as its complement, the 6
    if len({key[2] for key in cells}) == 1:  # the seeding did not straddle an hour
        assert sorted((k[0], k[1], n) for k, n in shown.items()) == [
            (1, "Owls", 12),
            (2, "Foxes", 8),
            (3, "Foxes", 5),
            (3, "Owls", 11),
        ]
    assert lone_hidden_cells(cells, set(shown), lambda k: (k[0], k[1]), lambda k: k[0], lambda k: k[2]) == []
    assert all(not cell.startswith("=") for row in rows for cell in row)  # neutralised like any other cell

    book = openpyxl.load_workbook(
        io.BytesIO(
            (
                await client.get(f"/events/{seeded.event_id}/report", params={"format": "xlsx"}, headers=brand.headers)
            ).content
        ),
        read_only=True,
    )
    sheet_rows = [list(row) for row in book["Votes"].iter_rows(values_only=True)]
    assert [[str(c) for c in row] for row in sheet_rows] == rows
    round_one = [list(row) for row in book["Round 1 standings"].iter_rows(values_only=True)]
    assert [row[1:3] for row in round_one[1:]] == [["Owls", 12]]  # Foxes' 5 and the third's 3 are hidden


async def test_a_sponsor_gets_attendees_by_day_and_status_and_aggregate_figures(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors
) -> None:
    seeded = await seed_show(client, runtime, admin)
    brand = await brand_of(client, actors, seeded.event_id, admin)
    r = await client.get(f"/events/{seeded.event_id}/report", params={"dataset": "attendees"}, headers=brand.headers)
    assert r.headers["content-disposition"].endswith('-attendees.csv"')
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["day", "status", "attendees"]
    async with unit_of_work(runtime.sessionmaker) as session:
        people = (await session.scalars(select(Attendee).where(Attendee.event_id == seeded.event_id))).all()
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for a in people:
        status = (
            "erased"
            if a.erased_at
            else "opted_out"
            if a.opted_out
            else "confirmed"
            if a.confirmed_at
            else "unconfirmed"
        )
        cells[(a.joined_at.astimezone(dt.UTC).strftime("%Y-%m-%d"), status)] += 1
    shown = {(r[0], r[1]): int(r[2]) for r in rows[1:]}
    assert all(cells[key] == n >= 5 for key, n in shown.items())
    assert lone_hidden_cells(cells, set(shown), lambda k: k[0], lambda k: k[1]) == []
    if len({k[0] for k in cells}) == 1:  # confirmed 17, opted out 1, erased 2: two hidden, neither derivable
        assert list(shown.values()) == [17] and {k[1] for k in cells if k not in shown} == {"opted_out", "erased"}

    figures = ok(await client.get(f"/analytics/events/{seeded.event_id}", headers=brand.headers))
    assert figures["view"] == "aggregate"
    assert figures["attendees"] == {"joined": 20, "confirmed": 20, "optedOut": None}
    assert figures["votes"]["total"] == 54
    assert {r["round"]: r["votes"] for r in figures["votes"]["byRound"]} == {1: 20, 2: 18, 3: 16}
    numbers = [
        n
        for block in (figures["votes"]["byRound"], figures["votes"]["byArtist"], figures["votes"]["perMinute"])
        for n in (item["votes"] for item in block)
    ]
    numbers += [
        v for channel in ("sms", "email") for k, v in figures["messages"][channel].items() if k != "deliveryRate"
    ]
    assert all(n is None or n == 0 or n >= 5 for n in numbers)
    minutes = [m["votes"] for m in figures["votes"]["perMinute"]]
    assert minutes.count(None) != 1  # a lone hidden minute would be the total minus the others


async def test_a_report_where_every_group_is_small_is_its_header_alone(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls", "Foxes"))
    for artist in ("Owls", "Owls", "Foxes"):
        await web_vote(client, show, await web_fan(runtime, show.id), artist, 1)
    brand = await brand_of(client, actors, show.id, admin)
    for dataset, header in (("votes", "round,round_name,artist,hour,votes"), ("attendees", "day,status,attendees")):
        r = await client.get(f"/events/{show.id}/report", params={"dataset": dataset}, headers=brand.headers)
        assert r.status_code == 200 and r.text == header + "\r\n"
        book = openpyxl.load_workbook(
            io.BytesIO(
                (
                    await client.get(
                        f"/events/{show.id}/report",
                        params={"dataset": dataset, "format": "xlsx"},
                        headers=brand.headers,
                    )
                ).content
            ),
            read_only=True,
        )
        assert all(len(list(sheet.iter_rows())) == 1 for sheet in book.worksheets)  # headers only
    figures = ok(await client.get(f"/analytics/events/{show.id}", headers=brand.headers))
    assert figures["votes"]["total"] is None and figures["attendees"]["joined"] is None
    assert all(item["votes"] is None for item in figures["votes"]["byArtist"] + figures["votes"]["byRound"])


async def test_with_privacy_mode_off_sponsors_get_nothing_and_others_get_what_their_role_allows(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors
) -> None:
    show = await live_show(client, runtime, admin, privacyMode=False)
    sponsor = await brand_of(client, actors, show.id, admin)
    stranger = await actors.make("brand")
    developer = await actors.make("developer")
    key = ok(await client.post("/auth/api-keys", json={"name": "dash"}, headers=developer.headers), 201)["key"]
    report, analytics = f"/events/{show.id}/report", f"/analytics/events/{show.id}"
    stream = {"Accept": "text/event-stream"}
    for path in (report, analytics):
        assert problem(await client.get(path, headers=sponsor.headers), 403)["type"].endswith("privacy-mode-off")
        assert problem(await client.get(path, headers=stranger.headers), 403)["type"].endswith("not-a-sponsor")
        assert problem(await client.get(path, headers=(await actors.make("fan")).headers), 403)
        problem(await client.get(path), 401)
    assert problem(await client.get(analytics, headers=sponsor.headers | stream), 403)
    problem(await client.get(report, headers=developer.headers), 403)
    for caller in (developer.headers, {"Authorization": f"Bearer {key}"}):
        assert ok(await client.get(analytics, headers=caller))["view"] == "aggregate"
    assert ok(await client.get(analytics, headers=admin.headers))["view"] == "full"
    problem(await client.get(f"/events/{show.id}/report", params={"format": "pdf"}, headers=admin.headers), 422)
    problem(await client.get("/analytics/events/999999", headers=admin.headers), 404)


def test_attendee_counts_hide_a_small_remainder_too() -> None:
    def shown(joined: int, confirmed: int, opted_out: int) -> dict[str, int | None]:
        figures = present(
            Figures(1, {}, AttendeeCounts(joined, confirmed, opted_out), VoteCounts(), {}, utcnow()), "aggregate"
        )
        return figures.attendees.model_dump()

    assert shown(20, 18, 0) == {"joined": 20, "confirmed": None, "opted_out": 0}  # 2 unconfirmed = 20 - 18
    assert shown(20, 20, 7) == {"joined": 20, "confirmed": 20, "opted_out": 7}
    assert shown(3, 3, 0) == {"joined": None, "confirmed": None, "opted_out": None}
