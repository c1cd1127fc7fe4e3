"""Every query of the auth domain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select, update

from stagevote.auth.models import ApiKey, RefreshToken, Role, User
from stagevote.core.repository import Repository


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def count_admins(self) -> int:
        return int(await self.session.scalar(select(func.count()).where(User.role == Role.ADMIN.value)) or 0)


class RefreshTokenRepository(Repository[RefreshToken]):
    model = RefreshToken

    async def spend(self, token_hash: str, *, now: dt.datetime) -> RefreshToken | None:
        """Mark a live token used, atomically; None if it is unknown, spent, revoked or expired."""
        return await self.session.scalar(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken)
        )

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        return await self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))

    async def revoke_family(self, family_id: str, *, now: dt.datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def get_live_by_hash(self, key_hash: str) -> ApiKey | None:
        return await self.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))

    async def list_for_user(self, user_id: int, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        statement = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
        return await self.page(statement, limit=limit, offset=offset)
