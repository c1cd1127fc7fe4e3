"""HTTP routes of the reports domain: an event's votes or attendees as a CSV or XLSX download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from stagevote.audit.service import Caller
from stagevote.auth.dependencies import CurrentPrincipal
from stagevote.core.network import ClientAddressDep
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.reports import service
from stagevote.reports.service import Dataset, Format

router = APIRouter(tags=["reports"])


@router.get(
    "/events/{event_id}/report",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The report as a download (`Content-Disposition: attachment`)",
            "content": {"text/csv": {}, service.MEDIA_TYPES["xlsx"]: {}},
        }
    },
)
async def event_report(
    event_id: int,
    principal: CurrentPrincipal,
    client: ClientAddressDep,
    session: SessionDep,
    runtime: RuntimeDep,
    format: Annotated[Format, Query(description="csv or xlsx")] = "csv",
    dataset: Annotated[Dataset, Query(description="votes, attendees or consent (admins only)")] = "votes",
) -> StreamingResponse:
    """Download the event's votes, attendees or consent record, named like `rockfest-2026-votes.csv`; the
    columns are listed in the README. The consent record (every opt-in and opt-out) is for admins only.
    Admins get one row per vote, attendee or consent. A sponsor of the event in privacy mode gets
    aggregates only: votes by round, artist and hour, or attendees by day and status, without groups of
    fewer than 5 (nor a group a published total would give away); if that leaves nothing, the file holds
    its header alone. XLSX adds a standings sheet per round. Text that a spreadsheet would take for a
    formula begins with `'`.

    404 unknown event (or a draft this caller cannot see) · 403 anyone else, or a sponsor while the
    event's privacy mode is off, or a sponsor asking for the consent record · 422 an unknown format or dataset."""
    caller = Caller.of(principal.user_id, client)
    report = await service.plan(
        session=session, principal=principal, caller=caller, event_id=event_id, dataset=dataset, format=format
    )
    body = (
        service.csv_stream(runtime=runtime, report=report)
        if format == "csv"
        else service.xlsx_stream(runtime=runtime, report=report)
    )
    headers = {"Content-Disposition": f'attachment; filename="{report.filename}"', "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=report.media_type, headers=headers)
