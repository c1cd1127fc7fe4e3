"""Settings: every knob of stagevote, read from `STAGEVOTE_*` environment variables."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class ConfigurationError(RuntimeError):
    """The settings cannot run a server; the message says what to change."""


class Settings(BaseSettings):
    """Configuration of one stagevote process."""

    model_config = SettingsConfigDict(env_prefix="STAGEVOTE_", env_file=None, extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR}/stagevote.db"
    redis_url: str | None = None
    broker_url: str = "memory://"
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000

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

    recap_storage: str = f"file://{DEFAULT_DATA_DIR}/recaps"
    sentry_dsn: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    metrics_token: str | None = None

    access_token_minutes: int = 15
    refresh_token_days: int = 30
    claim_token_days: int = 14
    login_rate_per_account: str = Field(default="10/minute", description="limits notation")
    login_rate_per_ip: str = Field(default="30/minute", description="limits notation")
    secret_key_file: Path = DEFAULT_DATA_DIR / "secret_key"

    @model_validator(mode="after")
    def _no_trailing_slash(self) -> Settings:
        self.public_url = self.public_url.rstrip("/")
        self.twilio_api_url = self.twilio_api_url.rstrip("/")
        self.sendgrid_api_url = self.sendgrid_api_url.rstrip("/")
        return self

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
        path = self.secret_key_file
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key
