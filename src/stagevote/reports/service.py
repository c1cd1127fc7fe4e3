"""The rules of reports: who downloads what, in which columns, streamed in constant memory.

An admin downloads rows: every vote (id, attendee, round, artist, vote code, channel, time), every
attendee (id, phone, e-mail, joined, confirmed, opted out, erased, votes cast), or the consent record
(`consent`: every opt-in and opt-out of the event's attendees, with its channel, the words texted or the
terms version, and its time; erased ones without number or words). The consent record is for admins only:
a sponsor gets 403 whatever the privacy mode. A sponsor of the event, in
privacy mode, downloads aggregates only: votes by round, artist and hour, or attendees by day and status,
with groups of fewer than 5 left out, and with them any group a published total would give away
(`core.suppression`); a report where every group is left out is its header alone. Anyone else: 403
(`analytics.service.view_for`, without developers).

CSV is written with the standard `csv` module, a chunk of rows at a time, as the rows come from the
database. XLSX is written by XlsxWriter in `constant_memory` mode into a temporary file (rows flushed as
they are written; a sheet holds at most 1,048,575 rows, then the rows go on in the next), with a standings
sheet per round, then streamed out and deleted. Text cells that begin with `=`, `+`, `-`, `@`, a tab or a
carriage return get a leading `'`, so no spreadsheet takes them for a formula (a plain number such as a
phone number in E.164 is left as it is: it cannot be a formula).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import xlsxwriter
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.analytics import service as analytics_service
from stagevote.analytics.schemas import View
from stagevote.attendees.models import Attendee, Consent
from stagevote.audit import service as audit
from stagevote.audit.service import Caller
from stagevote.auth.principal import Principal
from stagevote.core.db import unit_of_work
from stagevote.core.errors import Forbidden
from stagevote.core.runtime import Runtime
from stagevote.core.suppression import suppressed
from stagevote.events import service as events_service
from stagevote.events.models import Event
from stagevote.reports.repository import DAY, HOUR, AnyRow, ReportRepository
from stagevote.voting.context import vote_context
from stagevote.voting.models import Vote

Dataset = Literal["attendees", "votes", "consent"]
Format = Literal["csv", "xlsx"]
CHUNK = 10_000  # rows read from the database, and written, at a time
MAX_SHEET_ROWS = 1_048_576  # XLSX's limit, the header row included
COLUMNS: dict[tuple[View, Dataset], list[str]] = {
    ("full", "votes"): ["vote_id", "attendee_id", "round", "artist_id", "artist", "vote_code", "channel", "cast_at"],
    ("full", "attendees"): [
        "attendee_id",
        "phone_number",
        "email",
        "joined_at",
        "confirmed_at",
        "opted_out",
        "erased",
        "votes_cast",
    ],
    ("full", "consent"): [
        "consent_id",
        "attendee_id",
        "phone_number",
        "kind",
        "channel",
        "words",
        "terms_version",
        "at",
    ],
    ("aggregate", "votes"): ["round", "round_name", "artist", "hour", "votes"],
    ("aggregate", "attendees"): ["day", "status", "attendees"],
}
STANDINGS_COLUMNS = ["rank", "artist", "votes", "share"]
MEDIA_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def neutralise(value: str) -> str:
    """A text cell no spreadsheet reads as a formula: one that begins with = + - @ tab or CR gets a leading
    `'` (OWASP's advice), unless it is a plain number."""
    if value.startswith(_FORMULA_STARTS) and _PLAIN_NUMBER.fullmatch(value) is None:
        return "'" + value
    return value


def _text(value: str | None) -> str:
    return "" if value is None else neutralise(value)


def slug(text: str) -> str:
    """`RockFest 2026!` → `rockfest-2026`: a file name anyone's system accepts."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60]


@dataclass(frozen=True)
class Report:
    """A report to produce: whose view of which dataset of which event, in which format."""

    event: Event
    view: View
    dataset: Dataset
    format: Format

    @property
    def filename(self) -> str:
        name = slug(self.event.title) or slug(self.event.keyword) or f"event-{self.event.id}"
        return f"{name}-{self.dataset}.{self.format}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def columns(self) -> list[str]:
        return COLUMNS[(self.view, self.dataset)]


async def plan(
    *, session: AsyncSession, principal: Principal, caller: Caller, event_id: int, dataset: Dataset, format: Format
) -> Report:
    """What `principal` may download: rows (admin) or aggregates (the event's sponsor in privacy mode).
    404 an event this caller cannot see · 403 anyone else, or a sponsor while privacy mode is off.
    The download is recorded in the audit log (`report.exported`), in this unit of work."""
    event, view = await analytics_service.view_for(
        session=session, principal=principal, event_id=event_id, developers=False
    )
    if dataset == "consent" and view != "full":
        raise Forbidden("The consent record is for the event's admins only.")
    await audit.record_by(
        session,
        caller,
        action="report.exported",
        target=f"event:{event.id}",
        changes={"dataset": dataset, "format": format, "view": view},
        event_id=event.id,
    )
    return Report(event=event, view=view, dataset=dataset, format=format)


# --- rows ------------------------------------------------------------------------------------------

Cells = Sequence[Any]


async def _chunks(runtime: Runtime, report: Report) -> AsyncIterator[list[Cells]]:
    """The report's rows, a chunk at a time, each row as the cells of its columns."""
    if report.view == "aggregate":
        async with unit_of_work(runtime.sessionmaker) as session:
            rows = await _aggregate_rows(session, report)
        for start in range(0, len(rows), CHUNK):
            yield rows[start : start + CHUNK]
        return
    async with unit_of_work(runtime.sessionmaker) as session:
        repository = ReportRepository(session)
        if report.dataset == "votes":
            artists = {
                a: (_text(name), _text(code))
                for a, (name, code) in (await repository.artists_of_event(report.event.id)).items()
            }
            statement, key, shape = repository.votes_statement(report.event.id), Vote.id, _vote_shape(artists)
        elif report.dataset == "consent":
            statement, key, shape = repository.consents_statement(report.event.id), Consent.id, _consent_shape
        else:
            statement, key, shape = repository.attendees_statement(report.event.id), Attendee.id, _attendee_shape
    if runtime.settings.uses_postgresql:  # one snapshot, read through a server-side cursor
        async with unit_of_work(runtime.sessionmaker) as session:
            async for partition in ReportRepository(session).stream(statement, chunk=CHUNK):
                yield [shape(row) for row in partition]
        return
    after = 0
    while True:  # SQLite: key ranges, each read in its own short transaction
        async with unit_of_work(runtime.sessionmaker) as session:
            partition = await ReportRepository(session).chunk_after(statement, key=key, after=after, chunk=CHUNK)
        if not partition:
            return
        after = int(partition[-1][0])
        yield [shape(row) for row in partition]


def _vote_shape(artists: dict[int, tuple[str, str]]) -> Callable[[AnyRow], Cells]:
    def shape(row: AnyRow) -> Cells:
        vote_id, attendee_id, number, artist_id, channel, cast_at = row
        name, code = artists.get(artist_id, ("", ""))
        return (vote_id, attendee_id, number, artist_id, name, code, channel, cast_at)

    return shape


def _attendee_shape(row: AnyRow) -> Cells:
    attendee_id, phone, email, joined_at, confirmed_at, opted_out, erased, votes = row
    return (
        attendee_id,
        _text(phone),
        _text(email),
        joined_at,
        confirmed_at or "",
        bool(opted_out),
        bool(erased),
        votes,
    )


def _consent_shape(row: AnyRow) -> Cells:
    consent_id, attendee_id, phone, kind, channel, words, terms_version, at = row
    return (consent_id, attendee_id or "", _text(phone), kind, channel, _text(words), _text(terms_version), at)


def _hour(bucket: int) -> str:
    return dt.datetime.fromtimestamp(bucket * HOUR, dt.UTC).strftime("%Y-%m-%dT%H:00:00Z")


def _day(bucket: int) -> str:
    return dt.datetime.fromtimestamp(bucket * DAY, dt.UTC).strftime("%Y-%m-%d")


async def _aggregate_rows(session: AsyncSession, report: Report) -> list[Cells]:
    """The privacy-mode rows: groups of 5 or more that no published total gives away, in order."""
    repository = ReportRepository(session)
    event_id = report.event.id
    if report.dataset == "attendees":
        by_day_status = await repository.attendees_by_day_status(event_id)
        cells = {(day, status): n for day, status, n in by_day_status}
        hidden = suppressed(cells, _lines(cells, lambda k: k[0], lambda k: k[1]))
        return [(_day(day), status, n) for (day, status), n in cells.items() if (day, status) not in hidden]
    artists = await repository.artists_of_event(event_id)
    rounds = {r.number: r.name for r in events_service.vote_config_of(report.event).rounds}
    counts = {(r, a, h): n for r, a, h, n in await repository.votes_by_round_artist_hour(event_id)}
    # published totals: an artist's votes in a round (the leaderboard), a round's, the event's, an hour's
    lines = _lines(counts, lambda k: (k[0], k[1]), lambda k: k[0], lambda k: k[2])
    hidden = suppressed(counts, lines)
    return [
        (number, _text(rounds.get(number, f"Round {number}")), _text(artists.get(artist, ("", ""))[0]), _hour(hour), n)
        for (number, artist, hour), n in counts.items()
        if (number, artist, hour) not in hidden
    ]


def _lines(cells: dict[Any, int], *groupings: Callable[[Any], Any]) -> list[list[Any]]:
    """The groups of cells whose totals are published: one per value of each grouping, and all of them."""
    lines: list[list[Any]] = [list(cells)]
    for grouping in groupings:
        groups: dict[Any, list[Any]] = {}
        for key in cells:
            groups.setdefault(grouping(key), []).append(key)
        lines.extend(groups.values())
    return lines


# --- standings, per round ---------------------------------------------------------------------------


async def _standings(runtime: Runtime, report: Report) -> list[tuple[str, list[Cells]]]:
    """(sheet title, rows of rank, artist, votes, share) per round; in the aggregate view, artists with
    fewer than 5 votes (and the complement a round total would give away), or none, are left out."""
    async with unit_of_work(runtime.sessionmaker) as session:
        counts = await ReportRepository(session).votes_by_round_artist(report.event.id)
        artists = await ReportRepository(session).artists_of_event(report.event.id)
        context = await vote_context(session=session, runtime=runtime, event_id=report.event.id)
    sheets: list[tuple[str, list[Cells]]] = []
    for round_config in events_service.vote_config_of(report.event).rounds:
        number = round_config.number
        candidates = [p.artist_id for p in context.candidates(number)] if context is not None else []
        in_round = {a: counts.get((number, a), 0) for a in candidates}
        in_round |= {a: n for (r, a), n in counts.items() if r == number}
        total = sum(in_round.values())
        if report.view == "aggregate":
            hidden = suppressed(in_round, [list(in_round)])
            if 0 < total < 5:
                hidden = set(in_round)
            in_round = {a: n for a, n in in_round.items() if a not in hidden and n > 0}  # groups, like the rows
        ordered = sorted(in_round.items(), key=lambda item: (-item[1], artists.get(item[0], ("",))[0].lower(), item[0]))
        rows: list[Cells] = []
        for position, (artist_id, votes) in enumerate(ordered, start=1):
            rank = rows[-1][0] if rows and rows[-1][2] == votes else position
            share = round(votes / total, 4) if total else 0.0
            rows.append((rank, _text(artists.get(artist_id, ("",))[0]), votes, share))
        title = re.sub(r"[\[\]:*?/\\]", " ", f"Round {number} standings")[:31]
        sheets.append((title, rows))
    return sheets


# --- writing -----------------------------------------------------------------------------------------


def _csv_bytes(rows: Iterable[Cells]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _csv_booleans(rows: Iterable[Cells]) -> list[Cells]:
    return [["true" if c is True else "false" if c is False else c for c in row] for row in rows]


async def csv_stream(*, runtime: Runtime, report: Report) -> AsyncIterator[bytes]:
    """The report as CSV: the header, then a chunk of rows as they come from the database."""
    yield _csv_bytes([report.columns])
    has_booleans = report.view == "full" and report.dataset == "attendees"
    async for chunk in _chunks(runtime, report):
        yield _csv_bytes(_csv_booleans(chunk) if has_booleans else chunk)


class _SheetWriter:
    """Rows into a constant-memory workbook: text as text (never a formula), numbers and booleans as such;
    a full sheet goes on in a new one with the same header."""

    def __init__(self, workbook: Any, title: str, columns: list[str]) -> None:
        self._workbook = workbook
        self._title = title
        self._columns = columns
        self._sheets = 0
        self._sheet: Any = None
        self._row = 0
        self._next_sheet()

    def _next_sheet(self) -> None:
        self._sheets += 1
        name = self._title if self._sheets == 1 else f"{self._title} ({self._sheets})"
        self._sheet = self._workbook.add_worksheet(name[:31])
        for column, label in enumerate(self._columns):
            self._sheet.write_string(0, column, label)
        self._row = 1

    def write(self, rows: Iterable[Cells]) -> None:
        for cells in rows:
            if self._row >= MAX_SHEET_ROWS:
                self._next_sheet()
            sheet, row = self._sheet, self._row
            for column, value in enumerate(cells):
                if isinstance(value, bool):
                    sheet.write_boolean(row, column, value)
                elif isinstance(value, int | float):
                    sheet.write_number(row, column, value)
                elif value is not None and value != "":
                    sheet.write_string(row, column, str(value))
            self._row += 1


def _workbook(path: str) -> Any:
    options = {
        "constant_memory": True,
        "tmpdir": tempfile.gettempdir(),
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    return xlsxwriter.Workbook(path, options)


async def write_xlsx(*, runtime: Runtime, report: Report, path: str) -> None:
    """The report as an XLSX file at `path`: the rows (one sheet, more past a sheet's limit) and the
    standings of each round. The writing runs in a worker thread, a chunk at a time."""
    workbook = await asyncio.to_thread(_workbook, path)
    try:
        rows = await asyncio.to_thread(_SheetWriter, workbook, report.dataset.title(), report.columns)
        for title, standings in await _standings(runtime, report) if report.dataset != "consent" else []:
            sheet = await asyncio.to_thread(_SheetWriter, workbook, title, STANDINGS_COLUMNS)
            await asyncio.to_thread(sheet.write, standings)
        async for chunk in _chunks(runtime, report):
            await asyncio.to_thread(rows.write, chunk)
    finally:
        await asyncio.to_thread(workbook.close)


async def xlsx_stream(*, runtime: Runtime, report: Report, read_size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """The report as XLSX: written to a temporary file first (an XLSX is a zip, finished only at its end),
    then sent from it, and the file deleted."""
    descriptor, path = tempfile.mkstemp(prefix="stagevote-report-", suffix=".xlsx")
    os.close(descriptor)
    try:
        await write_xlsx(runtime=runtime, report=report, path=path)
        with open(path, "rb") as file:  # noqa: ASYNC230 - a local temporary file, read a block at a time
            while block := await asyncio.to_thread(file.read, read_size):
                yield block
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
