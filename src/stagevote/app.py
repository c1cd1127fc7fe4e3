"""create_app(settings): the ASGI application, wiring only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sentry_sdk
from fastapi import FastAPI

from stagevote import __version__
from stagevote.artists.routes import router as artists_router
from stagevote.auth.routes import router as auth_router
from stagevote.config import Settings
from stagevote.core.errors import install_problem_handlers
from stagevote.core.logging import RequestIdMiddleware, configure_logging
from stagevote.core.metrics import HttpMetricsMiddleware
from stagevote.core.operations import router as operations_router
from stagevote.core.runtime import Runtime
from stagevote.events.routes import router as events_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    if settings.sentry_dsn:
        sentry_sdk.init(dsn=settings.sentry_dsn, release=f"stagevote@{__version__}", send_default_pii=False)
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.close()

    app = FastAPI(
        title="stagevote",
        version=__version__,
        summary="Live event voting: events, artists, SMS join, rounds, leaderboards, messaging.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    for router in (operations_router, auth_router, events_router, artists_router):
        app.include_router(router)
    app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
