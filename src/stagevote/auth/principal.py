"""Who is calling: a user by access token or API key, and what that allows at a glance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stagevote.auth.models import Role, User


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. API keys act as their owner, read-only."""

    user: User
    via_api_key: bool = False
    jti: str | None = None
    family_id: str | None = None
    expires_at: dt.datetime | None = None

    @property
    def user_id(self) -> int:
        return self.user.id

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
