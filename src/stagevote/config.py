"""Settings: every knob of stagevote, read from `STAGEVOTE_*` environment variables."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import re
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")
SUPPORTED_DATABASE_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite"})
# price of one outbound SMS segment by region (USD): rough figures of the order of public list prices, for the
# dry run's estimate only; set STAGEVOTE_SMS_PRICES to your contract's (README, "Honest messaging")
DEFAULT_SMS_PRICES = {
    "US": "0.0083", "CA": "0.0083", "GB": "0.0524", "IE": "0.0792", "DE": "0.0887", "FR": "0.0865",
    "ES": "0.0861", "MX": "0.0520", "AU": "0.0515", "default": "0.1000",
}  # fmt: skip


class ConfigurationError(RuntimeError):
    """The settings cannot run a server; the message says what to change."""


class ConnectionURL(SecretStr):
    """A URL that may carry a password (`postgresql://user:pw@host/db`): pydantic's `SecretStr`, whose `str`
    and repr show the URL without its password (`postgresql://user:***@host/db`), so logs and errors still
    say where it points.

    The URL itself is `get_secret_value()`; a query parameter that names a secret (`?password=…`) is
    masked as well.
    """

    def _display(self) -> str:
        return _masked_url(self.get_secret_value())

    def password(self) -> str | None:
        """The password of the URL as written (percent-encoded), if it has one."""
        parts = _with_password(self.get_secret_value())
        return parts[2] if parts is not None else None


_SECRET_QUERY = re.compile(r"(?i)([?&][^=&#]*(?:pass|secret|token|key)[^=&#]*=)[^&#]*")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _masked_url(url: str) -> str:
    """`url` with the password of its user info and secret-named query values replaced by `***`."""
    if (parts := _with_password(url)) is not None:
        start, user, _, rest = parts
        url = f"{start}{user}:***@{rest}"
    return _SECRET_QUERY.sub(r"\1***", url)


def _with_password(url: str) -> tuple[str, str, str, str] | None:
    """`scheme://`, user, password (as written) and what follows the `@` of a URL with a password; None for
    a URL without.

    The password ends at the URL's last `@`: one written unquoted, `@` or `/` in it, is hidden whole (where
    a parser stopping at the first `@` or `/` would show its end as the host).
    """
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    userinfo, at, rest = url[scheme.end() :].rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not (at and colon and password) or any(c in user for c in "/?#@"):
        return None
    return scheme.group(), user, password, rest


def _networks(value: object) -> object:
    """`TRUSTED_PROXIES` as written in the environment: CIDRs or addresses, separated by commas or spaces
    (or a JSON list of them).

    An address is its own /32 (/128); host bits in a CIDR are ignored (`10.0.0.1/8` is `10.0.0.0/8`).
    """
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError("a JSON list of addresses or CIDRs, or them separated by commas") from exc
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return value
    networks = []
    for item in items:
        if isinstance(item, str) and not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{item!r} is not an address or a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)") from exc
    return networks


def served_url(host: str, port: int) -> str:
    """The address of a server listening on `host`:`port`, as a browser on this machine opens it."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104  (naming it, not binding it)
    return f"http://{shown}:{port}" if ":" not in shown else f"http://[{shown}]:{port}"


