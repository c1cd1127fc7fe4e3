"""Prometheus metrics: HTTP latency by route, and the product counters other modules increment."""

from __future__ import annotations

import time
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that hung up before it was answered
# Any token is a valid HTTP method: label the standard ones, lump the rest, so callers cannot mint series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


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
        self.vote_batches = Histogram(
            "stagevote_vote_batch_size",
            "Votes per group-commit statement",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.vote_batch_latency = Histogram(
            "stagevote_vote_batch_duration_seconds",
            "Time of a group-commit statement, its commit included",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def observe_vote_batch(self, size: int, seconds: float) -> None:
        self.vote_batches.observe(size)
        self.vote_batch_latency.observe(seconds)


class HttpMetricsMiddleware:
    """Time every HTTP request and count it by route template (not raw path: ids would explode cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates = _RouteTemplates()
        self._latencies: dict[tuple[str, str], Any] = {}
        self._counts: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["method"] in _METHODS else "other"
        # what routing needs, as it is now: a mount rewrites root_path on its way in
        request = {k: scope[k] for k in ("type", "path", "root_path", "method", "headers", "app") if k in scope}
        status = 0

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        except BaseException:
            status = status or 500  # raised before any answer: the server answers 500
            raise
        finally:
            status = status or CLIENT_CLOSED_REQUEST  # returned without an answer: the client hung up
            route = self._templates.of(scope.get("route"), request)
            self._latency(method, route).observe(time.perf_counter() - started)
            self._requests(method, route, status).inc()

    def _latency(self, method: str, route: str) -> Any:
        # `labels()` takes a lock and builds its key on every call: the children are kept here instead
        child = self._latencies.get((method, route))
        if child is None:
            child = self._latencies[(method, route)] = self.metrics.http_latency.labels(method, route)
        return child

    def _requests(self, method: str, route: str, status: int) -> Any:
        child = self._counts.get((method, route, status))
        if child is None:
            child = self._counts[(method, route, status)] = self.metrics.http_requests.labels(
                method, route, str(status)
            )
        return child


class _RouteTemplates:
    """The full template (`/events/{event_id}`) of the route that served a request.

    The router leaves the route it picked (a 405 included) in `scope["route"]`; FastAPI keeps
    included routers as nodes without a path, so that route's path lacks the prefixes it was
    included under. `iter_route_contexts` knows every route with its full template: it is read
    once (again when a route appears that it has not seen), not matched against per request.
    """

    def __init__(self) -> None:
        self._by_route: dict[int, tuple[object, str | None]] = {}

    def of(self, route: object, request: Scope) -> str:
        if route is None:
            return "unmatched"
        entry = self._by_route.get(id(route))
        if entry is None or entry[0] is not route:
            self._by_route = _index(_routes(request))
            entry = self._by_route.get(id(route))
            if entry is None and type(route) is Route and any(r is route for r in _routes(request)):
                # a plain Starlette route of the app's own (not inside a mount): its template is whole
                entry = self._by_route[id(route)] = (route, route.path_format)
        if entry is not None and entry[0] is route and entry[1]:
            return entry[1]
        return _match(request)  # a route inside a mount, or one included under two prefixes


def _routes(request: Scope) -> list[BaseRoute]:
    routes: list[BaseRoute] = getattr(getattr(request.get("app"), "router", None), "routes", [])
    return routes


def _index(routes: list[BaseRoute]) -> dict[int, tuple[object, str | None]]:
    index: dict[int, tuple[object, str | None]] = {}
    for context in iter_route_contexts(routes):
        original = context.original_route
        template = context.path_format or context.path
        known = index.get(id(original))
        index[id(original)] = (original, template if known is None or known[1] == template else None)
    return index


def _match(request: Scope) -> str:
    """The template of the first route that takes this request, as the router would pick it."""
    partial: str | None = None
    for context in iter_route_contexts(_routes(request)):
        match, _ = context.matches(request)
        if match is Match.FULL:
            return context.path_format or context.path or "unmatched"
        if match is Match.PARTIAL and partial is None:
            partial = context.path_format or context.path
    return partial or "unmatched"
