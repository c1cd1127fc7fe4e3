"""Secrets stay secret: not in Settings and Runtime reprs, nor in what Sentry receives; a short key is refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr, ValidationError

from stagevote.config import ConnectionURL, Settings
from stagevote.core.runtime import Runtime

KEY = "signing-key-4c1b8e77d2f94a0fb8c3e5d6a7b8c9d0"
DB_PASSWORD = "db-pass-9f83d1"
SMTP_PASSWORD = "smtp-pass-77aa21"
REDIS_PASSWORD = "redis-pass-5c5c5c"
TWILIO_TOKEN = "twilio-token-0a1b2c3d4e5f"
SENDGRID_KEY = "SG.sendgrid-key-f00dfeed"
METRICS_TOKEN = "metrics-token-beefcafe"
SECRETS = (KEY, DB_PASSWORD, SMTP_PASSWORD, REDIS_PASSWORD, TWILIO_TOKEN, SENDGRID_KEY, METRICS_TOKEN)


def secret_settings(**more: object) -> Settings:
    return Settings(
        database_url=f"postgresql://stagevote:{DB_PASSWORD}@127.0.0.1:1/stagevote",
        redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
        secret_key=KEY,
        twilio_auth_token=TWILIO_TOKEN,
        sendgrid_api_key=SENDGRID_KEY,
        smtp_url=f"smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:1",
        metrics_token=METRICS_TOKEN,
        **more,
    )


async def test_settings_and_runtime_reprs_hold_no_secret() -> None:
    settings = secret_settings()
    runtime = Runtime.build(settings)  # nothing connects until used
    try:
        secret_fields = [value for value in dict(settings).values() if isinstance(value, SecretStr)]
        shown = "\n".join(
            [repr(settings), str(settings), settings.model_dump_json(), repr(runtime), str(runtime)]
            + [f"{value} {value!r}" for value in [*secret_fields, runtime.secret_key]]
        )
        for secret in SECRETS:
            assert secret not in shown
        # where it points is still told, in the repr and in str() (a JSON dump masks the whole URL)
        assert "ConnectionURL('postgresql://stagevote:***@127.0.0.1:1/stagevote')" in shown
        assert f"{settings.redis_url} {settings.smtp_url}" == "redis://:***@127.0.0.1:1/0 smtp://mailer:***@127.0.0.1:1"
        # where a secret is used, it is asked for by name
        assert runtime.secret_key.get_secret_value() == KEY
        assert settings.twilio_auth_token is not None and settings.twilio_auth_token.get_secret_value() == TWILIO_TOKEN
        assert settings.sendgrid_api_key is not None and settings.sendgrid_api_key.get_secret_value() == SENDGRID_KEY
        assert settings.database_url.get_secret_value().startswith(f"postgresql://stagevote:{DB_PASSWORD}@")
    finally:
        await runtime.close()


def test_a_url_password_is_hidden_however_it_is_written() -> None:
    for url, shown in [
        ("postgresql://u:p@ss:w/rd@db:5432/x", "postgresql://u:***@db:5432/x"),  # written unquoted: to the last @
        ("amqp://guest:guest@rabbit//", "amqp://guest:***@rabbit//"),
        ("postgresql://u@db/x?sslmode=require&password=hunter2", "postgresql://u@db/x?sslmode=require&password=***"),
        ("sqlite:///var/stagevote.db", "sqlite:///var/stagevote.db"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ]:
        assert str(ConnectionURL(url)) == shown
        assert repr(ConnectionURL(url)) == f"ConnectionURL({shown!r})"
        assert ConnectionURL(url).get_secret_value() == url
    assert ConnectionURL("postgresql://u:p%40ss@db/x").password() == "p%40ss"


def test_a_setting_in_error_is_reported_without_its_value() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(database_url=f"mysql://root:{DB_PASSWORD}@db/x", secret_key=KEY)
    assert DB_PASSWORD not in str(raised.value)


def test_a_short_secret_key_is_refused_at_start_up(tmp_path: Path) -> None:
    short = "only-20-characters!!"
    with pytest.raises(ValidationError, match="at least 32 characters") as raised:
        Settings(secret_key=short)
    assert short not in str(raised.value)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_") or k.startswith("STAGEVOTE_TEST_")},
        "STAGEVOTE_SECRET_KEY": short,
        "STAGEVOTE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    script = Path(sys.executable).parent / "stagevote"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "stagevote.cli"]
    finished = subprocess.run(
        [*command, "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0
    assert "STAGEVOTE_SECRET_KEY" in finished.stderr and "at least 32 characters" in finished.stderr
    assert short not in finished.stderr and "Traceback" not in finished.stderr


# --- Sentry -------------------------------------------------------------------------------------------


@asynccontextmanager
async def fake_sentry() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A loopback server speaking Sentry's ingestion API: it keeps every envelope it is sent."""
    received: list[bytes] = []

    async def envelope(request: web.Request) -> web.Response:
        received.append(await request.read())  # aiohttp undoes the gzip the SDK applies
        return web.json_response({"id": "0" * 32})

    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", envelope)
    app.router.add_post("/api/{project}/store/", envelope)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, received
    finally:
        await runner.cleanup()


