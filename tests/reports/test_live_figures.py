"""Live analytics over real HTTP: server-sent events from a real server, the first at once, the next after a
vote (from this instance, or from another through Redis), at most one a second, keep-alive pings between."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.factories import live_show, web_fan
from tests.http import ok
from tests.reports.conftest import EventStream

ENOUGH = 10.0  # seconds to wait for a frame before calling it lost (a loaded machine is slow, not broken)


async def vote_on(url: str, event_id: int, token: str, artist_id: int) -> None:
    body = {"round": 1, "artistId": artist_id, "token": f"t-{time.monotonic_ns()}"}
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post(f"/events/{event_id}/vote", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text


def total(frame: object) -> int:
    figures = frame.json()  # type: ignore[attr-defined]
    return int(figures["votes"]["total"])


async def test_the_stream_sends_figures_at_once_then_after_each_vote_at_most_once_a_second(
    client: AsyncClient, runtime: Runtime, admin: Actor, served: str
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls", "Foxes"))
    fans = [await web_fan(runtime, show.id) for _ in range(4)]
    started = time.monotonic()
    async with EventStream(f"{served}/analytics/events/{show.id}", admin.headers) as stream:
        assert stream.status == 200
        first = await stream.wait_for(lambda f: f.event == "analytics", ENOUGH)
        print(f"first frame after {first.at - started:.3f}s")  # noqa: T201
        assert total(first) == 0 and first.json()["view"] == "full" and first.json()["eventId"] == show.id

        voted = time.monotonic()
        await vote_on(served, show.id, fans[0].token, show.artists["Owls"])
        moved = await stream.wait_for(lambda f: f.event == "analytics" and total(f) == 1, ENOUGH)
        print(f"a vote reached the stream after {moved.at - voted:.3f}s")  # noqa: T201
        assert moved.json()["votes"]["byArtist"] == [{"artistId": show.artists["Owls"], "name": "Owls", "votes": 1}]

        for fan in fans[1:]:  # a burst: the stream coalesces it, one frame a second at most
            await vote_on(served, show.id, fan.token, show.artists["Foxes"])
        await stream.wait_for(lambda f: f.event == "analytics" and total(f) == 4, ENOUGH)
        await stream.wait_for(lambda f: f.comment is not None and f.comment.startswith("ping"), ENOUGH)
        frames = stream.named()
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(frames)]
        assert all(gap >= 0.9 for gap in gaps), gaps  # a lower bound: load only makes the gaps longer
        assert [total(f) for f in frames] == sorted(total(f) for f in frames)
    # the client went away: the server ends that stream and goes on serving others
    async with EventStream(f"{served}/analytics/events/{show.id}", admin.headers) as again:
        assert total(await again.wait_for(lambda f: f.event == "analytics", ENOUGH)) == 4
    ok(await client.get("/health"))


async def test_without_accept_event_stream_the_answer_is_json(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls",))
    r = await client.get(f"/analytics/events/{show.id}", headers=admin.headers | {"Accept": "application/json"})
    assert r.headers["content-type"] == "application/json" and ok(r)["votes"]["total"] == 0


@pytest.mark.postgresql
async def test_a_vote_taken_by_another_instance_reaches_the_stream_through_redis(
    client: AsyncClient, runtime: Runtime, admin: Actor, served: str
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls",))
    fan = await web_fan(runtime, show.id)
    async with EventStream(f"{served}/analytics/events/{show.id}", admin.headers) as stream:
        await stream.wait_for(lambda f: f.event == "analytics", ENOUGH)
        body = {"round": 1, "artistId": show.artists["Owls"], "token": "across-instances"}
        ok(await client.post(f"/events/{show.id}/vote", json=body, headers=fan.headers), 201)  # the other instance
        await stream.wait_for(lambda f: f.event == "analytics" and total(f) == 1, ENOUGH)
