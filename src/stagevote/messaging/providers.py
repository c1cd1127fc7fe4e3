"""Message providers: `console` logs the message; Twilio for SMS; SendGrid or SMTP for e-mail.

Every provider raises `DeliveryError` when a message did not go out, saying whether trying again may
help (`retryable`), whether it may have gone out after all (`unknown`) and whether the recipient opted
out at the carrier (`opted_out`, Twilio's 21610):

- Twilio and SendGrid (HTTP): no connection (refused, timed out connecting), a 5xx and a 429 are
  retryable; any other 4xx is permanent (bad number, bad credentials, refused content). Twilio's 21611
  (the sender's queue is full) is retryable whatever its status. A request sent whose answer was lost
  (read timeout, connection dropped mid-answer, a success without an id) is `unknown`: the provider may
  have taken it, so the outbox asks it (`find_sent`) before sending again instead of retrying blindly.
- SMTP: no connection, a dropped one, a timeout and a 4xx reply (421, 450, 451, 452, 454) are
  retryable; a 5xx reply (550 no such mailbox, 535 bad credentials, 554) is permanent.
- Missing or unusable configuration is permanent, and the error names the `STAGEVOTE_` variable.

Twilio and SendGrid share one `httpx.AsyncClient` per event loop (`http_client`): its pool keeps the
TLS connections to the provider open between messages, where a client per message would pay a
handshake and load the certificate store every time. The settings are read on every send (URL,
credentials), so the client holds none of them; `close_http_clients` closes it on shutdown.

SMTP (`STAGEVOTE_SMTP_URL`) opens a connection per message:
- `smtp://[user:password@]host[:port]` (port 587 by default): STARTTLS whenever the server offers it;
  a server that does not is used in clear only without credentials (a local relay). With a user and
  password the connection must be encrypted: a password never crosses the network in clear, and the
  message fails (permanently) instead.
- `smtps://[user:password@]host[:port]` (port 465 by default): TLS from the first byte.
The server's certificate is verified against the system's trust store. User and password are
percent-decoded (`%40` for an `@`). The `Message-ID` stagevote sets is the provider id of an e-mail.

`find_sent(to, body, since)` asks the provider for the messages it has with this body for this recipient,
created since `since`: their ids, newest first (the outbox leaves out those other rows hold already).
Twilio answers from its message list; the console and e-mail providers cannot tell (an empty list).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import secrets
import socket
import ssl
import weakref
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpx
import structlog

from stagevote.config import Settings

log = structlog.get_logger(__name__)

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SMTP_TIMEOUT_SECONDS = 15.0
MAX_PROVIDER_ID = 64  # the width of `messages.provider_message_id`
TWILIO_OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient": the number texted STOP to our sender
TWILIO_QUEUE_FULL = 21611  # the sender has too many messages queued at Twilio: later, it will take more


class DeliveryError(Exception):
    """The provider refused the message or could not be reached; the text says why."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool = False,
        opted_out: bool = False,
        code: str | None = None,
        unknown: bool = False,
    ):
        super().__init__(reason)
        self.retryable = retryable or unknown
        self.opted_out = opted_out
        self.code = code
        self.unknown = unknown  # the request reached the provider and its answer was lost: it may have sent it


SmsDeliveryError = DeliveryError  # the name the SMS-only first version used


# --- the shared HTTP client -------------------------------------------------------------------------

_http_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def http_client() -> httpx.AsyncClient:
    """The HTTP client of the running event loop (a client's connections belong to the loop that opened them)."""
    loop = asyncio.get_running_loop()
    client = _http_clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
        _http_clients[loop] = client
    return client


async def close_http_clients() -> None:
    """Close the running loop's HTTP client and its connections (process or worker shutdown)."""
    client = _http_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


# the request never left: sending it again cannot make a second message
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


async def _request(provider: str, setting: str, method: str, url: str, **request: Any) -> httpx.Response:
    """A request through the shared client. No connection is a retryable DeliveryError; a request that went
    out and got no answer (a read timeout, a connection dropped mid-answer) is an `unknown` one."""
    try:
        return await http_client().request(method, url, timeout=HTTP_TIMEOUT, **request)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise DeliveryError(f"{provider} cannot be called at {url!r}: check {setting} ({exc})") from exc
    except _NOT_SENT as exc:
        raise DeliveryError(f"{provider} could not be reached: {exc!r}", retryable=True) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{provider} did not answer in time: {exc!r}", unknown=True) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{provider} dropped the connection before answering: {exc!r}", unknown=True) from exc