# The app in a process of its own (Sentry's SDK patches the web framework process-wide): a route that
# fails with secrets in its message and its locals, called with a bearer token and a ballot link.
FAILING_APP = textwrap.dedent(
    """
    import asyncio, sys
    import sentry_sdk
    from httpx import ASGITransport, AsyncClient
    from stagevote.app import create_app
    from stagevote.config import ConnectionURL, Settings

    async def main() -> None:
        settings = Settings()
        app = create_app(settings)
        ballot = "eyJhbGciOiJIUzI1NiJ9.eyJhdHQiOjF9.c2lnbmF0dXJlLW9mLWEtYmFsbG90"

        async def checkout() -> None:
            password = "local-password-in-a-frame"
            # code that took the values out of their SecretStr and put them in a message: the scrubber's case
            connection = settings.database_url.get_secret_value()
            token, key = settings.twilio_auth_token.get_secret_value(), settings.secret_key.get_secret_value()
            raise RuntimeError(
                f"provider refused token {token} via {connection} for {settings.public_url}/b/{ballot} (key {key})"
            )

        app.add_api_route("/checkout", checkout)
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            r = await http.get("/checkout", headers={"Authorization": "Bearer svk_apikeyvalue0123456789"})
            print(r.status_code)
        sentry_sdk.flush(10)

    asyncio.run(main())
    """
)


async def test_sentry_receives_errors_without_secrets_or_locals(tmp_path: Path) -> None:
    async with fake_sentry() as (port, received):
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_") or k.startswith("STAGEVOTE_TEST_")
            },
            "STAGEVOTE_SENTRY_DSN": f"http://publickey@127.0.0.1:{port}/1",
            "STAGEVOTE_SECRET_KEY": KEY,
            "STAGEVOTE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "STAGEVOTE_DATABASE_URL": f"postgresql://stagevote:{DB_PASSWORD}@127.0.0.1:1/stagevote",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FAILING_APP,
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        assert out.decode().strip() == "500"
    raw = b"\n".join(received).decode()
    events = [json.loads(line) for line in raw.splitlines() if line.startswith("{") and '"exception"' in line]
    assert events, raw[:2000]
    # the error got there, and says what failed
    assert "RuntimeError" in raw and "provider refused token" in raw
    for secret in (TWILIO_TOKEN, DB_PASSWORD, KEY, "c2lnbmF0dXJlLW9mLWEtYmFsbG90", "svk_apikeyvalue0123456789"):
        assert secret not in raw, secret
    assert "local-password-in-a-frame" not in raw
    for event in events:
        for exception in event["exception"]["values"]:
            for frame in (exception.get("stacktrace") or {}).get("frames", []):
                assert "vars" not in frame, frame.get("function")
