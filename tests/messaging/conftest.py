"""Loopback stand-ins for the providers (Twilio, SendGrid, an SMTP server), an app whose SMS goes to the
fake Twilio, and helpers to write message rows and wait for the in-process queue.

Each stand-in speaks its provider's API and checks what the provider would check (credentials, fields).
By default it accepts every message; `answer(...)` scripts the next answers (a 500, a 429, a 400 with a
Twilio error code), and the fakes record what they received, when, and on which connection.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import email.utils
import itertools
import ssl
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiosmtpd import smtp as aiosmtpd
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr
from taskiq import InMemoryBroker

from stagevote.config import Settings
from stagevote.core.db import unit_of_work, utcnow
from stagevote.core.runtime import Runtime
from stagevote.messaging import providers
from stagevote.messaging.models import Message

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "twilio-secret-token"
OUR_NUMBER = "+12025550000"
UNREACHABLE_NUMBER = "+12025559999"  # the fake answers 400 (error 21211) for this one
SENDGRID_KEY = "SG.test-key"
SMTP_USER = "stagevote"
SMTP_PASSWORD = "p@ss:word"  # characters a URL must percent-encode


@pytest.fixture(autouse=True)
async def _close_provider_clients() -> AsyncIterator[None]:
    """The providers' shared HTTP client belongs to the test's event loop: close it with the test."""
    yield
    await providers.close_http_clients()


@dataclass
class Answer:
    """A scripted answer: the HTTP status and the JSON body (None: a plain-text body, as a proxy's 502 page)."""

    status: int
    body: dict[str, Any] | None
    delay: float = 0.0


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def _peer_port(request: web.Request) -> int:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return int(peer[1]) if peer else 0


def rfc2822(moment: dt.datetime) -> str:
    """A timestamp as Twilio writes one: "Thu, 30 Jul 2015 20:12:31 +0000"."""
    return moment.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _listed_since(value: str) -> dt.datetime:
    """A `DateSent` filter value: a day (`2015-07-30`) or, as twilio-python writes it, a moment."""
    if len(value) == 10:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class FakeTwilio:
    """Twilio's `…/Accounts/{sid}/Messages.json`: POST creates a message, GET lists them (filters `To`, `From`,
    `DateSent`, `DateSent>`, `DateSent<`; `PageSize`, `Page`, `next_page_uri`), both with basic auth checked."""

    port: int = 0
    received: list[dict[str, str]] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each request taken
    connections: list[int] = field(default_factory=list)  # the client's port of each request
    unsubscribed: set[str] = field(default_factory=set)  # numbers that texted STOP to our sender: 21610
    scripted: deque[Answer] = field(default_factory=deque)
    created: list[dict[str, Any]] = field(default_factory=list)  # the message resources, oldest first
    lookups: list[dict[str, str]] = field(default_factory=list)  # the query of each list request
    scripted_lookups: deque[Answer] = field(default_factory=deque)
    in_flight: int = 0  # POSTs being answered right now
    most_in_flight: int = 0
    _sids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, code: int | None = None, *, times: int = 1, delay: float = 0.0) -> None:
        """The next `times` requests get `status` (with Twilio's error `code`; no code: a plain-text body)."""
        body = None if code is None else {"code": code, "message": f"error {code}", "status": status}
        self.scripted.extend(Answer(status, body, delay) for _ in range(times))

    def take_then_stall(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` messages are created, and their answers take `seconds` (the caller's read times out)."""
        self.scripted.extend(Answer(299, None, seconds) for _ in range(times))

    def have(self, to: str, body: str, *, at: dt.datetime | None = None) -> str:
        """A message Twilio has already (created at `at`, now by default), as if sent by a request we lost."""
        return self._create({"To": to, "Body": body, "From": OUR_NUMBER}, at=at)["sid"]

    async def messages(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._messages(request)
        finally:
            self.in_flight -= 1

    async def _messages(self, request: web.Request) -> web.Response:  # noqa: PLR0911  (one answer per case)
        if not self._authenticated(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.received.append(form)
        self.received_at.append(time.monotonic())
        self.connections.append(_peer_port(request))
        if self.scripted:
            scripted = self.scripted.popleft()
            if scripted.status == 299:  # taken, then the answer stalls
                created = self._create(form)
                await asyncio.sleep(scripted.delay)
                return web.json_response(created, status=201)
            await asyncio.sleep(scripted.delay)
            if scripted.status < 300:
                return self._created(form)
            if scripted.body is None:
                return web.Response(status=scripted.status, text="upstream trouble", content_type="text/plain")
            return web.json_response(scripted.body, status=scripted.status)
        if not form.get("To") or not form.get("Body"):
            return web.json_response(
                {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}, status=400
            )
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return web.json_response(
                {"code": 21603, "message": "A 'From' phone number is required.", "status": 400}, status=400
            )
        if form["To"] == UNREACHABLE_NUMBER:
            message = f"The 'To' number {form['To']} is not a valid phone number."
            return web.json_response({"code": 21211, "message": message, "status": 400}, status=400)
        if form["To"] in self.unsubscribed:
            message = "Attempt to send to unsubscribed recipient"
            return web.json_response({"code": 21610, "message": message, "status": 400}, status=400)
        return self._created(form)

    def _created(self, form: dict[str, str]) -> web.Response:
        return web.json_response(self._create(form), status=201)

    def _create(self, form: dict[str, str], *, at: dt.datetime | None = None) -> dict[str, Any]:
        moment = rfc2822(at or dt.datetime.now(dt.UTC))
        resource = {
            "sid": f"SM{next(self._sids):032x}", "account_sid": ACCOUNT_SID, "to": form["To"],
            "from": form.get("From"), "body": form["Body"], "status": "sent", "direction": "outbound-api",
            "date_created": moment, "date_sent": moment,
        }  # fmt: skip
        self.created.append(resource)
        return {**resource, "status": "queued"}

    def _authenticated(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        return request.match_info["sid"] == ACCOUNT_SID and request.headers.get("Authorization") == expected

    async def list_messages(self, request: web.Request) -> web.Response:
        """`GET …/Messages.json`: the account's messages, most recent first, filtered and paged like Twilio's."""
        if not self._authenticated(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        query = dict(request.query)
        self.lookups.append(query)
        if self.scripted_lookups:
            scripted = self.scripted_lookups.popleft()
            await asyncio.sleep(scripted.delay)
            return web.json_response(
                scripted.body or {"code": 20500, "status": scripted.status}, status=scripted.status
            )
        found = [m for m in reversed(self.created) if kept_by_filters(m, query)]
        size, page = int(query.get("PageSize", 50)), int(query.get("Page", 0))
        items = found[page * size : (page + 1) * size]
        following = None
        if (page + 1) * size < len(found):
            following = f"{request.path}?{urlencode({**query, 'Page': page + 1, 'PageSize': size})}"
        return web.json_response(
            {"messages": items, "page": page, "page_size": size, "next_page_uri": following, "uri": request.path_qs}
        )

    def to(self, number: str) -> list[dict[str, str]]:
        return [form for form in self.received if form["To"] == number]


def kept_by_filters(message: dict[str, Any], query: dict[str, str]) -> bool:
    """Whether Twilio's list filters keep `message` (`DateSent` filters compare its sent time, by day or moment)."""
    if "To" in query and message["to"] != query["To"]:
        return False
    if "From" in query and message["from"] != query["From"]:
        return False
    sent = email.utils.parsedate_to_datetime(message["date_sent"]) if message["date_sent"] else None
    for name, keep in (
        ("DateSent", lambda since: sent is not None and sent.date() == since.date()),
        ("DateSent>", lambda since: sent is not None and sent >= since),
        ("DateSent<", lambda since: sent is not None and sent <= since),
    ):
        if name in query and not keep(_listed_since(query[name])):
            return False
    return True


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", fake.list_messages)
    runner, fake.port = await _serve(app)
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(settings: Settings, twilio: FakeTwilio) -> Settings:
    return settings.model_copy(
        update={
            "sms_provider": "twilio",
            "twilio_api_url": twilio.url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_from": OUR_NUMBER,
        }
    )


@dataclass
class FakeSendGrid:
    """SendGrid's `POST /v3/mail/send`: a Bearer key, a JSON mail; 202 with `X-Message-Id`, or SendGrid's errors."""

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    scripted: deque[Answer] = field(default_factory=deque)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, message: str | None = None, *, times: int = 1) -> None:
        body = None if message is None else {"errors": [{"message": message, "field": None, "help": None}]}
        self.scripted.extend(Answer(status, body) for _ in range(times))

    async def send(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SENDGRID_KEY}":
            return self._errors(401, "The provided authorization grant is invalid, expired, or revoked")
        if request.content_type != "application/json":
            return self._errors(415, "Content-Type should be application/json.")
        mail = await request.json()
        self.received.append(mail)
        if self.scripted:
            scripted = self.scripted.popleft()
            if scripted.body is None:
                return web.Response(status=scripted.status, text="upstream trouble")
            return web.json_response(scripted.body, status=scripted.status)
        problems = _sendgrid_problems(mail)
        if problems:
            return self._errors(400, *problems)
        return web.Response(status=202, headers={"X-Message-Id": f"sg-{next(self._ids):06d}-Zm9vYmFy"})

    @staticmethod
    def _errors(status: int, *messages: str) -> web.Response:
        return web.json_response(
            {"errors": [{"message": m, "field": None, "help": None} for m in messages]}, status=status
        )


def _sendgrid_problems(mail: Any) -> list[str]:
    """What SendGrid's validation would say about the mail (a subset: what our provider must get right)."""
    problems = []
    personalizations = mail.get("personalizations") if isinstance(mail, dict) else None
    if not isinstance(personalizations, list) or not personalizations:
        return ["The personalizations field is required and must have at least one personalization."]
    for personalization in personalizations:
        to = personalization.get("to")
        if not isinstance(to, list) or not to or not all("@" in str(r.get("email", "")) for r in to):
            problems.append("Each personalization needs a 'to' array of addresses.")
    if "@" not in str((mail.get("from") or {}).get("email", "")):
        problems.append("The from object must be provided for every email send.")
    if not mail.get("subject"):
        problems.append("The subject is required.")
    content = mail.get("content")
    if not isinstance(content, list) or not content or not all(c.get("type") and c.get("value") for c in content):
        problems.append("Unless a valid template_id is provided, the content parameter is required.")
    return problems


@pytest.fixture
async def sendgrid() -> AsyncIterator[FakeSendGrid]:
    fake = FakeSendGrid()
    app = web.Application()
    app.router.add_post("/v3/mail/send", fake.send)
    runner, fake.port = await _serve(app)
    try:
        yield fake
    finally:
        await runner.cleanup()


# --- a real SMTP server (aiosmtpd) on a free loopback port --------------------------------------------


@dataclass
class Received:
    """One e-mail the SMTP server took: its envelope and its parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    authenticated: bool


@dataclass
class SmtpHandler:
    """aiosmtpd's handler: records what it accepts; `refuse_rcpt` / `refuse_data` script a refusal."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: str | None = None  # e.g. "450 4.2.1 Mailbox busy" or "550 5.1.1 No such user"
    refuse_data: str | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook names)
        self, server: aiosmtpd.SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: aiosmtpd.SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.refuse_data:
            return self.refuse_data
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                over_tls=session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 2.0.0 Message accepted for delivery"

    def authenticate(
        self, server: aiosmtpd.SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append(auth_data.login.decode())
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 or 535 itself


@dataclass
class SmtpServer:
    handler: SmtpHandler
    port: int
    tls: str

    def url(self, *, credentials: bool = False, password: str = SMTP_PASSWORD) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        user = ""
        if credentials:
            quoted = password.replace("%", "%25").replace("@", "%40").replace(":", "%3A")
            user = f"{SMTP_USER}:{quoted}@"
        return f"{scheme}://{user}127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (openssl), which the tests that need TLS make trusted."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


@pytest.fixture
def trust(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """Make the test certificate trusted by this process's default TLS contexts (OpenSSL's SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    return certificate


StartSmtp = Callable[..., Awaitable[SmtpServer]]


@pytest.fixture
async def smtp_server(certificate: Certificate) -> AsyncIterator[StartSmtp]:
    """Start an aiosmtpd server on a free loopback port: `await smtp_server(tls="none"|"starttls"|"implicit",
    auth=False, auth_in_clear=False)`. With `auth`, AUTH is offered and required: only over TLS, unless
    `auth_in_clear` (a server that would take a password in clear)."""
    servers: list[asyncio.Server] = []

    async def start(*, tls: str = "none", auth: bool = False, auth_in_clear: bool = False) -> SmtpServer:
        handler = SmtpHandler()
        loop = asyncio.get_running_loop()

        def protocol() -> aiosmtpd.SMTP:
            return aiosmtpd.SMTP(
                handler,
                hostname="smtp.test",
                tls_context=certificate.server_context() if tls == "starttls" else None,
                authenticator=handler.authenticate if auth else None,
                auth_required=auth,
                auth_require_tls=not auth_in_clear,
                loop=loop,
            )

        implicit = certificate.server_context() if tls == "implicit" else None
        server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=implicit)
        servers.append(server)
        return SmtpServer(handler, server.sockets[0].getsockname()[1], tls)

    try:
        yield start
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


# --- rows and the queue ---------------------------------------------------------------------------------


async def settle(runtime: Runtime, *, seconds: float = 120) -> None:
    """Wait until the in-process queue has run every task, including tasks those tasks enqueued (the
    dispatcher's drains and the deliveries they hand out)."""
    broker = runtime.queue.broker
    assert isinstance(broker, InMemoryBroker), "the tests run the queue in process (memory://)"
    await asyncio.wait_for(broker.wait_all(), timeout=seconds)
    assert not broker._running_tasks


async def add_message(
    runtime: Runtime,
    *,
    to: str,
    channel: str = "sms",
    status: str = "queued",
    body: str = "Round 2 is open!",
    subject: str | None = None,
    attempts: int = 0,
    age: dt.timedelta = dt.timedelta(0),
    next_attempt_at: dt.datetime | None = None,
    attendee_id: int | None = None,
    event_id: int | None = None,
    leased_until: dt.datetime | None = None,
    message_type: str = "CUSTOM",
    marketing: bool = False,
) -> int:
    """Write a `messages` row as it would stand after `age` (its `updated_at`), and enqueue nothing (the
    dispatcher's once-a-second drain may still take it: write it as it must stand, in one go)."""
    written = utcnow() - age
    async with unit_of_work(runtime.sessionmaker) as session:
        message = Message(
            attendee_id=attendee_id,
            event_id=event_id,
            channel=channel,
            message_type=message_type,
            status=status,
            recipient=to,
            subject=subject,
            body=body,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            leased_until=leased_until,
            marketing=marketing,
            created_at=written,
            updated_at=written,
        )
        session.add(message)
        await session.flush()
        return message.id


async def message(runtime: Runtime, message_id: int) -> Message:
    async with unit_of_work(runtime.sessionmaker) as session:
        row = await session.get(Message, message_id)
        assert row is not None
        return row


async def make_due(runtime: Runtime, message_id: int) -> None:
    """Move a retry's `next_attempt_at` into the past, as if its back-off had run out."""
    async with unit_of_work(runtime.sessionmaker) as session:
        row = await session.get(Message, message_id)
        assert row is not None and row.next_attempt_at is not None
        row.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
