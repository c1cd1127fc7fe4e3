"""FastAPI dependencies that answer "who is calling, and may they?" for every domain's routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stagevote.auth import service
from stagevote.auth.models import Role
from stagevote.auth.principal import Principal
from stagevote.core.errors import Forbidden, Unauthorized
from stagevote.core.runtime import RuntimeDep, SessionDep

_bearer = HTTPBearer(auto_error=False, description="An access token, or a developer API key (read-only).")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def optional_principal(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller, or None for an anonymous request; a credential that is present but bad is 401."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise Unauthorized("The Authorization header must be `Bearer <token>`.")
        return None
    principal = await service.authenticate(session=session, runtime=runtime, bearer=credentials.credentials)
    if principal.via_api_key and request.method not in _SAFE_METHODS:
        raise Forbidden("API keys are read-only.", slug="read-only-key")
    return principal


async def required_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized("Sign in: this call needs `Authorization: Bearer <token>`.")
    return principal


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only callers with one of `roles`."""
    allowed = frozenset(roles)

    async def check(principal: Annotated[Principal, Depends(required_principal)]) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"This call is for {', '.join(sorted(r.value for r in allowed))} only.")
        return principal

    return check


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(required_principal)]
AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
