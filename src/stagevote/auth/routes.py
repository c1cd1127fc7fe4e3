"""HTTP routes of the auth domain: /auth/* and /users/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from stagevote.audit.service import Caller
from stagevote.auth import service
from stagevote.auth.dependencies import AdminPrincipal, CurrentPrincipal, require_roles
from stagevote.auth.models import Role
from stagevote.auth.principal import Principal
from stagevote.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RoleUpdate,
    SignupRequest,
    TokenPair,
    UserRead,
)
from stagevote.core.network import ClientAddressDep
from stagevote.core.runtime import RuntimeDep, SessionDep
from stagevote.core.schemas import Page, Paging

router = APIRouter(tags=["auth"])
KeyOwner = Annotated[Principal, Depends(require_roles(Role.DEVELOPER, Role.ADMIN))]


def _pair(issued: service.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user=UserRead.model_validate(issued.user),
    )


@router.post("/auth/signup", status_code=status.HTTP_201_CREATED, response_model=TokenPair)
async def signup(body: SignupRequest, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    """A fan account and its first tokens. 409 e-mail taken · 429 too many sign-ups from this address."""
    issued = await service.signup(
        session=session,
        runtime=runtime,
        email=body.email,
        password=body.password,
        language_pref=body.language_pref,
        client_ip=client.limit_key,
    )
    return _pair(issued)


@router.post("/auth/login", response_model=TokenPair)
async def login(body: LoginRequest, client: ClientAddressDep, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    issued = await service.login(
        session=session, runtime=runtime, email=body.email, password=body.password, client_ip=client.limit_key
    )
    return _pair(issued)


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    return _pair(await service.refresh(session=session, runtime=runtime, refresh_token=body.refresh_token))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep, body: LogoutRequest | None = None
) -> Response:
    await service.logout(
        session=session, runtime=runtime, principal=principal, refresh_token=body.refresh_token if body else None
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/profile", response_model=UserRead)
async def profile(principal: CurrentPrincipal) -> UserRead:
    return UserRead.model_validate(principal.user)


@router.patch("/users/{user_id}", response_model=UserRead)
async def change_role(
    user_id: int, body: RoleUpdate, principal: AdminPrincipal, client: ClientAddressDep, session: SessionDep
) -> UserRead:
    caller = Caller.of(principal.user_id, client)
    user = await service.change_role(session=session, caller=caller, user_id=user_id, role=body.role)
    return UserRead.model_validate(user)


@router.post("/auth/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(
    body: ApiKeyCreate, principal: KeyOwner, client: ClientAddressDep, session: SessionDep
) -> ApiKeyCreated:
    caller = Caller.of(principal.user_id, client)
    key, secret = await service.create_api_key(session=session, principal=principal, caller=caller, name=body.name)
    return ApiKeyCreated(id=key.id, name=key.name, key=secret, created_at=key.created_at)


@router.get("/auth/api-keys", response_model=Page[ApiKeyRead])
async def list_api_keys(principal: KeyOwner, session: SessionDep, page: Paging) -> Page[ApiKeyRead]:
    keys, total = await service.list_api_keys(
        session=session, principal=principal, limit=page.limit, offset=page.offset
    )
    return Page(items=[ApiKeyRead.model_validate(k) for k in keys], total=total, limit=page.limit, offset=page.offset)


@router.delete("/auth/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: int, principal: KeyOwner, client: ClientAddressDep, session: SessionDep) -> Response:
    caller = Caller.of(principal.user_id, client)
    await service.revoke_api_key(session=session, principal=principal, caller=caller, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
