"""The `stagevote` command: serve, worker, migrate, create-user, demo, audit verify."""

from __future__ import annotations

import asyncio
import os
import sys

import click
import structlog
import uvicorn
from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from stagevote import __version__
from stagevote.auth import service as auth_service
from stagevote.auth.models import Role
from stagevote.auth.schemas import SignupRequest
from stagevote.config import ConfigurationError, Settings, served_url
from stagevote.core.db import create_engine, create_sessionmaker, show_setting, unit_of_work
from stagevote.core.errors import ProblemError
from stagevote.core.logging import configure_logging
from stagevote.migrations import upgrade
from stagevote.voting import seals as vote_seals
from stagevote.web import demo as web_demo
from stagevote.worker import run_worker

# What a database URL that is wrong, or a database that is down, unreachable or not migrated, raises.
_DATABASE_ERRORS = (OSError, DBAPIError, ArgumentError)


def _settings() -> Settings:
    """The settings from the environment, or a message naming the variable that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"STAGEVOTE_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from exc


def _database_failure(exc: BaseException, settings: Settings, hint: str) -> click.ClickException:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    where = str(settings.database_url).rsplit("@", 1)[-1]  # the host and database: not even the user
    return click.ClickException(f"the database ({where}) failed: {reason}. {hint}")


@click.group()
@click.version_option(__version__, prog_name="stagevote")
def main() -> None:
    """stagevote: live event voting."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default: STAGEVOTE_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Port (default: STAGEVOTE_PORT, 8000).")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Worker processes, one per core (default: STAGEVOTE_WORKERS, 1).",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API."""
    # the app in each worker reads its settings from the environment: what the command line says wins there
    # too (an unset PUBLIC_URL is where this server listens: links in messages, the demo's pages)
    for name, value in (("STAGEVOTE_HOST", host), ("STAGEVOTE_PORT", port)):
        if value is not None:
            os.environ[name] = str(value)
    settings = _settings()
    workers = workers if workers is not None else settings.workers
    if workers > 1 and not settings.redis_url:
        raise click.ClickException(
            "--workers above 1 needs STAGEVOTE_REDIS_URL: without Redis each worker keeps its own "
            "revoked tokens and rate limits, so a logout or a limit on one worker would not hold on another."
        )
    try:
        # on the embedded default this also creates the key file, once, before any worker starts
        settings.resolved_secret_key()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.uses_postgresql:
        warning = asyncio.run(_connection_budget(settings, workers))
        if warning:
            click.echo(f"warning: {warning}", err=True)
    _print_welcome(settings, settings.host, settings.port)
    uvicorn.run(
        "stagevote.app:create_server_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        proxy_headers=False,  # X-Forwarded-For is read by the app, from STAGEVOTE_TRUSTED_PROXIES only
        log_config=None,
        timeout_graceful_shutdown=10,  # a stuck connection must not hold up a deploy
        # the live stream's frames are a few hundred bytes, written once for thousands of sockets: a
        # compressor per socket would cost memory and CPU per client for nothing (realtime/fanout.py)
        ws_per_message_deflate=False,
    )


def connections_per_process(settings: Settings) -> int:
    """The most PostgreSQL connections one server process opens: its pool (+50% overflow) and the vote writer's."""
    return settings.db_pool_size + settings.db_pool_size // 2 + settings.vote_writer_connections


async def _connection_budget(settings: Settings, workers: int) -> str | None:
    """A sentence when `workers` processes could open more connections than PostgreSQL takes (None: they fit).

    Only this instance is counted: other instances and `stagevote worker` processes share the same limit.
    """
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with engine.connect() as connection:
            limit = int(await connection.scalar(show_setting("max_connections")) or 0)
            reserved = int(await connection.scalar(show_setting("superuser_reserved_connections")) or 0)
    except _DATABASE_ERRORS as exc:
        return str(_database_failure(exc, settings, "The connection budget was not checked.").message)
    finally:
        await engine.dispose()
    wanted = workers * connections_per_process(settings)
    if wanted <= limit - reserved:
        return None
    return (
        f"{workers} worker(s) × {connections_per_process(settings)} connections each (DB_POOL_SIZE "
        f"{settings.db_pool_size} + 50% overflow + VOTE_WRITER_CONNECTIONS {settings.vote_writer_connections}) "
        f"= {wanted}, more than PostgreSQL's max_connections {limit} less {reserved} reserved. Lower "
        "STAGEVOTE_DB_POOL_SIZE or the workers, or raise max_connections (or put PgBouncer in front)."
    )


