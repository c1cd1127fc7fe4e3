"""install_web(app): the pages, their static assets and the `GET /ballot` call, on the app; tokens out of logs."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stagevote.web import ballot, pages
from stagevote.web.security import redact_access_log


class _StaticHeaders:
    """Static files: never sniffed into another type; revalidated (ETag) so a deploy is seen at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-content-type-options", b"nosniff"),
                    (b"cache-control", b"no-cache"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web(app: FastAPI) -> None:
    app.include_router(pages.router)
    app.include_router(ballot.router)
    app.mount("/static", _StaticHeaders(StaticFiles(directory=pages.STATIC_DIR)), name="static")
    redact_access_log()
