"""Cryptographic primitives: argon2id password hashes, signed JWTs with a pinned algorithm, opaque tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "iat", "typ"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.get("typ") != purpose:
        raise InvalidToken(f"not a {purpose} token")
    return claims
