"""Rounds: listed from voteConfig, opened and closed by hand on a live event, one at a time."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response

from tests.conftest import Actor
from tests.events.test_events import act, create
from tests.http import ok, problem


async def live_event(client: AsyncClient, admin: Actor, **overrides: Any) -> dict[str, Any]:
    event = await create(client, admin, **overrides)
    await act(client, admin, event["id"], "publish")
    return await act(client, admin, event["id"], "start")


async def rounds(client: AsyncClient, event_id: int) -> list[dict[str, Any]]:
    r = await client.get(f"/events/{event_id}/rounds")
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_rounds_come_from_vote_config(client: AsyncClient, admin: Actor) -> None:
    event = await live_event(client, admin)
    listed = await rounds(client, event["id"])
    assert [(r["number"], r["name"], r["status"]) for r in listed] == [(1, "Heats", "pending"), (2, "Final", "pending")]
    assert set(listed[0]) == {"number", "name", "status", "opensAt", "closesAt", "openedAt", "closedAt"}


async def test_open_and_close_by_hand_one_at_a_time(client: AsyncClient, admin: Actor) -> None:
    eid = (await live_event(client, admin))["id"]
    opened = await client.post(f"/events/{eid}/rounds/1/open", headers=admin.headers)
    assert opened.status_code == 200
    assert opened.json()["status"] == "open" and opened.json()["openedAt"]
    second = await client.post(f"/events/{eid}/rounds/2/open", headers=admin.headers)
    assert second.status_code == 409
    assert (await client.post(f"/events/{eid}/rounds/1/open", headers=admin.headers)).status_code == 409
    assert (await client.post(f"/events/{eid}/rounds/2/close", headers=admin.headers)).status_code == 409
    closed = await client.post(f"/events/{eid}/rounds/1/close", headers=admin.headers)
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["closedAt"]
    assert (await client.post(f"/events/{eid}/rounds/1/open", headers=admin.headers)).status_code == 409
    assert (await client.post(f"/events/{eid}/rounds/2/open", headers=admin.headers)).status_code == 200
    assert (await client.post(f"/events/{eid}/rounds/3/open", headers=admin.headers)).status_code == 404
    assert [r["status"] for r in await rounds(client, eid)] == ["closed", "open"]


async def test_rounds_open_only_on_a_live_event(client: AsyncClient, admin: Actor) -> None:
    event = await create(client, admin)
    assert (await client.post(f"/events/{event['id']}/rounds/1/open", headers=admin.headers)).status_code == 409
    await act(client, admin, event["id"], "publish")
    assert (await client.post(f"/events/{event['id']}/rounds/1/open", headers=admin.headers)).status_code == 409


async def test_closing_the_event_closes_its_open_round(client: AsyncClient, admin: Actor) -> None:
    eid = (await live_event(client, admin))["id"]
    await client.post(f"/events/{eid}/rounds/1/open", headers=admin.headers)
    await act(client, admin, eid, "close")
    assert [r["status"] for r in await rounds(client, eid)] == ["closed", "pending"]
    assert (await client.post(f"/events/{eid}/rounds/2/open", headers=admin.headers)).status_code == 409


async def test_vote_config_edits_keep_started_rounds_intact(client: AsyncClient, admin: Actor) -> None:
    event = await live_event(client, admin)
    eid = event["id"]
    await client.post(f"/events/{eid}/rounds/1/open", headers=admin.headers)
    config = event["voteConfig"]

    async def put(vote_config: dict[str, Any]) -> Response:
        return await client.put(f"/events/{eid}", json={"voteConfig": vote_config}, headers=admin.headers)

    renamed = {**config, "rounds": [{**config["rounds"][0], "name": "Opening heats"}, config["rounds"][1]]}
    ok(await put(renamed))
    added = {**renamed, "rounds": [*renamed["rounds"], {"number": 3, "name": "Encore"}]}
    ok(await put(added))
    assert [r["name"] for r in await rounds(client, eid)] == ["Opening heats", "Final", "Encore"]
    problem(await put({**added, "rounds": []}), 422)  # the schema: an event has at least one round

    # the open round's artists are fixed
    moved = {**added, "rounds": [{**added["rounds"][0], "artistIds": [1]}, *added["rounds"][1:]]}
    assert "Round 1" in problem(await put(moved), 409)["detail"]

    # a round that has started (open now, or closed) cannot be removed; a pending one can
    await client.post(f"/events/{eid}/rounds/1/close", headers=admin.headers)
    await client.post(f"/events/{eid}/rounds/2/open", headers=admin.headers)
    only_first = {**added, "rounds": added["rounds"][:1]}  # a valid config: drops the open round 2 (and 3)
    refused = problem(await put(only_first), 409)
    assert refused["type"] == "urn:stagevote:problem:round-started" and "Round 2" in refused["detail"]
    listed = await rounds(client, eid)
    assert [(r["number"], r["status"]) for r in listed] == [(1, "closed"), (2, "open"), (3, "pending")]
    only_first_two = {**added, "rounds": added["rounds"][:2]}
    ok(await put(only_first_two))
    assert [(r["number"], r["status"]) for r in await rounds(client, eid)] == [(1, "closed"), (2, "open")]


async def test_rounds_of_a_draft_are_hidden_from_the_public(client: AsyncClient, admin: Actor) -> None:
    event = await create(client, admin)
    assert (await client.get(f"/events/{event['id']}/rounds")).status_code == 404
    assert (await client.get(f"/events/{event['id']}/rounds", headers=admin.headers)).status_code == 200


async def test_round_writes_need_an_admin(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    eid = (await live_event(client, admin))["id"]
    assert (await client.post(f"/events/{eid}/rounds/1/open")).status_code == 401
    assert (await client.post(f"/events/{eid}/rounds/1/open", headers=fan.headers)).status_code == 403
