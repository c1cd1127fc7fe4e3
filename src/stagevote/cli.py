"""The `stagevote` command: serve, migrate, create-user."""

from __future__ import annotations

import asyncio
import sys

import click
import uvicorn

from stagevote.auth import service as auth_service
from stagevote.auth.models import Role
from stagevote.config import ConfigurationError, Settings
from stagevote.core.db import create_engine, create_sessionmaker, unit_of_work
from stagevote.core.errors import ProblemError
from stagevote.migrations import upgrade


@click.group()
def main() -> None:
    """stagevote: live event voting."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default: STAGEVOTE_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: STAGEVOTE_PORT, 8000).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API."""
    settings = Settings()
    try:
        settings.resolved_secret_key()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    uvicorn.run(
        "stagevote.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        log_config=None,
    )


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = Settings()
    asyncio.run(upgrade(settings.database_url))
    click.echo("database is up to date")


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.FAN.value, show_default=True)
def create_user(email: str, password: str, role: str) -> None:
    """Create an account with any role (the first admin comes from here)."""
    if len(password) < 8:
        raise click.ClickException("the password needs at least 8 characters")

    async def run() -> int:
        engine = create_engine(Settings().database_url, pool_size=1)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                user = await auth_service.create_user(
                    session=session, email=email.strip().lower(), password=password, role=Role(role)
                )
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(run())
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created user {user_id} ({email}, {role})")


if __name__ == "__main__":
    sys.exit(main())