async def _post(provider: str, setting: str, url: str, **request: Any) -> httpx.Response:
    return await _request(provider, setting, "POST", url, **request)


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _provider_id(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if len(value) > MAX_PROVIDER_ID:  # kept (cut) rather than lost: the row could not record it whole
        log.warning("provider_id_too_long", provider_id=value)
        return value[:MAX_PROVIDER_ID]
    return value


# --- SMS ----------------------------------------------------------------------------------------------


class SmsProvider(Protocol):
    async def send(self, *, to: str, body: str) -> str | None:
        """Hand the message over; the provider's id of it, when the provider gives one."""

    async def find_sent(self, *, to: str, body: str, since: dt.datetime) -> list[str]:
        """The provider's ids of the messages it has with this body for `to`, created since `since`."""


class ConsoleSmsProvider:
    """Development: the message goes to the log instead of a phone."""

    async def send(self, *, to: str, body: str) -> str | None:
        log.info("sms_console", to=to, body=body)
        return None

    async def find_sent(self, *, to: str, body: str, since: dt.datetime) -> list[str]:
        return []  # a log line: writing it again does no harm


class TwilioSmsProvider:
    """Twilio's REST API: `POST {api}/2010-04-01/Accounts/{sid}/Messages.json`, basic auth, form fields."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, *, to: str, body: str) -> str | None:
        s = self.settings
        if not s.twilio_account_sid or not s.twilio_auth_token:
            raise DeliveryError(
                "Twilio is not configured: set STAGEVOTE_TWILIO_ACCOUNT_SID and STAGEVOTE_TWILIO_AUTH_TOKEN"
            )
        form = {"To": to, "Body": body, "StatusCallback": f"{s.public_url}/sms/status"}
        if s.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = s.twilio_messaging_service_sid
        elif s.twilio_from:
            form["From"] = s.twilio_from
        else:
            raise DeliveryError(
                "Twilio needs a sender: set STAGEVOTE_TWILIO_FROM or STAGEVOTE_TWILIO_MESSAGING_SERVICE_SID"
            )
        url = f"{s.twilio_api_url}/2010-04-01/Accounts/{s.twilio_account_sid}/Messages.json"
        response = await _post(
            "Twilio",
            "STAGEVOTE_TWILIO_API_URL",
            url,
            data=form,
            auth=(s.twilio_account_sid, s.twilio_auth_token.get_secret_value()),
        )
        answer = _json_object(response)
        if response.is_success:
            sid = _provider_id(answer.get("sid"))
            if sid is None:  # it may well have been taken: ask Twilio before trying again
                raise DeliveryError(f"Twilio answered {response.status_code} without a message sid", unknown=True)
            return sid
        raise _twilio_refusal(response.status_code, answer)

    async def find_sent(self, *, to: str, body: str, since: dt.datetime) -> list[str]:
        """Twilio's list of the messages to `to` sent since the day of `since` (`GET …/Messages.json?To=…&
        DateSent>=…`, newest first), matched on the body and on a creation time no earlier than `since`
        (less `CLOCK_SKEW`).

        A failed look-up raises a retryable DeliveryError: the outbox asks again later rather than send
        blindly. At most `LOOKUP_PAGES` pages of `LOOKUP_PAGE_SIZE` are read (a fan gets a few texts a day).
        """
        s = self.settings
        if not s.twilio_account_sid or not s.twilio_auth_token:
            raise DeliveryError("Twilio is not configured: set STAGEVOTE_TWILIO_ACCOUNT_SID and _AUTH_TOKEN")
        auth = (s.twilio_account_sid, s.twilio_auth_token.get_secret_value())
        url: str | None = f"{s.twilio_api_url}/2010-04-01/Accounts/{s.twilio_account_sid}/Messages.json"
        params: dict[str, Any] | None = {
            "To": to, "DateSent>": since.astimezone(dt.UTC).date().isoformat(), "PageSize": LOOKUP_PAGE_SIZE,
        }  # fmt: skip
        found: list[str] = []
        for _ in range(LOOKUP_PAGES):
            if url is None:
                break
            response = await _request("Twilio", "STAGEVOTE_TWILIO_API_URL", "GET", url, params=params, auth=auth)
            answer = _json_object(response)
            if not response.is_success:
                refusal = _twilio_refusal(response.status_code, answer)
                raise DeliveryError(f"Twilio's message list could not be read: {refusal}", retryable=True)
            listed = answer.get("messages")
            for item in listed if isinstance(listed, list) else []:
                sid = _matching_sid(item, body=body, since=since)
                if sid is not None:
                    found.append(sid)
            following = answer.get("next_page_uri")
            url = f"{s.twilio_api_url}{following}" if isinstance(following, str) and following else None
            params = None  # the next page's URI carries them
        return found


LOOKUP_PAGE_SIZE = 50
LOOKUP_PAGES = 4
CLOCK_SKEW = dt.timedelta(seconds=60)  # between our clock and Twilio's


def _matching_sid(item: object, *, body: str, since: dt.datetime) -> str | None:
    """The sid of a listed Twilio message that is ours: outbound, this body, created since `since`."""
    if not isinstance(item, dict) or item.get("body") != body:
        return None
    direction = item.get("direction")
    if isinstance(direction, str) and not direction.startswith("outbound"):
        return None
    created = _rfc2822(item.get("date_created")) or _rfc2822(item.get("date_sent"))
    if created is None or created < since - CLOCK_SKEW:
        return None
    return _provider_id(item.get("sid"))


def _rfc2822(value: object) -> dt.datetime | None:
    """Twilio's timestamps ("Thu, 30 Jul 2015 20:12:31 +0000") as aware datetimes."""
    if not isinstance(value, str):
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _twilio_refusal(status: int, answer: dict[str, Any]) -> DeliveryError:
    code = answer.get("code")
    number = code if isinstance(code, int) else None
    message = answer.get("message")
    detail = " ".join(str(part) for part in (code, message) if part)
    reason = f"Twilio answered {status}: {detail}" if detail else f"Twilio answered {status}"
    return DeliveryError(
        reason,
        retryable=_retryable_status(status) or number == TWILIO_QUEUE_FULL,
        opted_out=number == TWILIO_OPTED_OUT,
        code=str(code) if code is not None else None,
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def sms_provider_for(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "twilio":
        return TwilioSmsProvider(settings)
    return ConsoleSmsProvider()


# --- e-mail -------------------------------------------------------------------------------------------


class EmailProvider(Protocol):
    async def send(self, *, to: str, subject: str, body: str) -> str | None:
        """Hand the e-mail over; the provider's id of it, when the provider gives one."""

    async def find_sent(self, *, to: str, body: str, since: dt.datetime) -> list[str]:
        """No e-mail provider here can tell what it took (an e-mail may, rarely, go out twice): []."""


class _CannotTell:
    async def find_sent(self, *, to: str, body: str, since: dt.datetime) -> list[str]:
        return []


class ConsoleEmailProvider(_CannotTell):
    """Development: the e-mail goes to the log instead of a mailbox."""

    async def send(self, *, to: str, subject: str, body: str) -> str | None:
        log.info("email_console", to=to, subject=subject, body=body)
        return None


def _sender(settings: Settings) -> tuple[str, str]:
    """The display name and address of `STAGEVOTE_EMAIL_FROM` ("stagevote <no-reply@example.com>")."""
    name, address = email.utils.parseaddr(settings.email_from)
    if "@" not in address:
        raise DeliveryError(f"STAGEVOTE_EMAIL_FROM is not an e-mail address: {settings.email_from!r}")
    return name, address


def _one_line(subject: str) -> str:
    return " ".join(subject.split())


class SendGridEmailProvider(_CannotTell):
    """SendGrid's v3 API: `POST {api}/v3/mail/send`, a Bearer API key, JSON; 202 with the id in `X-Message-Id`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, *, to: str, subject: str, body: str) -> str | None:
        s = self.settings
        if not s.sendgrid_api_key:
            raise DeliveryError("SendGrid is not configured: set STAGEVOTE_SENDGRID_API_KEY")
        name, address = _sender(s)
        sender = {"email": address, "name": name} if name else {"email": address}
        payload = {
            "personalizations": [{"to": [{"email": to}]}],
            "from": sender,
            "subject": _one_line(subject),
            "content": [{"type": "text/plain", "value": body}],
        }
        headers = {"Authorization": f"Bearer {s.sendgrid_api_key.get_secret_value()}"}
        response = await _post(
            "SendGrid",
            "STAGEVOTE_SENDGRID_API_URL",
            f"{s.sendgrid_api_url}/v3/mail/send",
            json=payload,
            headers=headers,
        )
        if response.is_success:  # 202 (200 in sandbox mode)
            return _provider_id(response.headers.get("X-Message-Id"))
        errors = _json_object(response).get("errors")
        messages = [str(e.get("message")) for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        detail = "; ".join(m for m in messages if m and m != "None")
        reason = f"SendGrid answered {response.status_code}" + (f": {detail}" if detail else "")
        raise DeliveryError(reason, retryable=_retryable_status(response.status_code), code=str(response.status_code))


@dataclass(frozen=True)
class SmtpServer:
    """Where `STAGEVOTE_SMTP_URL` points."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None = field(repr=False)

    @classmethod
    def from_url(cls, url: str | None) -> SmtpServer:
        if not url:
            raise DeliveryError("SMTP is not configured: set STAGEVOTE_SMTP_URL (smtp://user:password@host:587)")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DeliveryError(f"STAGEVOTE_SMTP_URL is not a valid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps") or not parts.hostname:
            raise DeliveryError("STAGEVOTE_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…")
        implicit = scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 587),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )


_local_hostname: str | None = None


async def _ehlo_name() -> str:
    """This host's name for EHLO, looked up once (`getfqdn` may ask the DNS)."""
    global _local_hostname  # noqa: PLW0603  (a process-wide memo)
    if _local_hostname is None:
        _local_hostname = await asyncio.to_thread(socket.getfqdn)
    return _local_hostname


class SmtpEmailProvider(_CannotTell):
    """Any SMTP server (`STAGEVOTE_SMTP_URL`), through aiosmtplib; a connection per message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, *, to: str, subject: str, body: str) -> str | None:
        url = self.settings.smtp_url
        server = SmtpServer.from_url(url.get_secret_value() if url is not None else None)
        name, address = _sender(self.settings)
        message = _email(sender=email.utils.formataddr((name, address)) if name else address, to=to, subject=subject)
        message.set_content(body)
        smtp = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.implicit_tls,
            start_tls=False if server.implicit_tls else None,  # None: STARTTLS when the server offers it
            timeout=SMTP_TIMEOUT_SECONDS,
            local_hostname=await _ehlo_name(),
        )
        try:
            await smtp.connect()
            if server.username is not None:
                if smtp.get_transport_info("sslcontext") is None:
                    raise DeliveryError(
                        f"The SMTP server {server.host}:{server.port} offers no STARTTLS, and the password in "
                        "STAGEVOTE_SMTP_URL is not sent in clear: use smtps://, or a server with STARTTLS"
                    )
                await smtp.login(server.username, server.password or "")
            await smtp.send_message(message, sender=address, recipients=[to])
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _smtp_failure(exc, server) from exc
        finally:
            await _quit(smtp)
        return str(message["Message-ID"])


def _email(*, sender: str, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = to
        message["Subject"] = _one_line(subject)
    except ValueError as exc:  # a header the e-mail library refuses (a line break in an address)
        raise DeliveryError(f"The e-mail could not be written: {exc}") from exc
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = _message_id(sender)
    return message


def _message_id(sender: str) -> str:
    """A unique `<…@domain>` that fits the provider id column (the sender's domain when it is short enough)."""
    left = secrets.token_hex(12)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2]
    if len(left) + len(domain) + 3 > MAX_PROVIDER_ID:
        domain = "stagevote.invalid"
    return f"<{left}@{domain}>"


def _smtp_failure(exc: Exception, server: SmtpServer) -> DeliveryError:
    where = f"SMTP {server.host}:{server.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        transient = bool(codes) and all(400 <= code < 500 for code in codes)
        return DeliveryError(
            f"{where} refused the recipient: {detail}", retryable=transient, code=str(codes[0]) if codes else None
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        transient = 400 <= exc.code < 500
        return DeliveryError(f"{where} answered {exc.code} {exc.message}", retryable=transient, code=str(exc.code))
    if _certificate_problem(exc):
        return DeliveryError(f"{where}: its TLS certificate is not trusted ({exc}); check STAGEVOTE_SMTP_URL")
    if isinstance(exc, (OSError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)):
        # refused, reset, timed out (SMTPConnectError and the disconnects are OSErrors too)
        return DeliveryError(f"{where} could not be reached or dropped the connection: {exc!r}", retryable=True)
    # what the server cannot do (AUTH, SMTPUTF8) or was asked the wrong way: configuration, not chance
    return DeliveryError(f"{where}: {exc} (check STAGEVOTE_SMTP_URL)")


def _certificate_problem(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """Say goodbye if the connection is still up; once the server took the message, nothing here undoes it."""
    if smtp.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
    smtp.close()


def email_provider_for(settings: Settings) -> EmailProvider:
    if settings.email_provider == "sendgrid":
        return SendGridEmailProvider(settings)
    if settings.email_provider == "smtp":
        return SmtpEmailProvider(settings)
    return ConsoleEmailProvider()
