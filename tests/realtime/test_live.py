"""The live stream as a Socket.IO client sees it: subscribe, get the board, watch it move, coalesced."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
import uvicorn
from httpx import AsyncClient

from stagevote.app import create_server_app
from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.conftest import Actor, Actors, _empty_everything
from tests.factories import build_stage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def served_app(settings: Settings) -> AsyncIterator[tuple[str, socketio.ASGIApp]]:
    """The whole server (Socket.IO in front of the API) on a loopback port, in this event loop."""
    app = create_server_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task
        await _empty_everything(settings)


@pytest.fixture
def served(served_app: tuple[str, socketio.ASGIApp]) -> tuple[str, Runtime]:
    runtime: Runtime = served_app[1].other_asgi_app.state.runtime
    return served_app[0], runtime


class Screen:
    """A venue screen: a Socket.IO client on /live that records what it is sent."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = {"leaderboard": [], "round": [], "event": []}
        for name in self.received:
            self.client.on(name, self._recorder(name), namespace="/live")

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.received[name].append(data)

        return record

    async def connect(self, url: str) -> None:
        await self.client.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=5)

    async def subscribe(self, event_id: int, token: str | None = None, topics: list[str] | None = None) -> Any:
        payload: dict[str, Any] = {"eventId": event_id}
        if token:
            payload["token"] = token
        if topics is not None:
            payload["topics"] = topics
        return await self.client.call("subscribe", payload, namespace="/live", timeout=5)

    async def wait_for(self, name: str, predicate: Any, within: float = 5.0) -> Any:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for item in self.received[name]:
                if predicate(item):
                    return item
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching {name} within {within}s; got {self.received[name]}")


@pytest.fixture
async def http(served: tuple[str, Runtime]) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=served[0]) as client:
        yield client


@pytest.fixture
async def screen(served: tuple[str, Runtime]) -> AsyncIterator[Screen]:
    s = Screen()
    await s.connect(served[0])
    yield s
    await s.client.disconnect()


async def staff(runtime: Runtime) -> Actor:
    return await Actors(runtime).make("admin")


async def test_subscribe_acknowledges_with_the_board_and_votes_move_it(
    served: tuple[str, Runtime], http: AsyncClient, screen: Screen
) -> None:
    runtime = served[1]
    stage = await build_stage(http, runtime, await staff(runtime))
    ack = await screen.subscribe(stage.event_id)
    assert ack["ok"] is True
    assert ack["leaderboard"]["eventId"] == stage.event_id and ack["leaderboard"]["totalVotes"] == 0
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    board = await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)
    assert {s["name"]: s["votes"] for s in board["standings"]}["Owls"] == 1


async def test_a_burst_is_coalesced_and_the_last_state_always_arrives(
    served: tuple[str, Runtime], http: AsyncClient, screen: Screen
) -> None:
    runtime = served[1]
    stage = await build_stage(http, runtime, await staff(runtime))
    await screen.subscribe(stage.event_id)
    ballots = [await stage.ballot() for _ in range(30)]
    await asyncio.gather(*(stage.vote(b, "Foxes") for b in ballots))
    await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 30)
    await asyncio.sleep(0.5)
    assert len(screen.received["leaderboard"]) < 30  # coalesced, not one emit per vote
    assert screen.received["leaderboard"][-1]["totalVotes"] == 30


async def test_round_and_event_changes_are_pushed(
    served: tuple[str, Runtime], http: AsyncClient, screen: Screen
) -> None:
    runtime = served[1]
    stage = await build_stage(http, runtime, await staff(runtime))
    await screen.subscribe(stage.event_id)
    await stage.admin_post("/rounds/1/close")
    assert await screen.wait_for("round", lambda r: r["number"] == 1 and r["status"] == "closed") == {
        "eventId": stage.event_id,
        "number": 1,
        "status": "closed",
    }
    await stage.admin_post("/close")
    await screen.wait_for("event", lambda e: e == {"eventId": stage.event_id, "status": "closed"})


async def test_unknown_events_and_hidden_boards_are_refused_in_the_ack(
    served: tuple[str, Runtime], http: AsyncClient, screen: Screen
) -> None:
    runtime = served[1]
    admin = await staff(runtime)
    assert (await screen.subscribe(999999)) == {"ok": False, "status": 404, "title": "No event 999999."}
    assert (await screen.subscribe("nonsense"))["ok"] is False  # type: ignore[arg-type]
    hidden = await build_stage(http, runtime, admin, leaderboardVisibility="hidden")
    refused = await screen.subscribe(hidden.event_id)
    assert refused["ok"] is False and refused["status"] == 403
    # the organizer's screen sees it, and its updates
    allowed = await screen.subscribe(hidden.event_id, token=admin.token)
    assert allowed["ok"] is True
    await hidden.vote(await hidden.ballot(), "Bears")
    await screen.wait_for("leaderboard", lambda b: b["eventId"] == hidden.event_id and b["totalVotes"] == 1)


async def test_live_connections_are_counted(served: tuple[str, Runtime], http: AsyncClient, screen: Screen) -> None:
    metrics = (await http.get("/metrics")).text
    assert "stagevote_live_connections 1.0" in metrics
