"""HTTP routes of the attendees domain: the web join and confirm, the organizer's attendee list and uploads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from stagevote.attendees import service
from stagevote.attendees.schemas import (
    AttendeeExport,
    AttendeeRead,
    Confirmation,
    ConfirmRequest,
    ExportedAttendee,
    ExportedConsent,
    ExportedMessage,
    ExportedText,
    ExportedVote,
    ImportProblem,
    ImportResult,
    JoinAccepted,
    JoinRequest,
    PreRegistration,
)
from stagevote.audit.service import Caller
from stagevote.auth.dependencies import AdminPrincipal
from stagevote.core.bodylimit import body_limit
from stagevote.core.db import utcnow
from stagevote.core.errors import ProblemError, Unprocessable
from stagevote.core.network import ClientAddressDep
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.core.schemas import Page, Paging

router = APIRouter(tags=["attendees"])

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # the form's boundaries and part headers around the file
_CSV_TYPES = frozenset({"text/csv", "application/csv"})


class UnsupportedMediaType(ProblemError):
    status, slug = 415, "unsupported-media-type"


class ContentTooLarge(ProblemError):
    status, slug = 413, "content-too-large"


@router.post("/events/{event_id}/join", status_code=status.HTTP_202_ACCEPTED, response_model=JoinAccepted)
async def join_event(
    event_id: int, body: JoinRequest, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep
) -> JoinAccepted:
    """Join from the web, as texting the keyword does: a CONFIRM SMS with the 6-digit code follows (or,
    when the attendee may vote without confirming, the ballot link). Joining again sends a fresh code.

    Rate-limited per caller address and per number (429 with `Retry-After`). 404 unknown or draft event ·
    409 closed or archived event, or a number that texted STOP · 403 a private event without this number
    on its list · 422 (`phoneNumber`) not a phone number.
    """
    attendee = await service.join_on_web(
        session=session,
        runtime=runtime,
        event_id=event_id,
        phone_number=body.phone_number,
        email=body.email,
        language_pref=body.language_pref,
        client_ip=client.limit_key,
    )
    return JoinAccepted(attendee_id=attendee.id)


@router.post(
    "/attendees/{attendee_id}/confirm",
    response_model=Confirmation,
    responses={429: {"description": "Five wrong codes, or too many attempts from this address or for this id"}},
)
async def confirm_attendee(
    attendee_id: int, body: ConfirmRequest, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep
) -> Confirmation:
    """Confirm the phone with the code sent by SMS (the code is the proof; no sign-in): the ballot token.

    422 (`code`) a wrong code (tries left in the detail), or an expired one · 429 after five wrong tries,
    until the code expires, or past the rate limits per caller address and per attendee (`Retry-After`)
    · 409 the event no longer takes attendees. An unknown attendee id is answered as a wrong code is.
    """
    confirmed = await service.confirm_on_web(
        session=session, runtime=runtime, attendee_id=attendee_id, code=body.code, client_ip=client.limit_key
    )
    return Confirmation(
        attendee=AttendeeRead.model_validate(confirmed.attendee),
        ballot_token=confirmed.ballot_token,
        ballot_url=confirmed.ballot_url,
    )


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PreRegistration.model_json_schema(by_alias=True)},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "text/csv": {"schema": {"type": "string"}, "example": "phoneNumber,email\n+14155550100,fan@example.com\n"},
        },
    }
}


async def _read_capped(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise ContentTooLarge(f"Uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; split the file.")
    return bytes(body)


async def _uploaded_csv(request: Request, media_type: str) -> str:
    if media_type in _CSV_TYPES:
        raw = await _read_capped(request)
    else:
        form = await request.form(max_files=1, max_fields=10)
        upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise Unprocessable.field("file", "attach the CSV file as the form field `file`")
        raw = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(raw) > MAX_UPLOAD_BYTES:
            raise ContentTooLarge(f"Uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; split the file.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable.field("file", "the file must be UTF-8 text") from exc


@router.post(
    "/events/{event_id}/attendees",
    status_code=status.HTTP_201_CREATED,
    response_model=None,  # which of the two answers depends on the body's media type: see `responses`
    responses={
        201: {"model": AttendeeRead, "description": "One number pre-registered (JSON body)"},
        200: {"model": ImportResult, "description": "A CSV upload: what it created, its duplicates and bad lines"},
        413: {"description": "An upload larger than 5 MiB"},
        415: {"description": "A body that is neither JSON, multipart/form-data nor text/csv"},
    },
    openapi_extra=_UPLOAD_BODY,
    dependencies=[Depends(body_limit(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES))],  # above the app's default
)
async def pre_register(
    event_id: int,
    request: Request,
    response: Response,
    principal: AdminPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AttendeeRead | ImportResult:
    """Pre-register numbers (a private event admits only these; in a hybrid one they vote unconfirmed).

    JSON `{phoneNumber, email?}` adds one: 201 attendee, 409 if the number is already an attendee. A CSV
    file (`text/csv` body, or `multipart/form-data` field `file`) with the header `phoneNumber,email`
    adds many: 200 `{created, duplicates, invalid: [{line, message}]}`. 404 unknown event · 409 the event
    is closed or archived.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            body = PreRegistration.model_validate_json(await _read_capped(request))
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from exc
        attendee = await service.pre_register(
            session=session,
            runtime=runtime,
            principal=principal,
            event_id=event_id,
            phone_number=body.phone_number,
            email=body.email,
        )
        return AttendeeRead.model_validate(attendee)
    if media_type not in _CSV_TYPES and media_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "Send JSON {phoneNumber, email?}, or a CSV file as text/csv or multipart/form-data (field `file`)."
        )
    content = await _uploaded_csv(request, media_type)
    report = await service.import_attendees(
        session=session, runtime=runtime, principal=principal, event_id=event_id, content=content
    )
    response.status_code = status.HTTP_200_OK
    return ImportResult(
        created=report.created,
        duplicates=report.duplicates,
        invalid=[ImportProblem(line=line, message=message) for line, message in report.invalid],
    )


