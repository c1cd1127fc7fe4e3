"""The live stream at doors-open: every subscribe answered without a unit of work each, topics, failures."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import redis.exceptions
from httpx import AsyncClient
from sqlalchemy import event

from stagevote.core.runtime import Runtime
from stagevote.realtime import namespace
from stagevote.realtime.fanout import FanOut
from tests.factories import build_stage
from tests.realtime.test_live import Screen, http, screen, served, served_app, staff  # noqa: F401 - fixtures


class RawClient:
    """A bare Engine.IO v4 websocket on /live, as the bench and a venue's thousand screens use it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, base: str) -> RawClient:
        ws = await session.ws_connect(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
        assert (await ws.receive_str(timeout=30)).startswith("0")
        await ws.send_str("40/live,")
        assert (await ws.receive_str(timeout=30)).startswith("40/live,")
        return cls(ws)

    async def subscribe(self, payload: Any) -> Any:
        await self.ws.send_str("42/live,1" + json.dumps(["subscribe", payload]))
        async with asyncio.timeout(60):  # "never answered" is a failure, not a hang
            while True:
                text = await self.ws.receive_str()
                if text == "2":
                    await self.ws.send_str("3")
                elif text.startswith("43/live,1"):
                    return json.loads(text[len("43/live,1") :])[0]


@pytest.mark.postgresql
async def test_a_doors_open_burst_of_500_subscribes_is_answered_without_a_unit_of_work_each(
    served: tuple[str, Runtime],  # noqa: F811
    http: AsyncClient,  # noqa: F811
) -> None:
    base, runtime = served
    admin = await staff(runtime)
    stage = await build_stage(http, runtime, admin)
    hidden = await build_stage(http, runtime, admin, leaderboardVisibility="hidden")
    checkouts = 0
    in_use = 0
    most_in_use = 0

    def on_checkout(*_: Any) -> None:
        nonlocal checkouts, in_use, most_in_use
        checkouts += 1
        in_use += 1
        most_in_use = max(most_in_use, in_use)

    def on_checkin(*_: Any) -> None:
        nonlocal in_use
        in_use -= 1

    payloads: list[Any] = []
    for i in range(500):
        kind = i % 10
        if kind == 0:
            payloads.append({"eventId": hidden.event_id})  # refused: 403
        elif kind == 1:
            payloads.append({"eventId": 999999})  # refused: 404
        elif kind == 2:
            payloads.append({"eventId": hidden.event_id, "token": admin.token})  # the organizer's console
        elif kind == 3:
            payloads.append({"eventId": stage.event_id, "topics": ["round", "event"]})  # a fan's ballot
        else:
            payloads.append({"eventId": stage.event_id})  # a venue screen
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = await asyncio.gather(*(RawClient.connect(session, base) for _ in payloads))
        for event_id in (stage.event_id, hidden.event_id):
            runtime.memo.forget(f"vote-context:{event_id}")  # doors open on a cold instance
        pool = runtime.engine.sync_engine.pool
        event.listen(pool, "checkout", on_checkout)
        event.listen(pool, "checkin", on_checkin)
        try:
            acks = await asyncio.gather(
                *(c.subscribe(p) for c, p in zip(clients, payloads, strict=True)),
                return_exceptions=True,
            )
        finally:
            event.remove(pool, "checkout", on_checkout)
            event.remove(pool, "checkin", on_checkin)
        for c in clients:
            await c.ws.close()

    timed_out = [a for a in acks if isinstance(a, BaseException)]
    assert timed_out == []  # every subscribe was answered
    by_kind: dict[int, list[Any]] = {}
    for i, ack in enumerate(acks):
        by_kind.setdefault(i % 10, []).append(ack)
    hidden_title = "The organizer keeps this leaderboard hidden for now."
    assert all(a == {"ok": False, "status": 403, "title": hidden_title} for a in by_kind[0])
    assert all(a == {"ok": False, "status": 404, "title": "No event 999999."} for a in by_kind[1])
    assert all(a["ok"] is True and a["leaderboard"]["eventId"] == hidden.event_id for a in by_kind[2])
    assert all(a == {"ok": True} for a in by_kind[3])
    assert all(a["ok"] is True and a["leaderboard"]["totalVotes"] == 0 for k in range(4, 10) for a in by_kind[k])
    # a few loads shared by everyone (event copies, the admin's role, tallies), not one per subscribe;
    # and never near the pool's limit
    assert checkouts <= 12, checkouts
    assert most_in_use <= 6, most_in_use


async def test_a_ballot_that_asks_only_for_rounds_gets_rounds_and_events_and_no_leaderboard(
    served: tuple[str, Runtime],  # noqa: F811
    http: AsyncClient,  # noqa: F811
    screen: Screen,  # noqa: F811
) -> None:
    runtime = served[1]
    stage = await build_stage(http, runtime, await staff(runtime))
    venue = Screen()
    await venue.connect(served[0])
    try:
        assert await screen.subscribe(stage.event_id, topics=["round", "event"]) == {"ok": True}
        assert (await venue.subscribe(stage.event_id))["ok"] is True
        for _ in range(3):
            assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
        await venue.wait_for("leaderboard", lambda b: b["totalVotes"] == 3)  # the votes did go out
        await stage.admin_post("/rounds/1/close")
        await screen.wait_for("round", lambda r: r == {"eventId": stage.event_id, "number": 1, "status": "closed"})
        await stage.admin_post("/rounds/2/open")
        await screen.wait_for("round", lambda r: r == {"eventId": stage.event_id, "number": 2, "status": "open"})
        await stage.admin_post("/close")
        await screen.wait_for("event", lambda e: e == {"eventId": stage.event_id, "status": "closed"})
        await venue.wait_for("event", lambda e: e["status"] == "closed")
        await asyncio.sleep(0.3)
        assert screen.received["leaderboard"] == []
    finally:
        await venue.client.disconnect()


async def test_a_leaderboard_only_screen_gets_no_round_changes(
    served: tuple[str, Runtime],  # noqa: F811
    http: AsyncClient,  # noqa: F811
    screen: Screen,  # noqa: F811
) -> None:
    stage = await build_stage(http, served[1], await staff(served[1]))
    assert (await screen.subscribe(stage.event_id, topics=["leaderboard"]))["ok"] is True
    assert (await stage.vote(await stage.ballot(), "Bears")).status_code == 201
    await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)
    await stage.admin_post("/rounds/1/close")
    await screen.wait_for("leaderboard", lambda b: b["round"] == 1 and b["totalVotes"] == 1 and b is not None)
    await asyncio.sleep(0.3)
    assert screen.received["round"] == []
    assert (await screen.subscribe(stage.event_id, topics=["weather"]))["status"] == 422


