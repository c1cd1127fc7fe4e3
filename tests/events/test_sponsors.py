"""Sponsors: brands linked to an event by an admin."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import Actor, Actors
from tests.events.test_events import create


async def test_link_and_list_sponsors(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    brand = await actors.make("brand")
    event = await create(client, admin)
    r = await client.post(f"/events/{event['id']}/sponsors", json={"userId": brand.user_id}, headers=admin.headers)
    assert r.status_code == 201
    assert r.json()["userId"] == brand.user_id and r.json()["email"] == brand.email and r.json()["linkedAt"]
    again = await client.post(f"/events/{event['id']}/sponsors", json={"userId": brand.user_id}, headers=admin.headers)
    assert again.status_code == 409
    listing = (await client.get(f"/events/{event['id']}/sponsors", headers=admin.headers)).json()
    assert listing["total"] == 1 and listing["items"][0]["userId"] == brand.user_id


async def test_only_brands_can_sponsor(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event = await create(client, admin)
    for user_id in (fan.user_id, 999999):
        r = await client.post(f"/events/{event['id']}/sponsors", json={"userId": user_id}, headers=admin.headers)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "userId"
    listing = (await client.get(f"/events/{event['id']}/sponsors", headers=admin.headers)).json()
    assert listing["total"] == 0


async def test_sponsors_unknown_event_and_roles(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    brand = await actors.make("brand")
    r = await client.post("/events/999999/sponsors", json={"userId": brand.user_id}, headers=admin.headers)
    assert r.status_code == 404
    assert (await client.get("/events/999999/sponsors", headers=admin.headers)).status_code == 404
    event = await create(client, admin)
    assert (await client.get(f"/events/{event['id']}/sponsors", headers=brand.headers)).status_code == 403
    assert (await client.get(f"/events/{event['id']}/sponsors")).status_code == 401


async def test_a_brand_sees_a_draft_it_sponsors(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    brand = await actors.make("brand")
    other_brand = await actors.make("brand")
    event = await create(client, admin)
    await client.post(f"/events/{event['id']}/sponsors", json={"userId": brand.user_id}, headers=admin.headers)
    assert (await client.get(f"/events/{event['id']}", headers=brand.headers)).status_code == 200
    assert (await client.get(f"/events/{event['id']}", headers=other_brand.headers)).status_code == 404
