"""Prometheus metrics: HTTP latency by route, and the product counters other modules increment."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """One registry per app, so two apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "stagevote_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.http_latency = Histogram(
            "stagevote_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.votes = Counter("stagevote_votes", "Votes counted", ["channel"], registry=self.registry)
        self.messages = Counter(
            "stagevote_messages", "Messages by channel and status", ["channel", "status"], registry=self.registry
        )
        self.live_connections = Gauge(
            "stagevote_live_connections", "Open real-time connections", registry=self.registry
        )
        self.logins = Counter("stagevote_logins", "Login attempts by outcome", ["outcome"], registry=self.registry)


class HttpMetricsMiddleware:
    """Time every HTTP request and count it by route template (not raw path: ids would explode cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = _route_template(scope)
            self.metrics.http_latency.labels(scope["method"], route).observe(time.perf_counter() - started)
            self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()


def _route_template(scope: Scope) -> str:
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", []):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"