async def test_any_failure_is_still_an_answer(
    served: tuple[str, Runtime],  # noqa: F811
    http: AsyncClient,  # noqa: F811
    screen: Screen,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = served[1]
    stage = await build_stage(http, runtime, await staff(runtime))

    async def redis_is_gone(key: str) -> dict[str, int] | None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(runtime.tally, "read", redis_is_gone)
    ack = await screen.subscribe(stage.event_id)
    assert ack["ok"] is False and ack["status"] == 503 and ack["title"]

    async def redis_never_answers(key: str) -> dict[str, int] | None:
        await asyncio.Event().wait()
        return None

    monkeypatch.setattr(runtime.tally, "read", redis_never_answers)
    monkeypatch.setattr(namespace, "SUBSCRIBE_TIMEOUT_SECONDS", 0.5)
    ack = await screen.subscribe(stage.event_id)
    assert ack["ok"] is False and ack["status"] == 503


async def test_emits_are_written_straight_to_the_websockets(
    served_app: tuple[str, Any],  # noqa: F811
    http: AsyncClient,  # noqa: F811
    screen: Screen,  # noqa: F811
) -> None:
    """With the pinned uvicorn a leaderboard emit takes the direct path (one prepared frame written to each
    socket); should an upgrade break that, emits still arrive through the sockets' queues, and this says so."""
    runtime: Runtime = served_app[1].other_asgi_app.state.runtime
    manager: FanOut = served_app[1].other_asgi_app.state.live.manager
    stage = await build_stage(http, runtime, await staff(runtime))
    assert (await screen.subscribe(stage.event_id))["ok"] is True
    assert (await stage.vote(await stage.ballot(), "Foxes")).status_code == 201
    await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)
    assert manager.direct_writes >= 1


