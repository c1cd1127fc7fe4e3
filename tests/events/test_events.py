"""Events: create, read (public vs admin), list filters, updates by status, transitions."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.conftest import Actor, Actors
from tests.factories import event_body


async def create(client: AsyncClient, admin: Actor, **overrides: Any) -> dict[str, Any]:
    r = await client.post("/events", json=event_body(**overrides), headers=admin.headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def act(client: AsyncClient, admin: Actor, event_id: int, action: str) -> dict[str, Any]:
    r = await client.post(f"/events/{event_id}/{action}", headers=admin.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_create_returns_a_draft_with_defaults_and_normalized_keyword(client: AsyncClient, admin: Actor) -> None:
    event = await create(client, admin, keyword="rockFest", voteConfig=None)
    assert event["status"] == "draft"
    assert event["keyword"] == "ROCKFEST"
    assert event["createdBy"] == admin.user_id
    assert event["voteConfig"] == {
        "rounds": [{"number": 1, "name": "Final", "artistIds": None, "opensAt": None, "closesAt": None}],
        "votesPerRound": 1,
        "allowVoteChange": False,
        "requireConfirmation": True,
        "smsVoting": True,
        "leaderboardVisibility": "live",
        "privacyMode": True,
        "nudgeMinutesBeforeClose": 5,
    }
    assert event["startDate"].endswith("Z") or event["startDate"].endswith("+00:00")


async def test_vote_config_nonsense_is_422_field_by_field(client: AsyncClient, admin: Actor) -> None:
    bad = {
        "rounds": [{"number": 2, "name": ""}],
        "votesPerRound": 0,
        "leaderboardVisibility": "sometimes",
        "surprise": True,
    }
    r = await client.post("/events", json=event_body(voteConfig=bad), headers=admin.headers)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"voteConfig.votesPerRound", "voteConfig.leaderboardVisibility", "voteConfig.surprise"} <= fields
    assert any(f.startswith("voteConfig.rounds") for f in fields)
    listing = await client.get("/events", headers=admin.headers)
    assert listing.json()["total"] == 0  # nothing was created


async def test_rounds_must_be_numbered_in_order_and_times_consistent(client: AsyncClient, admin: Actor) -> None:
    skipped = {"rounds": [{"number": 1, "name": "A"}, {"number": 3, "name": "B"}]}
    r = await client.post("/events", json=event_body(voteConfig=skipped), headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "voteConfig.rounds"
    backwards = {
        "rounds": [
            {"number": 1, "name": "A", "opensAt": "2026-12-01T20:00:00Z", "closesAt": "2026-12-01T19:00:00Z"},
        ]
    }
    r = await client.post("/events", json=event_body(voteConfig=backwards), headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "voteConfig.rounds.0.closesAt"


async def test_dates_keyword_and_access_type_are_validated(client: AsyncClient, admin: Actor) -> None:
    cases = [
        ({"endDate": "2026-11-30T10:00:00Z", "startDate": "2026-12-01T10:00:00Z"}, "endDate"),
        ({"startDate": "2026-12-01T10:00:00"}, "startDate"),  # no zone: ambiguous
        ({"keyword": "STOP"}, "keyword"),
        ({"keyword": "12345"}, "keyword"),
        ({"keyword": "rock fest"}, "keyword"),
        ({"accessType": "secret"}, "accessType"),
        ({"title": "   "}, "title"),
    ]
    for overrides, field in cases:
        r = await client.post("/events", json=event_body(**overrides), headers=admin.headers)
        assert r.status_code == 422, overrides
        assert r.headers["content-type"] == "application/problem+json"
        assert field in {e["field"] for e in r.json()["errors"]}, (overrides, r.json())


async def test_keyword_is_unique_case_insensitively_until_archived(client: AsyncClient, admin: Actor) -> None:
    first = await create(client, admin, keyword="ROCKFEST")
    r = await client.post("/events", json=event_body(keyword="rockfest"), headers=admin.headers)
    assert r.status_code == 409
    await act(client, admin, first["id"], "archive")  # a draft may be archived (discarded)
    again = await create(client, admin, keyword="RockFest")
    assert again["keyword"] == "ROCKFEST"


async def test_public_view_hides_drafts_and_organizer_fields(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event = await create(client, admin)
    assert (await client.get(f"/events/{event['id']}")).status_code == 404
    assert (await client.get(f"/events/{event['id']}", headers=fan.headers)).status_code == 404
    admin_view = (await client.get(f"/events/{event['id']}", headers=admin.headers)).json()
    assert admin_view["createdBy"] == admin.user_id
    await act(client, admin, event["id"], "publish")
    public = await client.get(f"/events/{event['id']}")
    assert public.status_code == 200
    assert public.json()["status"] == "published"
    assert "createdBy" not in public.json()
    assert (await client.get("/events/999999")).status_code == 404


async def test_list_filters_and_envelope(client: AsyncClient, admin: Actor) -> None:
    draft = await create(client, admin, startDate="2026-12-01T18:00:00Z", endDate="2026-12-01T23:00:00Z")
    published = await create(client, admin, startDate="2026-12-10T18:00:00Z", endDate="2026-12-10T23:00:00Z")
    live = await create(client, admin, startDate="2027-01-05T18:00:00Z", endDate="2027-01-05T23:00:00Z")
    await act(client, admin, published["id"], "publish")
    await act(client, admin, live["id"], "publish")
    await act(client, admin, live["id"], "start")

    public = (await client.get("/events")).json()
    assert public["total"] == 2
    assert [e["id"] for e in public["items"]] == [published["id"], live["id"]]
    assert public["limit"] == 50 and public["offset"] == 0

    everything = (await client.get("/events", headers=admin.headers)).json()
    assert {e["id"] for e in everything["items"]} == {draft["id"], published["id"], live["id"]}
    only_live = (await client.get("/events", params={"status": "live"})).json()
    assert [e["id"] for e in only_live["items"]] == [live["id"]]
    december = (
        await client.get("/events", params={"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T23:59:59Z"})
    ).json()
    assert [e["id"] for e in december["items"]] == [published["id"]]
    page = (await client.get("/events", params={"limit": 1, "offset": 1}, headers=admin.headers)).json()
    assert page["total"] == 3 and len(page["items"]) == 1 and page["limit"] == 1 and page["offset"] == 1
    assert (await client.get("/events", params={"status": "partying"})).status_code == 422
    assert (await client.get("/events", params={"limit": 0})).status_code == 422
    assert (await client.get("/events", params={"from": "yesterday"})).status_code == 422


async def test_lifecycle_transitions_and_the_ones_that_are_409(client: AsyncClient, admin: Actor) -> None:
    event = await create(client, admin)
    eid = event["id"]
    for action in ("start", "close"):
        r = await client.post(f"/events/{eid}/{action}", headers=admin.headers)
        assert r.status_code == 409, action
        assert r.json()["type"] == "urn:stagevote:problem:invalid-transition"
    assert (await act(client, admin, eid, "publish"))["status"] == "published"
    assert (await client.post(f"/events/{eid}/publish", headers=admin.headers)).status_code == 409
    assert (await client.post(f"/events/{eid}/archive", headers=admin.headers)).status_code == 409
    assert (await act(client, admin, eid, "start"))["status"] == "live"
    assert (await act(client, admin, eid, "close"))["status"] == "closed"
    assert (await client.post(f"/events/{eid}/start", headers=admin.headers)).status_code == 409
    assert (await act(client, admin, eid, "archive"))["status"] == "archived"
    assert (await client.post(f"/events/{eid}/close", headers=admin.headers)).status_code == 409
    assert (await client.post("/events/424242/publish", headers=admin.headers)).status_code == 404


async def test_what_may_change_depends_on_status(client: AsyncClient, admin: Actor) -> None:
    event = await create(client, admin)
    eid = event["id"]
    r = await client.put(f"/events/{eid}", json={"keyword": "newword", "accessType": "private"}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["keyword"] == "NEWWORD" and r.json()["accessType"] == "private"
    await act(client, admin, eid, "publish")
    await act(client, admin, eid, "start")

    r = await client.put(f"/events/{eid}", json={"keyword": "OTHER"}, headers=admin.headers)
    assert r.status_code == 409
    assert "keyword" in r.json()["detail"]
    r = await client.put(f"/events/{eid}", json={"title": "Renamed", "venue": "Main Hall"}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["title"] == "Renamed"
    # sending the whole event back unchanged is not a change
    current = (await client.get(f"/events/{eid}", headers=admin.headers)).json()
    assert (await client.put(f"/events/{eid}", json=current, headers=admin.headers)).status_code == 200
    quota = {**current["voteConfig"], "votesPerRound": 3}
    r = await client.put(f"/events/{eid}", json={"voteConfig": quota}, headers=admin.headers)
    assert r.status_code == 409
    visibility = {**current["voteConfig"], "leaderboardVisibility": "after_close"}
    r = await client.put(f"/events/{eid}", json={"voteConfig": visibility}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["voteConfig"]["leaderboardVisibility"] == "after_close"

    await act(client, admin, eid, "close")
    assert (
        await client.put(f"/events/{eid}", json={"endDate": "2027-06-01T00:00:00Z"}, headers=admin.headers)
    ).status_code == 409
    assert (await client.put(f"/events/{eid}", json={"title": "Final name"}, headers=admin.headers)).status_code == 200
    await act(client, admin, eid, "archive")
    assert (await client.put(f"/events/{eid}", json={"title": "x"}, headers=admin.headers)).status_code == 409


async def test_update_validates_dates_and_keyword_conflicts(client: AsyncClient, admin: Actor) -> None:
    one = await create(client, admin, keyword="ALPHA")
    two = await create(client, admin, keyword="BRAVO")
    r = await client.put(f"/events/{two['id']}", json={"keyword": "alpha"}, headers=admin.headers)
    assert r.status_code == 409
    r = await client.put(f"/events/{one['id']}", json={"endDate": "2020-01-01T00:00:00Z"}, headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "endDate"
    r = await client.put(f"/events/{one['id']}", json={"voteConfig": {"votesPerRound": -1}}, headers=admin.headers)
    assert r.status_code == 422
    assert (await client.put("/events/999999", json={"title": "x"}, headers=admin.headers)).status_code == 404


async def test_past_dates_are_allowed_and_start_may_come_early(client: AsyncClient, admin: Actor) -> None:
    event = await create(client, admin, startDate="2020-05-01T18:00:00Z", endDate="2020-05-01T23:00:00Z")
    await act(client, admin, event["id"], "publish")
    assert (await act(client, admin, event["id"], "start"))["status"] == "live"


async def test_event_writes_need_an_admin(client: AsyncClient, actors: Actors) -> None:
    assert (await client.post("/events", json=event_body())).status_code == 401
    for role in ("fan", "artist", "brand", "developer"):
        caller = await actors.make(role)
        r = await client.post("/events", json=event_body(), headers=caller.headers)
        assert r.status_code == 403, role
