"""Settings: every knob of stagevote, read from `STAGEVOTE_*` environment variables."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")
SUPPORTED_DATABASE_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite"})


class ConfigurationError(RuntimeError):
    """The settings cannot run a server; the message says what to change."""


class Settings(BaseSettings):
    """Configuration of one stagevote process."""

    model_config = SettingsConfigDict(env_prefix="STAGEVOTE_", env_file=None, extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR}/stagevote.db"
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="stagevote:", description="every Redis key and channel starts with it")
    broker_url: str = "memory://"
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000

    default_phone_region: str = Field(default="US", description="region of phone numbers written without +country code")
    sms_provider: Literal["console", "twilio"] = "console"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_url: str = "https://api.twilio.com"

    email_provider: Literal["console", "smtp", "sendgrid"] = "console"
    email_from: str = "stagevote <no-reply@stagevote.local>"
    smtp_url: str | None = None
    sendgrid_api_key: str | None = None
    sendgrid_api_url: str = "https://api.sendgrid.com"

    sms_per_second: float = Field(default=10.0, gt=0, description="most SMS handed to the provider per second")
    email_per_second: float = Field(default=20.0, gt=0, description="most e-mails handed to the provider per second")
    delivery_sending_timeout_seconds: float = Field(
        default=120, gt=0, description="a message still 'sending' after this is sent again (its worker died)"
    )
    delivery_max_attempts: int = Field(default=6, ge=1, description="tries before a message is marked failed")
    recap_storage: str = f"file://{DEFAULT_DATA_DIR}/recaps"
    sentry_dsn: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    metrics_token: str | None = None
    ready_timeout_seconds: float = Field(default=2.0, gt=0, description="how long /ready waits for each dependency")

    db_pool_size: int = Field(default=20, ge=1, description="database connections per process (+50% overflow)")
    db_pool_pre_ping: bool = Field(default=False, description="test each connection before use (one round trip)")
    hot_cache_seconds: float = Field(
        default=2.0, ge=0, description="how long the vote path trusts its copy of an event"
    )
    live_emit_seconds: float = Field(default=0.25, gt=0, description="coalescing window of live leaderboard emits")
    round_clock_seconds: float = Field(default=1.0, ge=0, description="how often timed rounds are checked; 0: never")
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    claim_token_days: int = 14
    login_rate_per_account: str = Field(default="10/minute", description="limits notation")
    login_rate_per_ip: str = Field(default="30/minute", description="limits notation")
    secret_key_file: Path = DEFAULT_DATA_DIR / "secret_key"
    # the vote path's group commit, and how many server processes `serve` starts
    vote_writer_connections: int = Field(
        default=2, ge=0, le=16, description="connections of the vote path's group commit (PostgreSQL); 0: none"
    )
    vote_batch_max: int = Field(default=256, ge=1, le=10_000, description="most votes in one group-commit statement")
    workers: int = Field(default=1, ge=1, description="server processes `stagevote serve` starts (one per core)")

    @model_validator(mode="after")
    def _no_trailing_slash(self) -> Settings:
        self.public_url = self.public_url.rstrip("/")
        self.twilio_api_url = self.twilio_api_url.rstrip("/")
        self.sendgrid_api_url = self.sendgrid_api_url.rstrip("/")
        return self

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if scheme not in SUPPORTED_DATABASE_SCHEMES:
            raise ValueError("a postgresql://, postgresql+asyncpg:// or sqlite:/// URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def uses_postgresql(self) -> bool:
        return self.database_url.startswith("postgres")

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or on the embedded default generated once and kept on disk."""
        if self.secret_key:
            return self.secret_key
        if self.uses_postgresql:
            raise ConfigurationError(
                "STAGEVOTE_SECRET_KEY is not set. With PostgreSQL every instance must sign tokens "
                "with the same key: set STAGEVOTE_SECRET_KEY to a long random string "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        return _read_or_create_key(self.secret_key_file)


MIN_SECRET_KEY_LENGTH = 32


def _read_or_create_key(path: Path) -> str:
    """The key kept in `path`, created there (mode 0600) by whichever process comes first.

    The key is written to a private temporary file and linked into place, so a concurrent
    reader (another worker starting) sees either no file or the whole key, never a half-written
    or world-readable one, and two processes starting together end up with the same key.
    """
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(descriptor, "w") as file:
                    file.write(secrets.token_urlsafe(48))
                with contextlib.suppress(FileExistsError):  # another process was first: use its key
                    os.link(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"The secret key file {path} cannot be read or created ({exc.strerror or exc}). Point "
            "STAGEVOTE_SECRET_KEY_FILE at a writable place, or set STAGEVOTE_SECRET_KEY."
        ) from exc
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            f"The secret key file {path} is empty or too short to sign tokens. Delete it to have a new "
            "key generated (every token issued so far stops working), or set STAGEVOTE_SECRET_KEY."
        )
    return key
