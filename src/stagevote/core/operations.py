"""Operational endpoints: liveness, readiness (database, Redis), Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
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


async def _check(name: str, probe: Awaitable[object], *, within: float) -> str:
    """`ok`, or `unavailable` when the probe fails or does not answer `within` seconds."""
    try:
        async with asyncio.timeout(within):
            await probe
    except Exception as exc:  # any failure means "not ready"; say which
        log.warning("ready_check_failed", check=name, error=str(exc) or type(exc).__name__)
        return "unavailable"
    return "ok"


@router.get(
    "/ready",
    summary="Readiness: the database (and Redis when configured) answer",
    responses={503: {"description": "A dependency does not answer"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    # A hung dependency must not hang the probe: each check is bounded, and they run side by side.
    timeout = runtime.settings.ready_timeout_seconds
    probes: dict[str, Awaitable[object]] = {"database": ping_database(runtime.engine)}
    if runtime.redis is not None:
        probes["redis"] = runtime.redis.ping()
    results = await asyncio.gather(*(_check(name, probe, within=timeout) for name, probe in probes.items()))
    checks = dict(zip(probes, results, strict=True))
    healthy = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


def _bearer_token(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    token = runtime.settings.metrics_token
    if token and not hmac.compare_digest(_bearer_token(request).encode(), token.get_secret_value().encode()):
        raise Unauthorized("This endpoint needs the metrics token.")
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
