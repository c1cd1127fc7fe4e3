"""Request bodies are capped (`MAX_BODY_BYTES`): past the cap a request is refused with 413 problem+json.

The cap is enforced while the body streams in, whatever `Content-Length` says (a declared length above
the cap is refused before a byte is read). A body nobody reads costs nothing and is not refused. A
route that reads its body itself (no declared body parameter) may set its own cap, larger or smaller,
with `dependencies=[Depends(body_limit(n))]`: FastAPI reads a declared body before any dependency
runs, so the dependency only works where the route reads the body itself (uploads, webhooks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LIMIT_SCOPE_KEY = "stagevote.max_body_bytes"


class BodyTooLarge(HTTPException):
    """413: raised from `receive`, so it passes through FastAPI's body parsing as the HTTP error it is."""

    slug = "content-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {_size(limit)}, the most this call takes.")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n // 1024} KiB"


class _Cap:
    """The cap in force for one request; a mutable holder, so that it survives copies of the scope."""

    __slots__ = ("bytes",)

    def __init__(self, limit: int) -> None:
        self.bytes = limit


class BodyLimitMiddleware:
    """Count the bytes of each request body as the app reads them; 413 past the cap in force."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = scope[LIMIT_SCOPE_KEY] = _Cap(self.max_bytes)
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            limit = cap.bytes
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def body_limit(max_bytes: int) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: this route's body cap instead of `MAX_BODY_BYTES` (see the module docstring).
    Async: FastAPI runs a plain `def` dependency in its threadpool, a hop per request (every SMS webhook)."""

    async def set_limit(request: Request) -> None:
        cap = request.scope.get(LIMIT_SCOPE_KEY)
        if isinstance(cap, _Cap):
            cap.bytes = max_bytes

    return set_limit
