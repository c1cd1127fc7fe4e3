"""create_app(settings): the HTTP application; create_server_app: it with Socket.IO in front. Wiring only."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import socketio
from fastapi import FastAPI

from stagevote import __version__
from stagevote.analytics.routes import router as analytics_router
from stagevote.artists.routes import router as artists_router
from stagevote.attendees.routes import router as attendees_router
from stagevote.audit.routes import router as audit_router
from stagevote.auth.routes import router as auth_router
from stagevote.config import Settings
from stagevote.core.bodylimit import BodyLimitMiddleware
from stagevote.core.errors import install_problem_handlers
from stagevote.core.errortracking import init_error_tracking
from stagevote.core.logging import RequestIdMiddleware, configure_logging
from stagevote.core.metrics import HttpMetricsMiddleware
from stagevote.core.operations import router as operations_router
from stagevote.core.runtime import Runtime
from stagevote.events.clock import RoundClock
from stagevote.events.routes import router as events_router
from stagevote.integrity.routes import router as integrity_router
from stagevote.messaging import outbox
from stagevote.messaging.routes import router as messaging_router
from stagevote.realtime.boards import Boards
from stagevote.realtime.broadcaster import Broadcaster
from stagevote.realtime.namespace import create_live_server
from stagevote.recaps.routes import router as recaps_router
from stagevote.reports.routes import router as reports_router
from stagevote.sms.routes import router as sms_router
from stagevote.voting import service as voting_service
from stagevote.voting.reconciler import TallyReconciler
from stagevote.voting.routes import document_ballot_scheme, hot_vote
from stagevote.voting.routes import router as voting_router
from stagevote.web.mount import install_web
from stagevote.wiring import close_domains, install_domains

# The collector's generations while the app runs (Python's default: 700, 10, 10). With the start-up objects
# frozen, the heap the collector sees is small, so a doors-open burst (a hundred-odd objects per websocket)
# grew it by a quarter again and again: ten full passes per burst, a third of a worker's CPU, pauses of
# up to a second. A young collection every 10,000 objects (a full pass considered after a million) lets
# the objects of a handshake die young and keeps the full passes out of the burst (bench/fanout.py).
GC_THRESHOLDS = (10_000, 10, 10)


@contextmanager
def collector_for_serving() -> Iterator[None]:
    """What is loaded by now (modules, metadata, phone number tables) lives as long as the app: out of the
    collector's full passes, which walked all of it (pauses of 100+ ms under load, measured); and the
    generations above. As it was again afterwards (a test process starts and stops many apps)."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    runtime = Runtime.build(settings)
    init_error_tracking(settings, release=f"stagevote@{__version__}", secret_key=runtime.secret_key.get_secret_value())
    boards = Boards(runtime)
    live = create_live_server(runtime, boards)
    broadcaster = Broadcaster(live, runtime, boards)
    clock = RoundClock(runtime, interval_seconds=settings.round_clock_seconds)
    sweeper = outbox.Sweeper(runtime)
    vote_writer = voting_service.vote_writer(runtime)  # the vote path's group commit (PostgreSQL)
    reconciler = TallyReconciler(runtime, every_seconds=settings.tally_reconcile_seconds)
    install_domains(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if vote_writer is not None:
            await vote_writer.start()
        broadcaster.start()
        if settings.round_clock_seconds > 0:
            clock.start()
        if runtime.queue.in_process:  # on the in-memory broker this process is its own worker
            sweeper.start()
        reconciler.start()  # unless TALLY_RECONCILE_SECONDS is 0
        with collector_for_serving():
            try:
                yield
            finally:
                # side by side: each may wait its grace period for a dependency that does not answer
                await asyncio.gather(
                    sweeper.stop(), clock.stop(), broadcaster.stop(), runtime.bus.stop(), reconciler.stop()
                )
                if vote_writer is not None:
                    await vote_writer.stop()
                await close_domains(runtime)
                await runtime.close()

    app = FastAPI(
        title="stagevote",
        version=__version__,
        summary="Live event voting: events, artists, SMS join, rounds, leaderboards, messaging.",
        lifespan=lifespan,
        # stagevote's metrics are Prometheus' (core/metrics.py): FastAPI's native OpenTelemetry would
        # look its three providers up on every request (~2.5 us, a quarter of a bare dispatch)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for name, part in (("runtime", runtime), ("live", live), ("broadcaster", broadcaster), ("clock", clock)):
        setattr(app.state, name, part)
    app.state.vote_writer = vote_writer
    app.state.reconciler = reconciler
    install_problem_handlers(app)
    # first: routes are matched in order, and the vote is the hot path (a plain Starlette route)
    app.router.routes.append(hot_vote)
    app.include_router(voting_router)
    for router in (operations_router, auth_router, events_router, artists_router):
        app.include_router(router)
    document_ballot_scheme(app)
    for router in (attendees_router, sms_router, messaging_router, reports_router, analytics_router, recaps_router):
        app.include_router(router)
    for router in (integrity_router, audit_router):
        app.include_router(router)
    install_web(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)  # 413 past it (core/bodylimit.py)
    app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_server_app(settings: Settings | None = None) -> socketio.ASGIApp:
    """What `stagevote serve` runs: Socket.IO at `/socket.io` (namespace `/live`), the API behind it."""
    app = create_app(settings)
    return socketio.ASGIApp(app.state.live, other_asgi_app=app, socketio_path="socket.io")
