"""Tokens as an attacker makes them from a genuine one, and the clock moved on, without knowing the token's claims.

The tests never assemble a token from claim names: they take one the app issued and change it (re-sign it with
another key, drop one of its claims, strip its signature), or move the clock past its expiry. A re-signature
with the right key is the positive control that proves the harness itself changes nothing else.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import time_machine

ANOTHER_KEY = "not-our-secret-but-long-enough-for-hs256-" + "z" * 20


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, read without checking anything."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def resigned(token: str, key: str, *, without: str | None = None, **changed: Any) -> str:
    """The token's own claims (less `without`, with `changed` registered claims such as `exp`) signed with `key`."""
    claims = {name: value for name, value in claims_of(token).items() if name != without}
    return jwt.encode({**claims, **changed}, key, algorithm="HS256")


def each_claim_dropped(token: str, key: str) -> Iterator[tuple[str, str]]:
    """For each claim of the token: its name, and the token without it, signed with `key`."""
    for name in claims_of(token):
        yield name, resigned(token, key, without=name)


def unsigned(token: str) -> str:
    """The token's claims with `alg: none` and no signature (what `jwt.encode(..., algorithm="none")` makes)."""
    return jwt.encode(claims_of(token), key=None, algorithm="none")


def alg_none_keeping_signature(token: str) -> str:
    """The header rewritten to `alg: none`, payload and signature kept: a verifier that trusts the header skips."""
    _, payload, signature = token.split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


@contextmanager
def clock_at(moment: dt.datetime) -> Iterator[None]:
    """Wall-clock time (time.time, datetime.now) moved to `moment`, still ticking; asyncio's monotonic clock is
    untouched, so timeouts and sleeps behave as before."""
    with time_machine.travel(moment, tick=True):
        yield


@contextmanager
def clock_moved(by: dt.timedelta) -> Iterator[None]:
    with clock_at(dt.datetime.now(dt.UTC) + by):
        yield
