"""Error tracking (Sentry) that carries no secret: no local variables, and a scrubber over every event sent.

Sentry would otherwise capture each frame's locals (a `Settings`, a password, a ballot token), request
headers and bodies, and exception messages as written. `include_local_variables=False` drops the
locals; `before_send` then walks the whole event (messages, exception values, breadcrumbs, request
data, extra) and replaces: the configured secrets wherever they appear, credentials in URLs, bearer
and JWT tokens (ballot links among them), our opaque tokens (`svk_…`, `svr_…`), and the values of
keys that name a secret (`password`, `token`, `authorization`, `code`…).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import sentry_sdk
from pydantic import SecretStr
from sentry_sdk.types import Event, Hint

from stagevote.config import ConnectionURL, Settings

FILTERED = "[Filtered]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[-_]?key|auth|credential|cookie|session|csrf|dsn|signature|^code$", re.IGNORECASE
)
_PATTERNS = (
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@"), r"\1" + FILTERED + "@"),  # scheme://user:pw@
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + FILTERED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), FILTERED),  # a JWT: ballot, access
    (re.compile(r"\b(svk|svr)_[A-Za-z0-9_-]{8,}"), FILTERED),  # API keys, refresh tokens
)
_MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


class Scrubber:
    """`before_send`: the event with every secret replaced by `[Filtered]`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}
        self._secrets = sorted(values, key=len, reverse=True)  # a longer secret first: it may contain a shorter

    def scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, FILTERED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def scrub(self, value: Any, key: str | None = None) -> Any:
        if key is not None and _SENSITIVE_KEY.search(key) and isinstance(value, str | int | float | bytes):
            return FILTERED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: self.scrub(v, k if isinstance(k, str) else None) for k, v in value.items()}
        if isinstance(value, list | tuple):
            # [name, value] pairs (request headers as Sentry sends them) keep the name's meaning
            if len(value) == 2 and isinstance(value[0], str) and _SENSITIVE_KEY.search(value[0]):
                return [value[0], FILTERED]
            return [self.scrub(v) for v in value]
        return value

    def before_send(self, event: Event, hint: Hint) -> Event | None:
        scrubbed: Event = self.scrub(event)
        return scrubbed


def secrets_of(settings: Settings, *extra: str) -> list[str]:
    """The secret values among the settings (and `extra`, e.g. a signing key read from its file)."""
    found: list[str] = []
    for value in dict(settings).values():
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        if isinstance(value, ConnectionURL) and (password := value.password()):
            # the password of a URL on its own, as written and decoded: drivers quote it in their errors
            found += [password, unquote(password)]
    return [*found, *extra]


def init_error_tracking(settings: Settings, *, release: str, secret_key: str | None = None) -> bool:
    """Send errors to Sentry when `SENTRY_DSN` is set (True); nothing otherwise (False)."""
    if not settings.sentry_dsn:
        return False
    scrubber = Scrubber(secrets_of(settings, *([secret_key] if secret_key else [])))
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=release,
        send_default_pii=False,
        include_local_variables=False,
        before_send=scrubber.before_send,
    )
    return True
