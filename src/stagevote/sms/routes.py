"""HTTP routes of the sms domain: Twilio's signed webhooks, inbound messages (`/sms/join`) and delivery reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from starlette.datastructures import FormData

from stagevote.core.bodylimit import body_limit
from stagevote.core.errors import Forbidden, Unprocessable
from stagevote.core.runtime import Runtime, RuntimeDep, SessionDep
from stagevote.sms import service

router = APIRouter(tags=["sms"])

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's largest form (a 1,600-character body percent-encoded, ten media URLs, ~40 fields) is far below these
WEBHOOK_MAX_BYTES = 64 * 1024
WEBHOOK_MAX_FIELDS = 100
_FORM = "application/x-www-form-urlencoded"
# column sizes of inbound_messages: a longer value is not from Twilio
_LIMITS = {"MessageSid": 64, "From": 32, "To": 32}


def _form_schema(fields: dict[str, str], required: list[str]) -> dict[str, Any]:
    properties = {name: {"type": "string", "description": about} for name, about in fields.items()}
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}}


async def _signed_form(request: Request, runtime: Runtime) -> FormData:
    """The webhook's form parameters, once `X-Twilio-Signature` proved they come from Twilio (403 otherwise).

    Nothing is acted on before the signature is checked, and the form it is checked over is bounded:
    form-encoded only (no files), at most `WEBHOOK_MAX_BYTES` (413 past it, from the route's body cap)
    and `WEBHOOK_MAX_FIELDS` fields (400 past it).
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != _FORM:
        raise Forbidden("Twilio webhooks are form-encoded (application/x-www-form-urlencoded).", slug="bad-signature")
    form = await request.form(max_files=0, max_fields=WEBHOOK_MAX_FIELDS, max_part_size=WEBHOOK_MAX_BYTES)
    if any(not isinstance(value, str) for value in form.values()):
        raise Forbidden("Twilio webhooks carry no files.", slug="bad-signature")
    url = f"{runtime.settings.public_url}{request.url.path}"
    if request.url.query:
        url = f"{url}?{request.url.query}"
    service.verify_signature(runtime=runtime, url=url, params=form, signature=request.headers.get(SIGNATURE_HEADER))
    return form


def _field(form: FormData, name: str, *, required: bool = True) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str) or (required and not value.strip()):
        if required:
            raise Unprocessable.field(name, "required")
        return None
    if name in _LIMITS and len(value) > _LIMITS[name]:
        raise Unprocessable.field(name, f"at most {_LIMITS[name]} characters")
    return value


@router.post(
    "/sms/join",
    response_class=Response,
    responses={
        200: {"content": {"text/xml": {"example": "<Response><Message>Welcome!</Message></Response>"}}},
        403: {"description": "Missing or bad X-Twilio-Signature; nothing changed"},
        413: {"description": "A body larger than 64 KiB; nothing changed"},
    },
    dependencies=[Depends(body_limit(WEBHOOK_MAX_BYTES))],
    openapi_extra=_form_schema(
        {
            "MessageSid": "Twilio's id of the message: the same one twice acts once",
            "From": "The fan's number (E.164)",
            "To": "Our number",
            "Body": "The text: JOIN <KEYWORD>, <KEYWORD>, a 6-digit code, VOTE <code>, STOP, START, HELP…",
        },
        ["MessageSid", "From"],
    ),
)
async def inbound_sms(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Twilio's inbound-message webhook (form-encoded, signed with `X-Twilio-Signature`): the reply as TwiML.

    `Body`, in any case and spacing: `JOIN <KEYWORD>`, `UNIRME <KEYWORD>` (Spanish) or the keyword alone
    joins; six digits confirm the number; `VOTE <code>`, `VOTAR <code>` or the code alone votes in the open
    round of the number's latest joined live event; `STOP` (`STOPALL`, `UNSUBSCRIBE`, `CANCEL`, `END`,
    `QUIT`) opts out everywhere, `START` (`UNSTOP`, `YES`) opts back in, `HELP` (`INFO`, `AYUDA`) answers
    help; anything else, how to join and vote. An opted-out number gets an empty `<Response/>` to all but
    START and HELP. A repeated `MessageSid` gets the same TwiML again and changes nothing.
    403 bad or missing signature (nothing changes) · 422 no `MessageSid` or `From`.
    """
    form = await _signed_form(request, runtime)
    reply = await service.handle_inbound(
        session=session,
        runtime=runtime,
        writer=request.app.state.vote_writer,
        message_sid=_field(form, "MessageSid") or "",
        from_number=_field(form, "From") or "",
        to_number=_field(form, "To", required=False),
        body=_field(form, "Body", required=False) or "",
    )
    return Response(reply, media_type="text/xml")


@router.post(
    "/sms/status",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        403: {"description": "Missing or bad X-Twilio-Signature; nothing changed"},
        413: {"description": "A body larger than 64 KiB; nothing changed"},
    },
    dependencies=[Depends(body_limit(WEBHOOK_MAX_BYTES))],
    openapi_extra=_form_schema(
        {"MessageSid": "Twilio's id of a message we sent", "MessageStatus": "sent, delivered, undelivered, failed…"},
        ["MessageSid", "MessageStatus"],
    ),
)
async def sms_status(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Twilio's status callback (signed): moves the message's status forward; a late, older status is ignored."""
    form = await _signed_form(request, runtime)
    await service.record_status(
        session=session,
        runtime=runtime,
        message_sid=_field(form, "MessageSid") or "",
        message_status=_field(form, "MessageStatus") or "",
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
