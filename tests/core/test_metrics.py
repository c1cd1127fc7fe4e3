"""HTTP metrics label a request with the full template of its route, however the route was wired in."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from stagevote.core.metrics import HttpMetricsMiddleware, Metrics


def wired_app(metrics: Metrics) -> FastAPI:
    inner = APIRouter(prefix="/rounds")

    @inner.get("/{number}")
    async def one_round(number: int) -> dict[str, int]:
        return {"number": number}

    outer = APIRouter(prefix="/events/{event_id}")

    @outer.get("/leaderboard")
    async def leaderboard(event_id: int) -> dict[str, int]:
        return {"eventId": event_id}

    outer.include_router(inner)

    async def asset(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["name"])

    application = FastAPI()
    application.include_router(outer, prefix="/v1")
    application.include_router(outer, prefix="/v2")  # the same routes under a second prefix
    application.mount("/static", Starlette(routes=[Route("/{name}", asset)]))
    application.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return application


async def test_routes_are_labelled_with_their_full_template() -> None:
    metrics = Metrics()
    transport = ASGITransport(app=wired_app(metrics))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/v1/events/7/leaderboard")).status_code == 200
        assert (await http.get("/v1/events/7/rounds/2")).status_code == 200
        assert (await http.get("/v2/events/8/rounds/3")).status_code == 200
        assert (await http.get("/static/logo.svg")).text == "logo.svg"
        assert (await http.post("/v1/events/7/leaderboard")).status_code == 405
    text = generate_latest(metrics.registry).decode()
    for method, route, status in (
        ("GET", "/v1/events/{event_id}/leaderboard", "200"),
        ("GET", "/v1/events/{event_id}/rounds/{number}", "200"),
        ("GET", "/v2/events/{event_id}/rounds/{number}", "200"),
        ("GET", "/static/{path}", "200"),
        ("POST", "/v1/events/{event_id}/leaderboard", "405"),
    ):
        assert f'stagevote_http_requests_total{{method="{method}",route="{route}",status="{status}"}} 1.0' in text
    for raw in ("/7/", "/8/", "logo.svg"):
        assert raw not in text