async def test_a_long_polling_screen_gets_the_same_emits_through_its_queue(
    served_app: tuple[str, Any],  # noqa: F811
    http: AsyncClient,  # noqa: F811
) -> None:
    runtime: Runtime = served_app[1].other_asgi_app.state.runtime
    manager: FanOut = served_app[1].other_asgi_app.state.live.manager
    stage = await build_stage(http, runtime, await staff(runtime))
    polling = Screen()
    await polling.client.connect(served_app[0], namespaces=["/live"], transports=["polling"], wait_timeout=5)
    try:
        assert (await polling.subscribe(stage.event_id))["ok"] is True
        queued = manager.queued_writes
        assert (await stage.vote(await stage.ballot(), "Bears")).status_code == 201
        await polling.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)
        assert manager.queued_writes > queued
    finally:
        # from the server's side: the client's own goodbye would wait for its open poll (25 s)
        await served_app[1].other_asgi_app.state.live.eio.disconnect()
        await polling.client.eio.disconnect(abort=True)


async def test_subscribing_again_with_fewer_topics_stops_the_leaderboard(
    served: tuple[str, Runtime],  # noqa: F811
    http: AsyncClient,  # noqa: F811
    screen: Screen,  # noqa: F811
) -> None:
    runtime = served[1]
    stage = await build_stage(http, runtime, await staff(runtime))
    assert (await screen.subscribe(stage.event_id))["ok"] is True
    assert await screen.subscribe(stage.event_id, topics=["round", "event"]) == {"ok": True}
    venue = Screen()
    await venue.connect(served[0])
    try:
        assert (await venue.subscribe(stage.event_id))["ok"] is True
        assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
        await venue.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)
        await stage.admin_post("/rounds/1/close")
        await screen.wait_for("round", lambda r: r["status"] == "closed")
        await asyncio.sleep(0.3)
        assert screen.received["leaderboard"] == []
    finally:
        await venue.client.disconnect()


async def test_a_screen_that_leaves_is_in_no_room_and_the_others_stay(
    served_app: tuple[str, Any],  # noqa: F811
    http: AsyncClient,  # noqa: F811
    screen: Screen,  # noqa: F811
) -> None:
    runtime: Runtime = served_app[1].other_asgi_app.state.runtime
    manager: FanOut = served_app[1].other_asgi_app.state.live.manager
    stage = await build_stage(http, runtime, await staff(runtime))
    leaving = Screen()
    await leaving.connect(served_app[0])
    assert (await leaving.subscribe(stage.event_id))["ok"] is True
    assert (await screen.subscribe(stage.event_id))["ok"] is True
    gone, staying = leaving.client.get_sid("/live"), screen.client.get_sid("/live")
    await leaving.client.disconnect()
    for _ in range(250):  # the server hears the goodbye a moment later
        if not any(gone in members for members in manager.rooms["/live"].values()):
            break
        await asyncio.sleep(0.02)
    rooms = manager.rooms["/live"]
    assert not any(gone in members for members in rooms.values())
    assert gone not in rooms and staying in rooms[staying]  # each socket's own room
    assert {room for room, members in rooms.items() if staying in members} == {
        None,
        staying,
        f"event:{stage.event_id}",
        f"event:{stage.event_id}:round",
        f"event:{stage.event_id}:event",
    }
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)
