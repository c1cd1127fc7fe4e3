"""Each provider against a loopback stand-in speaking its API: what goes out, and how each failure is classified."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from stagevote.config import ConnectionURL, Settings
from stagevote.messaging import providers
from stagevote.messaging.providers import (
    DeliveryError,
    SendGridEmailProvider,
    SmtpEmailProvider,
    TwilioSmsProvider,
    email_provider_for,
    sms_provider_for,
)
from tests.messaging.conftest import (
    OUR_NUMBER,
    SENDGRID_KEY,
    SMTP_PASSWORD,
    SMTP_USER,
    Certificate,
    FakeSendGrid,
    FakeTwilio,
    StartSmtp,
)

FAN = "+12025550123"


async def refused(send: object) -> DeliveryError:
    """The DeliveryError the awaited send raised."""
    with pytest.raises(DeliveryError) as caught:
        await send  # type: ignore[misc]
    return caught.value


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on (bound, never listening: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback server that takes the connection and the request, and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


# --- Twilio -------------------------------------------------------------------------------------------


async def test_twilio_gets_the_form_with_basic_auth_and_answers_the_sid(settings: Settings, twilio: FakeTwilio) -> None:
    assert isinstance(sms_provider_for(settings), TwilioSmsProvider)
    sid = await TwilioSmsProvider(settings).send(to=FAN, body="¡Hola! Round 2 is open")
    assert sid == f"SM{1:032x}"
    [form] = twilio.received
    assert form == {
        "To": FAN,
        "Body": "¡Hola! Round 2 is open",
        "From": OUR_NUMBER,
        "StatusCallback": "http://testserver/sms/status",
    }


async def test_twilio_messages_share_one_connection(settings: Settings, twilio: FakeTwilio) -> None:
    provider = TwilioSmsProvider(settings)
    for _ in range(3):
        await sms_provider_for(settings).send(to=FAN, body="hi")  # a provider per call, as the outbox makes them
    await provider.send(to=FAN, body="hi")
    assert len(twilio.connections) == 4 and len(set(twilio.connections)) == 1, twilio.connections


@pytest.mark.parametrize(
    ("status", "code", "retryable", "opted_out"),
    [
        (500, None, True, False),  # a plain-text 500 (a proxy's page): no JSON at all
        (503, 20500, True, False),
        (429, 20429, True, False),
        (400, 21610, False, True),  # the number texted STOP to our sender
        (400, 21211, False, False),  # not a valid phone number
        (400, 21611, True, False),  # the sender's queue at Twilio is full: later
        (403, 20003, False, False),
        (404, 20404, False, False),
    ],
)
async def test_twilio_refusals_are_classified(
    settings: Settings, twilio: FakeTwilio, status: int, code: int | None, retryable: bool, opted_out: bool
) -> None:
    twilio.answer(status, code)
    error = await refused(TwilioSmsProvider(settings).send(to=FAN, body="hi"))
    assert (error.retryable, error.opted_out) == (retryable, opted_out)
    assert error.code == (str(code) if code is not None else None)
    assert str(status) in str(error) and (code is None or str(code) in str(error))


async def test_twilio_bad_credentials_are_permanent(settings: Settings, twilio: FakeTwilio) -> None:
    settings.twilio_auth_token = SecretStr("wrong")
    error = await refused(TwilioSmsProvider(settings).send(to=FAN, body="hi"))
    assert not error.retryable and "401" in str(error) and error.code == "20003"


async def test_an_unreachable_or_silent_twilio_is_retryable(
    settings: Settings, closed_port: int, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.twilio_api_url = f"http://127.0.0.1:{closed_port}"
    error = await refused(TwilioSmsProvider(settings).send(to=FAN, body="hi"))
    assert error.retryable and "could not be reached" in str(error)

    monkeypatch.setattr(providers, "HTTP_TIMEOUT", 0.2)
    settings.twilio_api_url = f"http://127.0.0.1:{silent_port}"
    error = await refused(TwilioSmsProvider(settings).send(to=FAN, body="hi"))
    assert error.retryable and "in time" in str(error)


async def test_twilio_without_configuration_names_the_settings(settings: Settings, twilio: FakeTwilio) -> None:
    unconfigured = settings.model_copy(update={"twilio_auth_token": None})
    error = await refused(TwilioSmsProvider(unconfigured).send(to=FAN, body="hi"))
    assert not error.retryable and "STAGEVOTE_TWILIO_AUTH_TOKEN" in str(error)
    no_sender = settings.model_copy(update={"twilio_from": None})
    error = await refused(TwilioSmsProvider(no_sender).send(to=FAN, body="hi"))
    assert not error.retryable and "STAGEVOTE_TWILIO_FROM" in str(error)
    bad_url = settings.model_copy(update={"twilio_api_url": "ftp://twilio.example"})
    error = await refused(TwilioSmsProvider(bad_url).send(to=FAN, body="hi"))
    assert not error.retryable and "STAGEVOTE_TWILIO_API_URL" in str(error)
    assert twilio.received == []


# --- SendGrid -----------------------------------------------------------------------------------------


@pytest.fixture
def sendgrid_settings(settings: Settings, sendgrid: FakeSendGrid) -> Settings:
    return settings.model_copy(
        update={
            "email_provider": "sendgrid",
            "sendgrid_api_url": sendgrid.url,
            "sendgrid_api_key": SecretStr(SENDGRID_KEY),
            "email_from": "ROCKFEST votes <votes@rockfest.example>",
        }
    )


async def test_sendgrid_gets_the_mail_as_json_and_answers_its_id(
    sendgrid_settings: Settings, sendgrid: FakeSendGrid
) -> None:
    assert isinstance(email_provider_for(sendgrid_settings), SendGridEmailProvider)
    provider_id = await SendGridEmailProvider(sendgrid_settings).send(
        to="fan@example.com", subject="Resultados de\nROCKFEST", body="¡Gracias por votar!\nRound 2: Sigur Rós"
    )
    assert provider_id == "sg-000001-Zm9vYmFy"
    assert sendgrid.received == [
        {
            "personalizations": [{"to": [{"email": "fan@example.com"}]}],
            "from": {"email": "votes@rockfest.example", "name": "ROCKFEST votes"},
            "subject": "Resultados de ROCKFEST",  # a header is one line
            "content": [{"type": "text/plain", "value": "¡Gracias por votar!\nRound 2: Sigur Rós"}],
        }
    ]


@pytest.mark.parametrize(
    ("status", "message", "retryable"),
    [
        (500, None, True),
        (502, None, True),
        (429, "too many requests", True),
        (400, "Does not contain a valid address.", False),
        (403, "The from address does not match a verified Sender Identity.", False),
        (413, "Payload too large", False),
    ],
)
async def test_sendgrid_refusals_are_classified(
    sendgrid_settings: Settings, sendgrid: FakeSendGrid, status: int, message: str | None, retryable: bool
) -> None:
    sendgrid.answer(status, message)
    error = await refused(SendGridEmailProvider(sendgrid_settings).send(to="fan@example.com", subject="S", body="B"))
    assert error.retryable is retryable and not error.opted_out and error.code == str(status)
    assert str(status) in str(error) and (message is None or message in str(error))


async def test_sendgrid_checks_the_key_and_without_one_names_the_setting(
    sendgrid_settings: Settings, sendgrid: FakeSendGrid, closed_port: int
) -> None:
    wrong = sendgrid_settings.model_copy(update={"sendgrid_api_key": SecretStr("SG.wrong")})
    error = await refused(SendGridEmailProvider(wrong).send(to="fan@example.com", subject="S", body="B"))
    assert not error.retryable and "401" in str(error) and "authorization grant" in str(error)

    missing = sendgrid_settings.model_copy(update={"sendgrid_api_key": None})
    error = await refused(SendGridEmailProvider(missing).send(to="fan@example.com", subject="S", body="B"))
    assert not error.retryable and "STAGEVOTE_SENDGRID_API_KEY" in str(error)

    no_sender = sendgrid_settings.model_copy(update={"email_from": "nobody"})
    error = await refused(SendGridEmailProvider(no_sender).send(to="fan@example.com", subject="S", body="B"))
    assert not error.retryable and "STAGEVOTE_EMAIL_FROM" in str(error)
    assert sendgrid.received == []

    away = sendgrid_settings.model_copy(update={"sendgrid_api_url": f"http://127.0.0.1:{closed_port}"})
    error = await refused(SendGridEmailProvider(away).send(to="fan@example.com", subject="S", body="B"))
    assert error.retryable and "could not be reached" in str(error)


async def test_sendgrid_validation_errors_come_back_in_the_reason(
    sendgrid_settings: Settings, sendgrid: FakeSendGrid
) -> None:
    error = await refused(SendGridEmailProvider(sendgrid_settings).send(to="fan@example.com", subject="", body=""))
    assert not error.retryable and "subject is required" in str(error) and "content parameter" in str(error)


# --- SMTP ---------------------------------------------------------------------------------------------


def smtp_settings(settings: Settings, url: str | None) -> Settings:
    return settings.model_copy(
        update={
            "email_provider": "smtp",
            "smtp_url": ConnectionURL(url) if url is not None else None,
            "email_from": "ROCKFEST <votes@rockfest.example>",
        }
    )


async def test_smtp_delivers_the_mail_with_its_headers(settings: Settings, smtp_server: StartSmtp) -> None:
    server = await smtp_server()
    configured = smtp_settings(settings, server.url())
    assert isinstance(email_provider_for(configured), SmtpEmailProvider)
    body = "¡Gracias por votar en ROCKFEST!\nTop 3: 1. Sigur Rós (120)\n"
    message_id = await SmtpEmailProvider(configured).send(
        to="fan@example.com", subject="Resultados de ROCKFEST", body=body
    )

    [received] = server.received
    assert received.mail_from == "votes@rockfest.example" and received.rcpt_tos == ["fan@example.com"]
    mail = received.message
    assert mail["From"] == "ROCKFEST <votes@rockfest.example>" and mail["To"] == "fan@example.com"
    assert mail["Subject"] == "Resultados de ROCKFEST"
    assert mail["Message-ID"] == message_id and message_id is not None
    assert message_id.startswith("<") and message_id.endswith("@rockfest.example>") and len(message_id) <= 64
    assert mail["Date"] is not None
    assert mail.get_content_type() == "text/plain" and mail.get_content().replace("\r\n", "\n") == body
    assert not received.over_tls  # this server offers no STARTTLS, and no password was to be sent


async def test_smtp_uses_starttls_when_offered_and_logs_in_over_it(
    settings: Settings, smtp_server: StartSmtp, trust: Certificate
) -> None:
    server = await smtp_server(tls="starttls", auth=True)
    url = server.url(credentials=True)
    assert "%40" in url  # the password's @ and : travel percent-encoded
    await SmtpEmailProvider(smtp_settings(settings, url)).send(to="fan@example.com", subject="Hi", body="Hello")
    [received] = server.received
    assert received.over_tls and received.authenticated
    assert server.handler.logins == [SMTP_USER]


async def test_smtps_is_tls_from_the_first_byte(settings: Settings, smtp_server: StartSmtp, trust: Certificate) -> None:
    server = await smtp_server(tls="implicit")
    await SmtpEmailProvider(smtp_settings(settings, server.url())).send(to="fan@example.com", subject="Hi", body="x")
    [received] = server.received
    assert received.over_tls


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # the point of it
async def test_smtp_never_sends_a_password_in_clear(settings: Settings, smtp_server: StartSmtp) -> None:
    server = await smtp_server(tls="none", auth=True, auth_in_clear=True)  # it would take one
    provider = SmtpEmailProvider(smtp_settings(settings, server.url(credentials=True)))
    error = await refused(provider.send(to="fan@example.com", subject="Hi", body="x"))
    assert not error.retryable and "STARTTLS" in str(error) and "STAGEVOTE_SMTP_URL" in str(error)
    assert server.received == [] and server.handler.logins == []


async def test_smtp_refuses_an_untrusted_certificate(settings: Settings, smtp_server: StartSmtp) -> None:
    server = await smtp_server(tls="implicit")  # its certificate is not trusted: no `trust` fixture
    error = await refused(
        SmtpEmailProvider(smtp_settings(settings, server.url())).send(to="a@b.example", subject="S", body="B")
    )
    assert not error.retryable and "certificate" in str(error)
    assert server.received == []


async def test_smtp_wrong_password_is_permanent(settings: Settings, smtp_server: StartSmtp, trust: Certificate) -> None:
    server = await smtp_server(tls="starttls", auth=True)
    url = server.url(credentials=True, password="not-it")
    error = await refused(SmtpEmailProvider(smtp_settings(settings, url)).send(to="a@b.example", subject="S", body="B"))
    assert not error.retryable and error.code == "535"
    assert server.received == []


@pytest.mark.parametrize(
    ("refusal", "where", "retryable"),
    [
        ("450 4.2.1 Mailbox busy, try again later", "rcpt", True),
        ("451 4.3.0 Local error in processing", "data", True),
        ("452 4.3.1 Insufficient system storage", "rcpt", True),
        ("421 4.7.0 Too many connections, closing", "data", True),
        ("550 5.1.1 No such user here", "rcpt", False),
        ("554 5.7.1 Message rejected as spam", "data", False),
        ("552 5.3.4 Message too big", "data", False),
    ],
)
async def test_smtp_replies_4xx_retry_and_5xx_do_not(
    settings: Settings, smtp_server: StartSmtp, refusal: str, where: str, retryable: bool
) -> None:
    server = await smtp_server()
    if where == "rcpt":
        server.handler.refuse_rcpt = refusal
    else:
        server.handler.refuse_data = refusal
    error = await refused(
        SmtpEmailProvider(smtp_settings(settings, server.url())).send(to="a@b.example", subject="S", body="B")
    )
    assert error.retryable is retryable and not error.opted_out
    assert error.code == refusal[:3] and refusal[4:] in str(error)
    assert server.received == []


async def test_smtp_unreachable_is_retryable(settings: Settings, closed_port: int) -> None:
    provider = SmtpEmailProvider(smtp_settings(settings, f"smtp://127.0.0.1:{closed_port}"))
    error = await refused(provider.send(to="a@b.example", subject="S", body="B"))
    assert error.retryable


@pytest.mark.parametrize(
    "url",
    [None, "", "http://mail.example:25", "smtp://", "smtp://mail.example:notaport"],
)
async def test_smtp_configuration_problems_name_the_setting(settings: Settings, url: str | None) -> None:
    error = await refused(SmtpEmailProvider(smtp_settings(settings, url)).send(to="a@b.example", subject="S", body="B"))
    assert not error.retryable and "STAGEVOTE_SMTP_URL" in str(error)


def test_smtp_urls_default_their_ports_and_decode_credentials() -> None:
    server = providers.SmtpServer.from_url("smtp://user%40example.com:p%40ss%3Aword@mail.example")
    assert (server.host, server.port, server.implicit_tls) == ("mail.example", 587, False)
    assert (server.username, server.password) == ("user@example.com", SMTP_PASSWORD)
    server = providers.SmtpServer.from_url("smtps://mail.example")
    assert (server.port, server.implicit_tls, server.username) == (465, True, None)
    assert providers.SmtpServer.from_url("SMTP://relay:2525").port == 2525


def test_the_console_providers_are_the_default(settings: Settings) -> None:
    plain = Settings(database_url=settings.database_url, secret_key=settings.secret_key)
    assert isinstance(sms_provider_for(plain), providers.ConsoleSmsProvider)
    assert isinstance(email_provider_for(plain), providers.ConsoleEmailProvider)
