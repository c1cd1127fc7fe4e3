"""The rules of accounts: signup, login, token rotation and revocation, roles, API keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.audit import service as audit
from stagevote.audit.service import Caller
from stagevote.auth.models import ApiKey, RefreshToken, Role, User
from stagevote.auth.principal import Principal
from stagevote.auth.repository import ApiKeyRepository, RefreshTokenRepository, UserRepository
from stagevote.core.db import after_commit, unit_of_work, utcnow
from stagevote.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from stagevote.core.network import UNKNOWN as UNKNOWN_CLIENT
from stagevote.core.runtime import Runtime
from stagevote.core.security import (
    DUMMY_PASSWORD_HASH,
    InvalidToken,
    decode_jwt,
    encode_jwt,
    hash_password,
    new_jti,
    opaque_token,
    token_digest,
)

ACCESS = "access"
API_KEY_PREFIX = "svk_"
REFRESH_PREFIX = "svr_"
API_KEY_USE_RESOLUTION = dt.timedelta(hours=1)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


class RefreshTokenReused(Unauthorized):
    """A spent refresh token came back: its whole family is revoked, and that must stick."""

    commit_session = True


def _denylist_key_jti(jti: str) -> str:
    return f"denylist:jti:{jti}"


def _denylist_key_family(family_id: str) -> str:
    return f"denylist:family:{family_id}"


async def signup(
    *,
    session: AsyncSession,
    runtime: Runtime,
    email: str,
    password: str,
    language_pref: str | None,
    client_ip: str = UNKNOWN_CLIENT,
) -> IssuedTokens:
    """A new fan account. Rate-limited per caller address (`client_ip`: 429 with `Retry-After`).

    The password is hashed first, off the event loop (`runtime.passwords`), before any query: a signup
    waiting for a hashing slot holds no database connection, and an e-mail already taken costs the same.
    """
    await runtime.limiter.hit(
        runtime.settings.signup_rate_per_ip, "signup-ip", client_ip, what="sign-ups from this address"
    )
    password_hash = await runtime.passwords.hash(password)
    users = UserRepository(session)
    if await users.get_by_email(email) is not None:
        raise Conflict("An account with this e-mail already exists.", slug="email-taken")
    user = User(email=email, password_hash=password_hash, role=Role.FAN.value, language_pref=language_pref or "en")
    try:
        await users.add(user)
    except IntegrityError as exc:  # a concurrent signup with the same e-mail won
        raise Conflict("An account with this e-mail already exists.", slug="email-taken") from exc
    return await issue_tokens(session=session, runtime=runtime, user=user)


async def login(*, session: AsyncSession, runtime: Runtime, email: str, password: str, client_ip: str) -> IssuedTokens:
    """Tokens for the right e-mail and password; 401 otherwise. Rate-limited per address and per account.

    The password is checked (off the event loop, `runtime.passwords`) while no transaction is open:
    the account's hash is read in a short transaction of its own that ends before the check, and the
    request's unit of work starts only after it. A login waiting for a hashing slot holds no database
    connection, and on SQLite no write lock that every other request would queue behind.
    """
    settings = runtime.settings
    await runtime.limiter.hit(
        settings.login_rate_per_ip, "login-ip", client_ip, what="login attempts from this address"
    )
    await runtime.limiter.hit(
        settings.login_rate_per_account, "login-account", email, what="login attempts for this account"
    )
    async with unit_of_work(runtime.sessionmaker) as lookup:
        found = await UserRepository(lookup).get_by_email(email)
        user_id, password_hash = (found.id, found.password_hash) if found else (None, DUMMY_PASSWORD_HASH)
    # verify against a dummy hash for unknown e-mails, so timing does not reveal which accounts exist
    valid = await runtime.passwords.verify(password_hash, password)
    user = await UserRepository(session).get(user_id) if user_id is not None and valid else None
    if user is None or user.password_hash != password_hash:  # unknown, wrong, or changed meanwhile
        runtime.metrics.logins.labels("failure").inc()
        raise Unauthorized("Wrong e-mail or password.", slug="bad-credentials")
    runtime.metrics.logins.labels("success").inc()
    return await issue_tokens(session=session, runtime=runtime, user=user)


async def refresh(*, session: AsyncSession, runtime: Runtime, refresh_token: str) -> IssuedTokens:
    """Spend a refresh token for a new pair; a token presented twice revokes its family."""
    tokens = RefreshTokenRepository(session)
    now = utcnow()
    digest = token_digest(refresh_token)
    spent = await tokens.spend(digest, now=now)
    if spent is None:
        known = await tokens.get_by_hash(digest)
        if known is not None and (known.used_at is not None or known.revoked_at is not None):
            await _revoke_family(session=session, runtime=runtime, family_id=known.family_id)
            raise RefreshTokenReused(
                "This refresh token was already used; its sessions are revoked.", slug="token-reused"
            )
        raise Unauthorized("Unknown or expired refresh token.")
    user = await UserRepository(session).get(spent.user_id)
    if user is None:
        raise Unauthorized("The account no longer exists.")
    return await issue_tokens(session=session, runtime=runtime, user=user, family_id=spent.family_id)


async def logout(*, session: AsyncSession, runtime: Runtime, principal: Principal, refresh_token: str | None) -> None:
    """Kill the presented access token now, and the refresh family it (or the given refresh token) belongs to."""
    if principal.jti and principal.expires_at:
        ttl = int((principal.expires_at - utcnow()).total_seconds()) + 1
        jti = principal.jti
        after_commit(session, lambda: runtime.cache.set(_denylist_key_jti(jti), "1", ttl_seconds=ttl))
    families = {principal.family_id} if principal.family_id else set()
    if refresh_token:
        known = await RefreshTokenRepository(session).get_by_hash(token_digest(refresh_token))
        if known is not None and known.user_id == principal.user_id:
            families.add(known.family_id)
    for family_id in families:
        await _revoke_family(session=session, runtime=runtime, family_id=family_id)


async def _revoke_family(*, session: AsyncSession, runtime: Runtime, family_id: str) -> None:
    await RefreshTokenRepository(session).revoke_family(family_id, now=utcnow())
    ttl = runtime.settings.access_token_minutes * 60 + 5
    after_commit(session, lambda: runtime.cache.set(_denylist_key_family(family_id), "1", ttl_seconds=ttl))


async def issue_tokens(
    *, session: AsyncSession, runtime: Runtime, user: User, family_id: str | None = None
) -> IssuedTokens:
    """A new access/refresh pair; without `family_id` it starts a new refresh family (a new login)."""
    family_id = family_id or new_jti()
    settings = runtime.settings
    lifetime = dt.timedelta(minutes=settings.access_token_minutes)
    access = encode_jwt(
        {"sub": str(user.id), "role": user.role, "jti": new_jti(), "fam": family_id},
        secret=runtime.secret_key.get_secret_value(),
        purpose=ACCESS,
        lifetime=lifetime,
    )
    refresh_token = opaque_token(REFRESH_PREFIX)
    await RefreshTokenRepository(session).add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=token_digest(refresh_token),
            expires_at=utcnow() + dt.timedelta(days=settings.refresh_token_days),
        )
    )
    return IssuedTokens(access, refresh_token, int(lifetime.total_seconds()), user)


async def authenticate(*, session: AsyncSession, runtime: Runtime, bearer: str) -> Principal:
    """The caller behind a Bearer credential: an access token or an API key."""
    if bearer.startswith(API_KEY_PREFIX):
        key = await ApiKeyRepository(session).get_live_by_hash(token_digest(bearer))
        owner = await UserRepository(session).get(key.user_id) if key else None
        if key is None or owner is None:
            raise Unauthorized("Unknown or revoked API key.")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at > API_KEY_USE_RESOLUTION:
            key.last_used_at = now  # recorded coarsely, so reads through a key rarely write
        return Principal(user=owner, via_api_key=True)
    access = await check_access_token(runtime=runtime, bearer=bearer)
    user = await UserRepository(session).get(access.user_id)
    if user is None:
        raise Unauthorized("The account no longer exists.")
    return Principal(user=user, jti=access.jti, family_id=access.family_id, expires_at=access.expires_at)


@dataclass(frozen=True)
class AccessToken:
    user_id: int
    jti: str
    family_id: str
    expires_at: dt.datetime


async def check_access_token(*, runtime: Runtime, bearer: str) -> AccessToken:
    """A signed, unexpired, unrevoked access token, without a database session (the signature is checked
    here; the denylist is Redis or memory). 401 otherwise. The account itself is not read."""
    try:
        claims = decode_jwt(bearer, secret=runtime.secret_key.get_secret_value(), purpose=ACCESS)
        user_id, jti, family_id = int(claims["sub"]), str(claims["jti"]), str(claims["fam"])
        expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    except (InvalidToken, KeyError, ValueError) as exc:
        raise Unauthorized("Invalid or expired access token.") from exc
    if await runtime.cache.exists_any(_denylist_key_jti(jti), _denylist_key_family(family_id)):
        raise Unauthorized("This access token was revoked.")
    return AccessToken(user_id, jti, family_id, expires_at)


async def change_role(*, session: AsyncSession, caller: Caller, user_id: int, role: Role) -> User:
    users = UserRepository(session)
    user = await users.get(user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    if user.role == Role.ADMIN.value and role is not Role.ADMIN and await users.count_admins() <= 1:
        raise Conflict("This is the last admin; make another admin first.", slug="last-admin")
    before = user.role
    user.role = role.value
    await users.flush()
    await audit.record_by(
        session, caller, action="user.role_changed", target=f"user:{user.id}", changes={"from": before, "to": user.role}
    )
    return user


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    return await UserRepository(session).get(user_id)


async def promote_to_artist(*, session: AsyncSession, user: User) -> None:
    """A fan who claims an artist profile becomes an artist; staff roles stay what they are."""
    if user.role == Role.FAN.value:
        user.role = Role.ARTIST.value
        await UserRepository(session).flush()


async def create_api_key(
    *, session: AsyncSession, principal: Principal, caller: Caller, name: str
) -> tuple[ApiKey, str]:
    if principal.role not in (Role.DEVELOPER, Role.ADMIN):
        raise Forbidden("Only developers and admins create API keys.")
    secret = opaque_token(API_KEY_PREFIX)
    key = await ApiKeyRepository(session).add(
        ApiKey(user_id=principal.user_id, name=name, key_hash=token_digest(secret))
    )
    await audit.record_by(
        session, caller, action="api_key.created", target=f"api_key:{key.id}", changes={"ownerId": key.user_id}
    )
    return key, secret


async def list_api_keys(
    *, session: AsyncSession, principal: Principal, limit: int, offset: int
) -> tuple[Sequence[ApiKey], int]:
    return await ApiKeyRepository(session).list_for_user(principal.user_id, limit=limit, offset=offset)


async def revoke_api_key(*, session: AsyncSession, principal: Principal, caller: Caller, key_id: int) -> None:
    keys = ApiKeyRepository(session)
    key = await keys.get(key_id)
    if key is None or key.revoked_at is not None or (key.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"No API key {key_id}.")
    key.revoked_at = utcnow()
    await keys.flush()
    await audit.record_by(
        session, caller, action="api_key.revoked", target=f"api_key:{key.id}", changes={"ownerId": key.user_id}
    )


async def create_user(*, session: AsyncSession, email: str, password: str, role: Role) -> User:
    """An account made by an operator (the CLI), with any role."""
    users = UserRepository(session)
    if await users.get_by_email(email) is not None:
        raise Conflict(f"An account with e-mail {email} already exists.", slug="email-taken")
    return await users.add(
        User(email=email, password_hash=hash_password(password), role=role.value, language_pref="en")
    )
