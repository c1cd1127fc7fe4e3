"""How often leaderboards go out: at once on the first change, then coalesced, less often in a busy room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from stagevote.realtime.broadcaster import Throttle
from tests.factories import build_stage
from tests.realtime.test_live import Screen, served_app, staff  # noqa: F401 - fixtures


async def test_a_throttle_acts_at_once_then_once_more_for_a_burst_with_the_last_state() -> None:
    state = {"value": 0}
    seen: list[int] = []

    async def act(_: Any) -> None:
        seen.append(state["value"])

    throttle = Throttle("test", act, lambda _: 0.2)
    state["value"] = 1
    throttle.mark("k")
    await asyncio.sleep(0.05)
    assert seen == [1]  # the leading edge
    for value in range(2, 50):  # a burst inside the window
        state["value"] = value
        throttle.mark("k")
    for _ in range(100):
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert seen == [1, 49]  # one more action, and it saw the last state
    await throttle.stop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every room counts as busy, and a busy room waits long between emits."""
    return settings.model_copy(update={"live_busy_room": 1, "live_busy_emit_seconds": 5.0})


@pytest.fixture
async def venue(served_app: tuple[str, Any]) -> AsyncIterator[tuple[AsyncClient, Runtime, Screen]]:  # noqa: F811
    runtime: Runtime = served_app[1].other_asgi_app.state.runtime
    screen = Screen()
    await screen.connect(served_app[0])
    async with AsyncClient(base_url=served_app[0]) as http:
        yield http, runtime, screen
    await screen.client.disconnect()


async def test_a_busy_room_gets_the_first_change_at_once_and_the_rest_later(
    venue: tuple[AsyncClient, Runtime, Screen],
) -> None:
    http, runtime, screen = venue
    stage = await build_stage(http, runtime, await staff(runtime))
    assert (await screen.subscribe(stage.event_id))["ok"] is True
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 1)  # leading edge
    assert (await stage.vote(await stage.ballot(), "Owls")).status_code == 201
    await asyncio.sleep(1.0)
    assert [b["totalVotes"] for b in screen.received["leaderboard"]] == [1]  # held back: the room is busy
    await screen.wait_for("leaderboard", lambda b: b["totalVotes"] == 2, within=15)  # the last state arrives
