"""Wire models of the auth domain."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import EmailStr, Field, field_validator

from stagevote.auth.models import Role
from stagevote.core.schemas import Schema

Language = Literal["en", "es"]


def _normalize_email(value: str) -> str:
    return value.strip().lower()


class SignupRequest(Schema):
    """A new account; any `role` sent is ignored: every signup is a fan."""

    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    language_pref: Language | None = None

    _email = field_validator("email")(_normalize_email)


class LoginRequest(Schema):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)

    _email = field_validator("email")(_normalize_email)


class RefreshRequest(Schema):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutRequest(Schema):
    refresh_token: str | None = Field(default=None, max_length=200)


class UserRead(Schema):
    id: int
    email: str
    role: Role
    language_pref: str | None
    created_at: dt.datetime


class TokenPair(Schema):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserRead


class RoleUpdate(Schema):
    role: Role


class ApiKeyCreate(Schema):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyRead(Schema):
    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class ApiKeyCreated(Schema):
    id: int
    name: str
    key: str = Field(description="Shown once; send it as `Authorization: Bearer <key>`. Read-only.")
    created_at: dt.datetime
