"""Operational endpoints: liveness, readiness (database, Redis), Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stagevote.core.db import ping_database
from stagevote.core.errors import Unauthorized
from stagevote.core.runtime import RuntimeDep

log = structlog.get_logger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness: 200 while the process lives")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the database (and Redis when configured) answer",
    responses={503: {"description": "A dependency does not answer"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await ping_database(runtime.engine)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; say which
        log.warning("ready_database_failed", error=str(exc))
        checks["database"] = "unavailable"
    if runtime.redis is not None:
        try:
            await runtime.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            log.warning("ready_redis_failed", error=str(exc))
            checks["redis"] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    token = runtime.settings.metrics_token
    if token:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise Unauthorized("This endpoint needs the metrics token.")
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
