"""Reports and analytics hold what the database holds: every vote and attendee row for the organizer, exact
figures, on a show with three rounds, web and SMS votes, opted-out and erased fans; XLSX read as a
spreadsheet program reads it; formula-like text neutralised; files named after the event."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from typing import Any

import openpyxl
from httpx import AsyncClient, Response
from sqlalchemy import func, select

from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.messaging.models import Message
from stagevote.voting.models import Vote
from tests.conftest import Actor
from tests.http import ok
from tests.reports.conftest import FORMULA_ARTIST, FORMULA_EMAIL, Seeded, seed_show

VOTE_COLUMNS = ["vote_id", "attendee_id", "round", "artist_id", "artist", "vote_code", "channel", "cast_at"]
ATTENDEE_COLUMNS = [
    "attendee_id",
    "phone_number",
    "email",
    "joined_at",
    "confirmed_at",
    "opted_out",
    "erased",
    "votes_cast",
]


def iso(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def report(client: AsyncClient, seeded: Seeded, headers: dict[str, str], **params: str) -> Response:
    return await client.get(f"/events/{seeded.event_id}/report", params=params, headers=headers)


def csv_rows(r: Response) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(r.text)))


def xlsx_sheets(r: Response) -> dict[str, list[list[Any]]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    return {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets}


async def expected_votes(runtime: Runtime, seeded: Seeded) -> list[list[str]]:
    names = {v: k for k, v in seeded.show.artists.items()}
    async with unit_of_work(runtime.sessionmaker) as session:
        votes = (await session.scalars(select(Vote).where(Vote.event_id == seeded.event_id).order_by(Vote.id))).all()
    shown = {FORMULA_ARTIST: "'" + FORMULA_ARTIST}
    return [
        [
            str(v.id),
            str(v.attendee_id),
            str(v.round),
            str(v.artist_id),
            shown.get(names[v.artist_id], names[v.artist_id]),
            seeded.show.codes[names[v.artist_id]],
            v.channel,
            iso(v.created_at),
        ]
        for v in votes
    ]


async def expected_attendees(runtime: Runtime, seeded: Seeded) -> list[list[str]]:
    async with unit_of_work(runtime.sessionmaker) as session:
        people = (
            await session.scalars(select(Attendee).where(Attendee.event_id == seeded.event_id).order_by(Attendee.id))
        ).all()
        cast = Counter((await session.scalars(select(Vote.attendee_id).where(Vote.event_id == seeded.event_id))).all())
    return [
        [
            str(a.id),
            a.phone_number or "",
            ("'" + a.email if a.email == FORMULA_EMAIL else a.email) if a.email else "",
            iso(a.joined_at),
            iso(a.confirmed_at),
            "true" if a.opted_out else "false",
            "true" if a.erased_at else "false",
            str(cast.get(a.id, 0)),
        ]
        for a in people
    ]


async def test_the_organizer_downloads_every_row_the_database_holds(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    seeded = await seed_show(client, runtime, admin)
    ok(await client.put(f"/events/{seeded.event_id}", json={"title": "RockFest 2026"}, headers=admin.headers))

    votes = await report(client, seeded, admin.headers, format="csv", dataset="votes")
    assert votes.headers["content-disposition"] == 'attachment; filename="rockfest-2026-votes.csv"'
    rows = csv_rows(votes)
    assert rows[0] == VOTE_COLUMNS
    assert rows[1:] == await expected_votes(runtime, seeded)
    assert len(rows) - 1 == 12 + 5 + 3 + 4 + 8 + 6 + 11 + 5
    assert {r[6] for r in rows[1:]} == {"web", "sms"}

    people = await report(client, seeded, admin.headers, format="csv", dataset="attendees")
    assert people.headers["content-disposition"] == 'attachment; filename="rockfest-2026-attendees.csv"'
    rows = csv_rows(people)
    assert rows[0] == ATTENDEE_COLUMNS
    assert rows[1:] == await expected_attendees(runtime, seeded)
    erased = [r for r in rows[1:] if r[6] == "true"]
    assert sorted(int(r[0]) for r in erased) == sorted(seeded.erased)
    assert all(r[1] == "" and r[2] == "" and int(r[7]) > 0 for r in erased)  # no data left, votes still counted
    assert sum(r[5] == "true" for r in rows[1:]) == 2


async def test_the_xlsx_holds_the_same_rows_and_the_standings_of_each_round(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    seeded = await seed_show(client, runtime, admin)
    r = await report(client, seeded, admin.headers, format="xlsx", dataset="votes")
    assert r.headers["content-disposition"].endswith('-votes.xlsx"')
    sheets = xlsx_sheets(r)
    assert list(sheets) == ["Votes", "Round 1 standings", "Round 2 standings", "Round 3 standings"]
    as_text = [[("" if c is None else str(c)) for c in row] for row in sheets["Votes"]]
    assert as_text[0] == VOTE_COLUMNS
    assert as_text[1:] == await expected_votes(runtime, seeded)
    assert all(isinstance(row[0], int) for row in sheets["Votes"][1:])  # numbers are numbers

    names = {v: k for k, v in seeded.show.artists.items()}
    async with unit_of_work(runtime.sessionmaker) as session:
        counted = select(Vote.round, Vote.artist_id, func.count()).where(Vote.event_id == seeded.event_id)
        by_round_artist = {(r, a): n for r, a, n in await session.execute(counted.group_by(Vote.round, Vote.artist_id))}
    for number in (1, 2, 3):
        table = sheets[f"Round {number} standings"]
        assert table[0] == ["rank", "artist", "votes", "share"]
        shown = {row[1].removeprefix("'"): row[2] for row in table[1:]}
        assert shown == {name: by_round_artist.get((number, artist), 0) for artist, name in names.items()}
        assert [row[2] for row in table[1:]] == sorted(shown.values(), reverse=True)
    assert [row[0] for row in sheets["Round 3 standings"][1:]] == [1, 2, 3]  # Owls 11, Foxes 5, the third 0

    people = xlsx_sheets(await report(client, seeded, admin.headers, format="xlsx", dataset="attendees"))
    as_text = [
        [("" if c is None else "true" if c is True else "false" if c is False else str(c)) for c in row]
        for row in people["Attendees"]
    ]
    assert as_text[0] == ATTENDEE_COLUMNS
    assert as_text[1:] == await expected_attendees(runtime, seeded)


async def test_formula_like_cells_are_neutralised_in_csv_and_xlsx(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    seeded = await seed_show(client, runtime, admin)
    votes = csv_rows(await report(client, seeded, admin.headers, format="csv", dataset="votes"))
    people = csv_rows(await report(client, seeded, admin.headers, format="csv", dataset="attendees"))
    sheets = xlsx_sheets(await report(client, seeded, admin.headers, format="xlsx", dataset="votes"))
    sheets |= xlsx_sheets(await report(client, seeded, admin.headers, format="xlsx", dataset="attendees"))
    cells = [c for row in votes + people for c in row] + [
        c for rows in sheets.values() for row in rows for c in row if isinstance(c, str)
    ]
    assert "'" + FORMULA_ARTIST in cells and "'" + FORMULA_EMAIL in cells
    dangerous = [
        c for c in cells if c.startswith(("=", "@", "\t", "\r")) or (c.startswith(("+", "-")) and not c[1:].isdigit())
    ]
    assert dangerous == []
    assert set(seeded.phones) & set(cells)  # a phone number (E.164) is a plain number, left as it is
    book = openpyxl.load_workbook(io.BytesIO((await report(client, seeded, admin.headers, format="xlsx")).content))
    assert all(cell.data_type != "f" for sheet in book.worksheets for row in sheet.iter_rows() for cell in row)


async def test_analytics_figures_equal_the_database(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    seeded = await seed_show(client, runtime, admin)
    figures = ok(await client.get(f"/analytics/events/{seeded.event_id}", headers=admin.headers))
    event_id = seeded.event_id
    async with unit_of_work(runtime.sessionmaker) as session:
        people = (await session.scalars(select(Attendee).where(Attendee.event_id == event_id))).all()
        votes = (await session.scalars(select(Vote).where(Vote.event_id == event_id))).all()
        messages = (await session.scalars(select(Message).where(Message.event_id == event_id))).all()
    assert figures["eventId"] == event_id and figures["view"] == "full"
    assert figures["attendees"] == {
        "joined": len(people),
        "confirmed": sum(a.confirmed_at is not None for a in people),
        "optedOut": sum(a.opted_out for a in people),
    }
    assert figures["attendees"] == {"joined": 20, "confirmed": 20, "optedOut": 2}
    by_round = Counter(v.round for v in votes)
    by_artist = Counter(v.artist_id for v in votes)
    per_minute = Counter(int(v.created_at.timestamp()) // 60 for v in votes)
    assert figures["votes"]["total"] == len(votes) == 54
    assert {r["round"]: r["votes"] for r in figures["votes"]["byRound"]} == dict(by_round) == {1: 20, 2: 18, 3: 16}
    assert [r["name"] for r in figures["votes"]["byRound"]] == ["Heats", "Semis", "Final"]
    assert {a["artistId"]: a["votes"] for a in figures["votes"]["byArtist"]} == dict(by_artist)
    assert {a["name"] for a in figures["votes"]["byArtist"]} == set(seeded.show.artists)
    minutes = {
        int(dt.datetime.fromisoformat(m["minute"]).timestamp()) // 60: m["votes"] for m in figures["votes"]["perMinute"]
    }
    assert minutes == dict(per_minute)
    for channel in ("sms", "email"):
        statuses = Counter(m.status for m in messages if m.channel == channel)
        shown = figures["messages"][channel]
        assert {s: shown[s] for s in statuses} == dict(statuses)
        assert shown["total"] == sum(statuses.values())
    assert figures["messages"]["sms"]["total"] > 0
    sms = Counter(m.status for m in messages if m.channel == "sms")
    reached = sms["sent"] + sms["delivered"]
    rate = reached / (reached + sms["undelivered"] + sms["failed"])
    assert figures["messages"]["sms"]["deliveryRate"] == round(rate, 4)