@main.command()
@click.option("--concurrency", default=50, show_default=True, help="Tasks run at once.")
def worker(concurrency: int) -> None:
    """Deliver queued messages and keep the clocks (needs a redis:// or amqp:// BROKER_URL)."""
    settings = _settings()
    try:
        asyncio.run(run_worker(settings, concurrency=concurrency))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = _settings()
    try:
        asyncio.run(upgrade(settings.database_url.get_secret_value()))
    except _DATABASE_ERRORS as exc:
        raise _database_failure(exc, settings, "Is it running, and is STAGEVOTE_DATABASE_URL right?") from exc
    click.echo("database is up to date")


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when not given.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.FAN.value, show_default=True)
def create_user(email: str, password: str, role: str) -> None:
    """Create an account with any role (the first admin comes from here)."""
    try:
        # the same rules as signing up through the API, so the account can log in there
        account = SignupRequest.model_validate({"email": email, "password": password})
    except ValidationError as exc:
        reasons = "; ".join(f"--{error['loc'][0]}: {error['msg']}" for error in exc.errors())
        raise click.ClickException(reasons) from exc
    settings = _settings()

    async def run() -> int:
        engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                user = await auth_service.create_user(
                    session=session, email=account.email, password=account.password, role=Role(role)
                )
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(run())
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    except IntegrityError as exc:  # the same e-mail, created at the same moment by someone else
        raise click.ClickException(f"An account with e-mail {account.email} already exists.") from exc
    except _DATABASE_ERRORS as exc:
        raise _database_failure(exc, settings, "Has `stagevote migrate` been run on it?") from exc
    click.echo(f"created user {user_id} ({account.email}, {role})")


def _print_welcome(settings: Settings, host: str, port: int) -> None:
    """Where to go once the server is up; on a database without any event, how to get a demo.

    Plain lines for a person at a terminal; with `LOG_FORMAT=json`, one JSON log line like every other.
    """
    base = served_url(host, port)
    try:
        empty = asyncio.run(web_demo.has_no_event(settings))
    except _DATABASE_ERRORS:
        empty = False  # not migrated, or not reachable: the server says so itself
    demo_hint = (
        "No event yet. For a demo (an admin, a live event with artists and an open round): stop the server "
        "and run `make demo` (or `stagevote demo`, then serve again)."
    )
    if settings.log_format == "json":
        configure_logging(log_format=settings.log_format, level=settings.log_level)
        structlog.get_logger("stagevote.cli").info(
            "serving", console=f"{base}/console", docs=f"{base}/docs", hint=demo_hint if empty else None
        )
        return
    click.echo(f"stagevote {__version__}: console {base}/console · API docs {base}/docs")
    if empty:
        click.echo(demo_hint)


@main.command()
def demo() -> None:
    """Create a demo admin and a live event with artists, an open round and votes; print the pages' URLs."""
    settings = _settings()
    try:
        made = asyncio.run(web_demo.create_demo(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    except _DATABASE_ERRORS as exc:
        raise _database_failure(exc, settings, "Has `stagevote migrate` been run on it?") from exc
    base = settings.public_url
    click.echo(f"demo event {made.event_id} is live, round 1 open (keyword {made.keyword})")
    click.echo(f"  console  {base}/console   sign in as {made.email} / {made.password}")
    click.echo(f"  screen   {base}/e/{made.event_id}")
    click.echo(f"  join     {base}/j/{made.keyword}   (codes go to the server log with the console SMS provider)")
    click.echo(f"  ballot   {base}/b/{made.ballot_token}")
    click.echo(f"  ballot   {base}/b/{made.ballot_token_es}   (in Spanish)")
    click.echo("Serve with `stagevote serve` (`make demo` does) and open them.")


@main.group()
def audit() -> None:
    """Check the sealed record."""


@audit.command("verify")
@click.argument("event_id", metavar="EVENT", type=int)
def audit_verify(event_id: int) -> None:
    """Recompute every sealed round of EVENT from the votes table; exit 1 naming each vote changed, added or
    removed since its round was sealed."""
    settings = _settings()

    async def run() -> vote_seals.AuditReport:
        secret_key = settings.resolved_secret_key().get_secret_value()  # receipts are recomputed with the server's key
        engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await vote_seals.verify_event(session=session, secret_key=secret_key, event_id=event_id)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    except _DATABASE_ERRORS as exc:
        raise _database_failure(exc, settings, "Has `stagevote migrate` been run on it?") from exc
    if report.holds:
        click.echo(f"event {event_id}: all {len(report.seals)} seals hold")
        return
    for check in report.seals:
        for problem in check.problems:
            click.echo(problem)
    broken = sum(1 for check in report.seals if check.problems)
    click.echo(f"event {event_id}: {broken} of {len(report.seals)} seals do not hold", err=True)
    sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
