"""Cryptographic primitives: argon2id password hashes, signed JWTs with a pinned algorithm, opaque tokens."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic_core import from_json

from stagevote.core.errors import ServiceUnavailable

T = TypeVar("T")
JWT_ALGORITHM = "HS256"
_hasher = PasswordHasher()  # argon2id, the library's RFC 9106 defaults


class InvalidToken(Exception):
    """A token that is malformed, tampered with, expired or meant for something else."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the account does not exist, so login takes as long either way.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


class PasswordHashing:
    """argon2id off the event loop: each hash or verify runs in a worker thread, at most `concurrency` at once.

    An argon2id hash costs a few hundred milliseconds of CPU by design; on the event loop it would stall
    every vote, webhook and live socket of the process meanwhile. The slots bound the CPU that signups
    and logins take; at most `queue` more requests wait for a slot, and past that the answer is a 503
    with `Retry-After` rather than a growing line of requests each holding a database connection.
    """

    def __init__(self, *, concurrency: int, queue: int) -> None:
        self._concurrency = concurrency
        self._queue = queue
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a hashing slot now."""
        return self._waiting

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:  # a semaphore belongs to one event loop
            self._slots, self._loop = asyncio.Semaphore(self._concurrency), loop
        return self._slots

    async def _run(self, work: Callable[[], T]) -> T:
        slots = self._semaphore()
        if slots.locked() and self._waiting >= self._queue:
            raise ServiceUnavailable("Too many sign-ins at once; try again in a moment.", retry_after=1)
        self._waiting += 1
        try:
            await slots.acquire()
        finally:
            self._waiting -= 1
        try:
            done = asyncio.get_running_loop().run_in_executor(None, work)
        except BaseException:
            slots.release()
            raise
        # the slot is free when the thread is done, even if the request that wanted it was cancelled meanwhile
        done.add_done_callback(lambda _: slots.release())
        return await asyncio.shield(done)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: hash_password(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(lambda: verify_password(password_hash, password))


def opaque_token(prefix: str = "") -> str:
    """A random, URL-safe secret (refresh tokens, API keys)."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """How an opaque secret is stored: its SHA-256, never the secret itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_jti() -> str:
    return uuid.uuid4().hex


def encode_jwt(claims: dict[str, Any], *, secret: str, purpose: str, lifetime: dt.timedelta) -> str:
    now = dt.datetime.now(dt.UTC)
    payload = {**claims, "typ": purpose, "iat": now, "exp": now + lifetime}
    return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)


def decode_jwt(token: str, *, secret: str, purpose: str) -> dict[str, Any]:
    """The claims of a token signed by us for `purpose`; anything else raises InvalidToken."""
    if token.startswith(_OUR_HEADER):
        claims = _our_claims(token, secret)
    else:  # any other header: PyJWT's general path, which refuses what it must (`alg: none`, other algorithms)
        try:
            claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "iat", "typ"]})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
    if claims.get("typ") != purpose:
        raise InvalidToken(f"not a {purpose} token")
    return claims


# The first segment of every token `encode_jwt` makes (PyJWT's own header for HS256). A token that
# starts with it is checked by `_our_claims`: the same checks as `jwt.decode` above (HS256 signature,
# exp, iat, nbf, required claims) at a fifth of the cost, for the vote path's ballot on every vote.
_OUR_HEADER = jwt.encode({}, "k" * 32, algorithm=JWT_ALGORITHM).partition(".")[0] + "."


@functools.lru_cache(maxsize=8)
def _signer(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed with `secret`, copied for each token: the key's set-up is done once, not per vote."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _our_claims(token: str, secret: str) -> dict[str, Any]:
    signing_input, _, signature = token.rpartition(".")
    payload_segment = signing_input[len(_OUR_HEADER) :]
    if "." in payload_segment or not payload_segment:
        raise InvalidToken("Not enough segments" if not payload_segment else "Invalid token structure")
    try:
        expected = _b64decode(signature)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("Invalid crypto padding") from exc
    signer = _signer(secret).copy()
    signer.update(signing_input.encode())
    if not hmac.compare_digest(signer.digest(), expected):
        raise InvalidToken("Signature verification failed")
    try:
        claims = from_json(_b64decode(payload_segment))  # pydantic's parser: the stdlib's at half the cost
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("Invalid payload") from exc
    if not isinstance(claims, dict):
        raise InvalidToken("Invalid payload string: must be a json object")
    for claim in ("exp", "iat", "typ"):
        if claim not in claims:
            raise InvalidToken(f'Token is missing the "{claim}" claim')
    now = time.time()
    for claim in ("exp", "iat", "nbf"):
        if claim in claims and (isinstance(claims[claim], bool) or not isinstance(claims[claim], int | float)):
            raise InvalidToken(f"The {claim} claim must be a number")
    if claims["exp"] <= now:
        raise InvalidToken("Signature has expired")
    if claims["iat"] > now or claims.get("nbf", 0) > now:
        raise InvalidToken("The token is not yet valid")
    return claims