class Settings(BaseSettings):
    """Configuration of one stagevote process."""

    model_config = SettingsConfigDict(
        env_prefix="STAGEVOTE_",
        env_file=None,
        extra="ignore",
        hide_input_in_errors=True,  # errors never echo a secret
    )

    database_url: ConnectionURL = ConnectionURL(f"sqlite:///{DEFAULT_DATA_DIR}/stagevote.db")
    redis_url: ConnectionURL | None = None
    redis_key_prefix: str = Field(default="stagevote:", description="every Redis key and channel starts with it")
    broker_url: ConnectionURL = ConnectionURL("memory://")
    secret_key: SecretStr | None = None
    public_url: str = ""  # unset: where `serve` listens (HOST, PORT), as `served_url` writes it
    host: str = "127.0.0.1"
    port: int = 8000

    default_phone_region: str = Field(default="US", description="region of phone numbers written without +country code")
    sms_provider: Literal["console", "twilio"] = "console"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_url: str = "https://api.twilio.com"

    email_provider: Literal["console", "smtp", "sendgrid"] = "console"
    email_from: str = "stagevote <no-reply@stagevote.local>"
    smtp_url: ConnectionURL | None = None
    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_url: str = "https://api.sendgrid.com"

    sms_per_second: float = Field(default=10.0, gt=0, description="most SMS handed to the provider per second")
    email_per_second: float = Field(default=20.0, gt=0, description="most e-mails handed to the provider per second")
    delivery_sending_timeout_seconds: float = Field(
        default=120, gt=0, description="a message 'sending' this long is checked with the provider (its worker died)"
    )
    delivery_max_attempts: int = Field(default=6, ge=1, description="tries before a message is marked failed")
    delivery_concurrency: int = Field(
        default=8, ge=1, description="most messages one process hands to providers at once (each holds a connection)"
    )
    recap_storage: str = f"file://{DEFAULT_DATA_DIR}/recaps"
    recap_public_url: str | None = Field(
        default=None,
        description="base URL of the stored recap pages when S3 is fronted by a CDN (default: the bucket's)",
    )
    s3_endpoint_url: str | None = Field(default=None, description="an S3-compatible store instead of AWS S3")
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = Field(default=None, description="default: boto3's own credential chain")
    s3_secret_access_key: SecretStr | None = None
    sse_ping_seconds: float = Field(default=15.0, gt=0, description="keep-alive comments of server-sent event streams")
    sentry_dsn: SecretStr | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    metrics_token: SecretStr | None = None
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
    screen_join_number: str | None = Field(
        default=None, description="the number the venue screen asks fans to text; default: TWILIO_FROM"
    )
    screen_frame_ancestors: str = Field(
        default="'none'", description="CSP frame-ancestors of the venue screen: who may embed it in a frame"
    )
    # --- holding under attack (issue 14) -------------------------------------------------------
    trusted_proxies: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="proxies whose X-Forwarded-For is believed (CIDRs or addresses, comma-separated)",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="largest request body (413 above)")
    confirm_rate_per_ip: str = Field(default="60/minute", description="limits notation")
    confirm_rate_per_attendee: str = Field(default="10/10 minutes", description="limits notation")
    signup_rate_per_ip: str = Field(default="10/minute", description="limits notation")
    password_hash_concurrency: int = Field(
        default=1, ge=1, description="argon2 hashes computed at once (each in a worker thread, on 4 lanes)"
    )
    password_hash_queue: int = Field(
        default=8, ge=0, description="requests that may wait for a hashing slot before 503"
    )
    live_busy_room: int = Field(
        default=10_000,
        ge=1,
        description="leaderboard sockets of an event on one instance past which it emits less often",
    )
    live_busy_emit_seconds: float = Field(default=1.0, gt=0, description="leaderboard emit interval of a busy room")
    # the vote path's group commit, and how many server processes `serve` starts
    vote_writer_connections: int = Field(
        default=1, ge=0, le=16, description="connections of the vote path's group commit (PostgreSQL); 0: none"
    )
    vote_batch_max: int = Field(default=256, ge=1, le=10_000, description="most votes in one group-commit statement")
    workers: int = Field(default=1, ge=1, description="server processes `stagevote serve` starts (one per core)")
    # a Redis that goes away, and the tally's reconciler (issue 14)
    redis_timeout_seconds: float = Field(
        default=0.25, gt=0, description="how long a Redis call waits for its reply: a hung Redis fails fast"
    )
    redis_connect_timeout_seconds: float = Field(
        default=2.0, gt=0, description="how long opening a Redis connection may take (a burst opens hundreds)"
    )
    tally_reconcile_seconds: float = Field(
        default=30.0, ge=0, description="how often open rounds' leaderboards are checked against the votes; 0: never"
    )
    # --- honest messaging and the consent record (issue 16) ----------------------------------
    sms_prices: dict[str, Decimal] = Field(
        default_factory=lambda: {k: Decimal(v) for k, v in DEFAULT_SMS_PRICES.items()},
        description="price of one SMS segment by region code, JSON (`default`: any other region)",
    )
    sms_price_currency: str = Field(default="USD", description="currency of `sms_prices`")
    quiet_hours_start: dt.time = Field(
        default=dt.time(21, 0), description="marketing SMS wait from this local time of the recipient (=end: never)"
    )
    quiet_hours_end: dt.time = Field(default=dt.time(8, 0), description="... until this local time")
    marketing_per_day: int = Field(
        default=3, ge=0, description="most marketing messages per fan, event and channel in 24 hours; 0: no cap"
    )
    terms_version: str = Field(default="2026-01", max_length=40, description="the terms a web join agrees to")

    @model_validator(mode="after")
    def _no_trailing_slash(self) -> Settings:
        self.public_url = self.public_url.rstrip("/") or served_url(self.host, self.port)
        self.twilio_api_url = self.twilio_api_url.rstrip("/")
        self.sendgrid_api_url = self.sendgrid_api_url.rstrip("/")
        return self

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: ConnectionURL) -> ConnectionURL:
        scheme = value.get_secret_value().partition("://")[0]
        if scheme not in SUPPORTED_DATABASE_SCHEMES:
            raise ValueError("a postgresql://, postgresql+asyncpg:// or sqlite:/// URL")
        return value

    @field_validator("secret_key", mode="before")
    @classmethod
    def _long_secret_key(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and not value.strip():
            return None  # set but empty: as if unset
        if isinstance(value, str) and len(value.strip()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"too short to sign tokens: at least {MIN_SECRET_KEY_LENGTH} characters, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        return _networks(value)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("screen_frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        sources = value.split()
        if not sources or not all(_is_csp_source(source) for source in sources):
            raise ValueError("space-separated CSP sources, e.g. 'self' https://obs.example.com, or 'none'")
        return " ".join(sources)

    @property
    def uses_postgresql(self) -> bool:
        return self.database_url.get_secret_value().startswith("postgres")

    def resolved_secret_key(self) -> SecretStr:
        """The signing key: configured, or on the embedded default generated once and kept on disk."""
        if self.secret_key is not None:
            return self.secret_key
        if self.uses_postgresql:
            raise ConfigurationError(
                "STAGEVOTE_SECRET_KEY is not set. With PostgreSQL every instance must sign tokens "
                "with the same key: set STAGEVOTE_SECRET_KEY to a long random string "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        return SecretStr(_read_or_create_key(self.secret_key_file))


MIN_SECRET_KEY_LENGTH = 32


def _is_csp_source(source: str) -> bool:
    """A CSP source expression that cannot end the directive or start another (no `;`, `,`, quotes)."""
    if source in ("'none'", "'self'"):
        return True
    return source.isascii() and source.isprintable() and not any(c in source for c in ";,'\"")


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
