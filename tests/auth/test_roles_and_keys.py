"""Role changes by admins, and developers' read-only API keys."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import Actor, Actors
from tests.factories import event_body


async def test_admin_changes_a_role(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    r = await client.patch(f"/users/{fan.user_id}", json={"role": "brand"}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["role"] == "brand" and r.json()["id"] == fan.user_id
    # the new role applies to the tokens the user already holds
    profile = await client.get("/auth/profile", headers=fan.headers)
    assert profile.json()["role"] == "brand"


async def test_role_change_errors(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    assert (await client.patch(f"/users/{fan.user_id}", json={"role": "admin"})).status_code == 401
    assert (
        await client.patch(f"/users/{admin.user_id}", json={"role": "admin"}, headers=fan.headers)
    ).status_code == 403
    assert (await client.patch("/users/999999", json={"role": "fan"}, headers=admin.headers)).status_code == 404
    bad = await client.patch(f"/users/{fan.user_id}", json={"role": "superuser"}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "role"


async def test_the_last_admin_cannot_demote_themselves(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    r = await client.patch(f"/users/{admin.user_id}", json={"role": "fan"}, headers=admin.headers)
    assert r.status_code == 409
    other = await actors.make("admin")
    assert (
        await client.patch(f"/users/{admin.user_id}", json={"role": "fan"}, headers=other.headers)
    ).status_code == 200


async def test_api_key_is_shown_once_and_reads_but_never_writes(client: AsyncClient, actors: Actors) -> None:
    developer = await actors.make("developer")
    created = await client.post("/auth/api-keys", json={"name": "scoreboard"}, headers=developer.headers)
    assert created.status_code == 201
    key = created.json()
    assert set(key) == {"id", "name", "key", "createdAt"} and key["key"].startswith("svk_")
    listing = (await client.get("/auth/api-keys", headers=developer.headers)).json()
    assert listing["total"] == 1
    assert "key" not in listing["items"][0]

    as_key = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/auth/profile", headers=as_key)).json()["id"] == developer.user_id
    assert (await client.get("/events", headers=as_key)).status_code == 200
    for method, path, body in [
        ("POST", "/auth/api-keys", {"name": "another"}),
        ("POST", "/events", event_body()),
        ("POST", "/auth/logout", None),
        ("DELETE", f"/auth/api-keys/{key['id']}", None),
    ]:
        r = await client.request(method, path, json=body, headers=as_key)
        assert r.status_code == 403, (method, path)
        assert r.json()["type"] == "urn:stagevote:problem:read-only-key"
    # last use is recorded
    used = (await client.get("/auth/api-keys", headers=developer.headers)).json()["items"][0]
    assert used["lastUsedAt"] is not None


async def test_revoked_api_key_stops_working(client: AsyncClient, actors: Actors) -> None:
    developer = await actors.make("developer")
    key = (await client.post("/auth/api-keys", json={"name": "k"}, headers=developer.headers)).json()
    assert (await client.delete(f"/auth/api-keys/{key['id']}", headers=developer.headers)).status_code == 204
    r = await client.get("/auth/profile", headers={"Authorization": f"Bearer {key['key']}"})
    assert r.status_code == 401
    assert (await client.delete(f"/auth/api-keys/{key['id']}", headers=developer.headers)).status_code == 404
    assert (await client.get("/auth/api-keys", headers=developer.headers)).json()["total"] == 0


async def test_api_keys_are_for_developers_and_admins_and_private(
    client: AsyncClient, actors: Actors, fan: Actor
) -> None:
    assert (await client.post("/auth/api-keys", json={"name": "x"}, headers=fan.headers)).status_code == 403
    assert (await client.get("/auth/api-keys", headers=fan.headers)).status_code == 403
    assert (await client.post("/auth/api-keys", json={"name": "x"})).status_code == 401
    one = await actors.make("developer")
    two = await actors.make("developer")
    key = (await client.post("/auth/api-keys", json={"name": "mine"}, headers=one.headers)).json()
    assert (await client.get("/auth/api-keys", headers=two.headers)).json()["total"] == 0
    assert (await client.delete(f"/auth/api-keys/{key['id']}", headers=two.headers)).status_code == 404
    assert (await client.post("/auth/api-keys", json={"name": ""}, headers=one.headers)).status_code == 422
    assert (await client.get("/auth/profile", headers={"Authorization": "Bearer svk_unknown"})).status_code == 401