@router.get("/events/{event_id}/attendees", response_model=Page[AttendeeRead])
async def list_attendees(
    event_id: int,
    principal: AdminPrincipal,
    session: SessionDep,
    page: Paging,
    confirmed: Annotated[bool | None, Query(description="Only confirmed (true) or unconfirmed (false)")] = None,
    opted_out: Annotated[bool | None, Query(alias="optedOut", description="Only opted out (true) or not")] = None,
) -> Page[AttendeeRead]:
    """The event's attendees in the order they joined (or were pre-registered). 404 unknown event."""
    attendees, total = await service.list_attendees(
        session=session,
        principal=principal,
        event_id=event_id,
        confirmed=confirmed,
        opted_out=opted_out,
        limit=page.limit,
        offset=page.offset,
    )
    items = [AttendeeRead.model_validate(a) for a in attendees]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/attendees/{attendee_id}/export", response_model=AttendeeExport)
async def export_attendee(
    attendee_id: int, principal: AdminPrincipal, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep
) -> AttendeeExport:
    """Everything held about one attendee, to answer a fan who asks "what do you hold on me?": the attendee
    (with when they confirmed and opted out), their votes, the messages sent to them, the texts their number
    sent us, and every opt-in and opt-out (`consents`). 404 unknown attendee."""
    caller = Caller.of(principal.user_id, client)
    found = await service.export_attendee(session=session, runtime=runtime, caller=caller, attendee_id=attendee_id)
    attendee = ExportedAttendee.model_validate(found.attendee).model_copy(update={"opted_out_at": found.opted_out_at})
    return AttendeeExport(
        attendee=attendee,
        votes=[ExportedVote.model_validate(v) for v in found.votes],
        messages=[ExportedMessage.model_validate(m) for m in found.messages],
        inbound_messages=[ExportedText.model_validate(t) for t in found.sections.get("inboundMessages", [])],
        consents=[ExportedConsent.model_validate(c) for c in found.consents],
        exported_at=utcnow(),
    )


@router.delete("/attendees/{attendee_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def erase_attendee(
    attendee_id: int, principal: AdminPrincipal, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Erase the attendee's personal data: phone number, e-mail, the address of their web join, and the bodies
    and recipients of their messages (and, when no other attendee holds the number, what it texted us). Their
    votes stay counted: leaderboards and reports do not change. A number that texted STOP stays opted out
    (kept as a keyed hash). Erasing again changes nothing (204). 404 unknown attendee."""
    caller = Caller.of(principal.user_id, client)
    await service.erase_attendee(session=session, runtime=runtime, caller=caller, attendee_id=attendee_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
