"""Artists: invitations and vote codes, the line-up, claiming a profile, accepting and declining."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from httpx import AsyncClient, Response

from stagevote.artists import service as artists_service
from stagevote.core.runtime import Runtime
from tests.conftest import PASSWORD, Actor, Actors
from tests.factories import event_body
from tests.http import ok, problem
from tests.tokens import ANOTHER_KEY, alg_none_keeping_signature, clock_moved, each_claim_dropped, resigned, unsigned

PUBLIC_KEYS = {"artistId", "name", "bio", "socialLinks", "voteCode"}


def field_errors(r: Response) -> set[str]:
    return {e["field"] for e in problem(r, 422)["errors"]}


async def create_event(client: AsyncClient, admin: Actor, *, status: str = "draft") -> int:
    event_id: int = ok(await client.post("/events", json=event_body(), headers=admin.headers), 201)["id"]
    path = {"draft": [], "published": ["publish"], "live": ["publish", "start"]}.get(status)
    path = path if path is not None else {"closed": ["publish", "start", "close"], "archived": ["archive"]}[status]
    for action in path:
        ok(await client.post(f"/events/{event_id}/{action}", headers=admin.headers))
    return event_id


async def transition(client: AsyncClient, admin: Actor, event_id: int, action: str) -> None:
    ok(await client.post(f"/events/{event_id}/{action}", headers=admin.headers))


async def invite(client: AsyncClient, admin: Actor, event_id: int, **body: Any) -> dict[str, Any]:
    body = body or {"name": "The Midnight Owls"}
    return ok(await client.post(f"/events/{event_id}/artists", json=body, headers=admin.headers), 201)


def claim_token(invitation: dict[str, Any]) -> str:
    token: str = invitation["inviteUrl"].rsplit("/", 1)[1]
    return token


async def claim(client: AsyncClient, who: Actor, invitation: dict[str, Any]) -> Response:
    return await client.post(
        f"/artists/{invitation['artistId']}/claim", json={"claimToken": claim_token(invitation)}, headers=who.headers
    )


async def answer(client: AsyncClient, who: Actor | None, event_id: int, artist_id: int, verb: str) -> Response:
    headers = who.headers if who is not None else {}
    return await client.post(f"/events/{event_id}/artists/{artist_id}/{verb}", headers=headers)


async def line_up(client: AsyncClient, event_id: int, who: Actor | None = None, **params: Any) -> dict[str, Any]:
    headers = who.headers if who is not None else {}
    return ok(await client.get(f"/events/{event_id}/artists", params=params, headers=headers))


# --- inviting -------------------------------------------------------------------------------------


async def test_inviting_a_new_artist_answers_the_invitation_with_a_claim_link(
    client: AsyncClient, admin: Actor, runtime: Runtime
) -> None:
    event_id = await create_event(client, admin)
    links = {"instagram": "https://instagram.com/owls", "web": "https://owls.example.com"}
    invitation = await invite(
        client,
        admin,
        event_id,
        name="  The Midnight Owls ",
        bio="Synth pop",
        socialLinks=links,
        email="Owls@Example.com",
    )
    assert set(invitation) == {
        "artistId",
        "name",
        "bio",
        "socialLinks",
        "status",
        "inviteStatus",
        "voteCode",
        "inviteUrl",
    }
    assert invitation["name"] == "The Midnight Owls"
    assert invitation["bio"] == "Synth pop"
    assert invitation["socialLinks"] == links  # kept as written, no trailing slash added
    assert invitation["status"] == "invited"
    assert invitation["inviteStatus"] == "pending"
    assert invitation["voteCode"] == "1"
    assert invitation["inviteUrl"].startswith("http://testserver/claim/")
    # the link claims this artist's invitation to this event, for two weeks, and is good for nothing else
    token = claim_token(invitation)
    page = await client.get(f"/claim/{token}")
    assert page.status_code == 200 and "The Midnight Owls" in page.text
    assert (await client.get("/auth/profile", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await client.get("/ballot", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    with clock_moved(dt.timedelta(days=13, hours=23)):
        assert (await client.get(f"/claim/{token}")).status_code == 200
    with clock_moved(dt.timedelta(days=14, hours=1)):
        assert (await client.get(f"/claim/{token}")).status_code == 404

    admin_view = (await line_up(client, event_id, admin))["items"]
    assert admin_view[0]["email"] == "owls@example.com"
    assert admin_view[0]["claimedByUserId"] is None


async def test_a_new_artist_needs_only_a_name(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id, name="Solo")
    assert invitation["bio"] is None
    assert invitation["socialLinks"] == {}


async def test_vote_codes_are_sequential_and_unique_within_each_event(client: AsyncClient, admin: Actor) -> None:
    first_event = await create_event(client, admin)
    second_event = await create_event(client, admin, status="published")
    codes = [(await invite(client, admin, first_event, name=f"Band {n}"))["voteCode"] for n in range(1, 12)]
    assert codes == [str(n) for n in range(1, 12)]
    # another event counts from 1 again, and an artist may be invited to several events
    again = await invite(client, admin, second_event, name="Band X")
    assert again["voteCode"] == "1"
    known = (await line_up(client, first_event, admin))["items"][4]
    reinvited = await invite(client, admin, second_event, artistId=known["artistId"])
    assert reinvited["voteCode"] == "2"
    assert reinvited["name"] == known["name"]
    # the admin list is in numeric vote-code order ("2" before "10")
    listed = [a["voteCode"] for a in (await line_up(client, first_event, admin))["items"]]
    assert listed == [str(n) for n in range(1, 12)]


async def test_concurrent_invitations_to_one_event_get_distinct_codes(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin, status="live")
    answers = await asyncio.gather(
        *(
            client.post(f"/events/{event_id}/artists", json={"name": f"Band {n}"}, headers=admin.headers)
            for n in range(6)
        )
    )
    assert [r.status_code for r in answers] == [201] * 6
    assert sorted(int(r.json()["voteCode"]) for r in answers) == [1, 2, 3, 4, 5, 6]
    assert (await line_up(client, event_id, admin))["total"] == 6


async def test_inviting_an_existing_artist_by_id_and_twice_is_409(client: AsyncClient, admin: Actor) -> None:
    first = await create_event(client, admin)
    second = await create_event(client, admin)
    made = await invite(client, admin, first, name="Owls", bio="Synth pop", socialLinks={"x": "https://x.com/owls"})
    again = await invite(client, admin, second, artistId=made["artistId"])
    assert again["artistId"] == made["artistId"]
    assert (again["name"], again["bio"], again["socialLinks"]) == ("Owls", "Synth pop", {"x": "https://x.com/owls"})
    assert again["inviteStatus"] == "pending"
    assert claim_token(again) != claim_token(made)  # each invitation has its own link

    twice = await client.post(f"/events/{second}/artists", json={"artistId": made["artistId"]}, headers=admin.headers)
    problem(twice, 409)
    assert (await line_up(client, second, admin))["total"] == 1


async def test_an_invitation_body_must_be_exactly_one_of_the_two_forms(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin)
    existing = (await invite(client, admin, event_id, name="Owls"))["artistId"]
    other_event = await create_event(client, admin)
    url = f"/events/{other_event}/artists"
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, {"name"}),
        ({"name": "   "}, {"name"}),
        ({"bio": "no name"}, {"name"}),
        ({"artistId": existing, "name": "Owls"}, {"name"}),
        ({"artistId": existing, "bio": "x", "email": "a@example.com"}, {"bio", "email"}),
        ({"artistId": "abc"}, {"artistId"}),
        ({"artistId": 0}, {"artistId"}),
        ({"name": "Owls", "socialLinks": {"web": "ftp://owls.example.com"}}, {"socialLinks.web"}),
        ({"name": "Owls", "socialLinks": ["https://owls.example.com"]}, {"socialLinks"}),
        ({"name": "Owls", "email": "not-an-email"}, {"email"}),
        ({"name": "x" * 201}, {"name"}),
    ]
    for body, fields in cases:
        r = await client.post(url, json=body, headers=admin.headers)
        assert field_errors(r) == fields, (body, r.text)
    unknown = await client.post(url, json={"artistId": 999999}, headers=admin.headers)
    assert field_errors(unknown) == {"artistId"}
    assert (await line_up(client, other_event, admin))["total"] == 0  # nothing was created


async def test_only_admins_invite(client: AsyncClient, admin: Actor, fan: Actor, actors: Actors) -> None:
    event_id = await create_event(client, admin)
    url = f"/events/{event_id}/artists"
    problem(await client.post(url, json={"name": "Owls"}), 401)
    problem(await client.post(url, json={"name": "Owls"}, headers={"Authorization": "Bearer garbage"}), 401)
    for role in ("fan", "artist", "brand", "developer"):
        who = fan if role == "fan" else await actors.make(role)
        problem(await client.post(url, json={"name": "Owls"}, headers=who.headers), 403)
    assert (await line_up(client, event_id, admin))["total"] == 0


async def test_inviting_to_an_unknown_event_is_404(client: AsyncClient, admin: Actor) -> None:
    problem(await client.post("/events/999999/artists", json={"name": "Owls"}, headers=admin.headers), 404)


async def test_invitations_follow_the_event_lifecycle(client: AsyncClient, admin: Actor) -> None:
    for status in ("draft", "published", "live"):
        event_id = await create_event(client, admin, status=status)
        assert (await invite(client, admin, event_id))["voteCode"] == "1"
    for status in ("closed", "archived"):
        event_id = await create_event(client, admin, status=status)
        r = await client.post(f"/events/{event_id}/artists", json={"name": "Owls"}, headers=admin.headers)
        assert status in problem(r, 409)["detail"]


# --- the line-up ----------------------------------------------------------------------------------


async def test_the_whole_flow_invite_claim_accept_then_listed_publicly(
    client: AsyncClient, admin: Actor, fan: Actor
) -> None:
    event_id = await create_event(client, admin, status="published")
    invitation = await invite(client, admin, event_id, name="Owls", socialLinks={"web": "https://owls.example.com"})
    assert (await line_up(client, event_id))["items"] == []

    claimed = ok(await claim(client, fan, invitation))
    assert claimed == {
        "id": invitation["artistId"],
        "name": "Owls",
        "bio": None,
        "socialLinks": {"web": "https://owls.example.com"},
        "status": "claimed",
        "claimedByUserId": fan.user_id,
    }
    assert (await line_up(client, event_id))["total"] == 0  # claimed is not yet accepted

    accepted = ok(await answer(client, fan, event_id, invitation["artistId"], "accept"))
    assert accepted == {"inviteStatus": "accepted"}
    public = await line_up(client, event_id)
    assert public == {
        "items": [
            {
                "artistId": invitation["artistId"],
                "name": "Owls",
                "bio": None,
                "socialLinks": {"web": "https://owls.example.com"},
                "voteCode": "1",
            }
        ],
        "total": 1,
        "limit": 50,
        "offset": 0,
    }
    admin_item = (await line_up(client, event_id, admin))["items"][0]
    assert admin_item["inviteStatus"] == "accepted"
    assert admin_item["status"] == "claimed"
    assert admin_item["claimedByUserId"] == fan.user_id
    assert admin_item["joinedAt"] is not None
    assert admin_item["invitedAt"] is not None


async def test_the_public_sees_only_accepted_artists_admins_see_every_invitation(
    client: AsyncClient, admin: Actor, fan: Actor, actors: Actors
) -> None:
    event_id = await create_event(client, admin, status="live")
    accepted, declined, pending, claimed = [await invite(client, admin, event_id, name=f"Band {n}") for n in range(4)]
    other = await actors.make("fan")
    ok(await claim(client, fan, accepted))
    ok(await claim(client, other, declined))
    ok(await claim(client, other, claimed))
    ok(await answer(client, fan, event_id, accepted["artistId"], "accept"))
    assert ok(await answer(client, other, event_id, declined["artistId"], "decline")) == {"inviteStatus": "declined"}

    for who in (None, fan, other, await actors.make("brand")):
        public = await line_up(client, event_id, who)
        assert public["total"] == 1
        assert [a["artistId"] for a in public["items"]] == [accepted["artistId"]]
        assert set(public["items"][0]) == PUBLIC_KEYS

    everything = await line_up(client, event_id, admin)
    assert everything["total"] == 4
    by_id = {a["artistId"]: a for a in everything["items"]}
    assert by_id[accepted["artistId"]]["inviteStatus"] == "accepted"
    assert by_id[declined["artistId"]]["inviteStatus"] == "declined"
    assert by_id[declined["artistId"]]["joinedAt"] is None
    assert (by_id[pending["artistId"]]["inviteStatus"], by_id[pending["artistId"]]["status"]) == ("pending", "invited")
    assert (by_id[claimed["artistId"]]["inviteStatus"], by_id[claimed["artistId"]]["status"]) == ("pending", "claimed")
    assert set(by_id[pending["artistId"]]) == PUBLIC_KEYS | {
        "status",
        "inviteStatus",
        "email",
        "claimedByUserId",
        "invitedAt",
        "joinedAt",
    }


async def test_the_line_up_is_paginated(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin, status="published")
    for n in range(5):
        made = await invite(client, admin, event_id, name=f"Band {n}")
        ok(await answer(client, admin, event_id, made["artistId"], "accept"))
    page = await line_up(client, event_id, limit=2, offset=2)
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
    assert [a["voteCode"] for a in page["items"]] == ["3", "4"]
    assert [a["voteCode"] for a in (await line_up(client, event_id, limit=2, offset=4))["items"]] == ["5"]
    assert (await line_up(client, event_id, offset=10))["items"] == []
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "many"}):
        problem(await client.get(f"/events/{event_id}/artists", params=bad), 422)


async def test_the_line_up_of_a_draft_is_404_except_for_admins(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event_id = await create_event(client, admin)
    await invite(client, admin, event_id)
    problem(await client.get(f"/events/{event_id}/artists"), 404)
    problem(await client.get(f"/events/{event_id}/artists", headers=fan.headers), 404)
    assert (await line_up(client, event_id, admin))["total"] == 1
    problem(await client.get("/events/999999/artists", headers=admin.headers), 404)
    problem(await client.get(f"/events/{event_id}/artists", headers={"Authorization": "Bearer nope"}), 401)


# --- claiming -------------------------------------------------------------------------------------


async def test_a_fan_who_claims_becomes_an_artist(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    assert ok(await client.get("/auth/profile", headers=fan.headers))["role"] == "fan"
    ok(await claim(client, fan, invitation))
    assert ok(await client.get("/auth/profile", headers=fan.headers))["role"] == "artist"


async def test_an_admin_who_claims_stays_an_admin(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    claimed = ok(await claim(client, admin, invitation))
    assert (claimed["status"], claimed["claimedByUserId"]) == ("claimed", admin.user_id)
    assert ok(await client.get("/auth/profile", headers=admin.headers))["role"] == "admin"


async def test_claiming_again_is_idempotent_for_the_same_user_and_409_for_another(
    client: AsyncClient, admin: Actor, fan: Actor, actors: Actors
) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    first = ok(await claim(client, fan, invitation))
    assert ok(await claim(client, fan, invitation)) == first
    rival = await actors.make("fan")
    problem(await claim(client, rival, invitation), 409)
    assert ok(await client.get("/auth/profile", headers=rival.headers))["role"] == "fan"
    # the same profile invited to another event: that invitation's token also works, for the same user only
    second_event = await create_event(client, admin)
    second = await invite(client, admin, second_event, artistId=invitation["artistId"])
    assert second["status"] == "claimed"
    assert ok(await claim(client, fan, second))["claimedByUserId"] == fan.user_id
    problem(await claim(client, rival, second), 409)


async def test_concurrent_claims_leave_one_owner(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    event_id = await create_event(client, admin, status="live")
    invitation = await invite(client, admin, event_id)
    rivals = [await actors.make("fan") for _ in range(4)]
    answers = await asyncio.gather(*(claim(client, who, invitation) for who in rivals))
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409], [r.text for r in answers]
    winner = next(who for who, r in zip(rivals, answers, strict=True) if r.status_code == 200)
    assert (await line_up(client, event_id, admin))["items"][0]["claimedByUserId"] == winner.user_id
    roles = [ok(await client.get("/auth/profile", headers=who.headers))["role"] for who in rivals]
    assert sorted(roles) == ["artist", "fan", "fan", "fan"]


async def test_claiming_needs_a_signed_in_user(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    url = f"/artists/{invitation['artistId']}/claim"
    problem(await client.post(url, json={"claimToken": claim_token(invitation)}), 401)
    problem(
        await client.post(url, json={"claimToken": claim_token(invitation)}, headers={"Authorization": "Bearer x"}),
        401,
    )
    assert (await line_up(client, event_id, admin))["items"][0]["claimedByUserId"] is None


async def test_bad_claim_tokens_are_422_on_claim_token(
    client: AsyncClient, admin: Actor, fan: Actor, runtime: Runtime
) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    other = await invite(client, admin, event_id, name="Other band")
    artist_id = invitation["artistId"]
    token = claim_token(invitation)
    bad = [resigned(token, ANOTHER_KEY), unsigned(token), alg_none_keeping_signature(token), fan.token, "garbage"]
    bad += [
        dropped for _, dropped in each_claim_dropped(token, runtime.secret_key.get_secret_value())
    ]  # each of them is needed
    bad.append(claim_token(other))  # another artist's link
    with clock_moved(dt.timedelta(days=15)):  # expired (the fan signs in again then: access tokens last 15 minutes)
        login = ok(await client.post("/auth/login", json={"email": fan.email, "password": PASSWORD}))
        signed_in = {"Authorization": f"Bearer {login['accessToken']}"}
        r = await client.post(f"/artists/{artist_id}/claim", json={"claimToken": token}, headers=signed_in)
        assert field_errors(r) == {"claimToken"}
    for token in bad:
        r = await client.post(f"/artists/{artist_id}/claim", json={"claimToken": token}, headers=fan.headers)
        assert field_errors(r) == {"claimToken"}, token
    missing = await client.post(f"/artists/{artist_id}/claim", json={}, headers=fan.headers)
    assert field_errors(missing) == {"claimToken"}
    # nothing was claimed and the fan is still a fan
    assert (await line_up(client, event_id, admin))["items"][0]["claimedByUserId"] is None
    assert ok(await client.get("/auth/profile", headers=fan.headers))["role"] == "fan"


async def test_claiming_an_unknown_artist_is_404(client: AsyncClient, fan: Actor, runtime: Runtime) -> None:
    token = artists_service.claim_token_for(runtime=runtime, artist_id=999999, event_id=1)
    problem(await client.post("/artists/999999/claim", json={"claimToken": token}, headers=fan.headers), 404)


async def test_a_token_for_an_event_the_artist_is_not_invited_to_is_404(
    client: AsyncClient, admin: Actor, fan: Actor, runtime: Runtime
) -> None:
    invited_to = await create_event(client, admin)
    not_invited_to = await create_event(client, admin)
    artist_id = (await invite(client, admin, invited_to))["artistId"]
    token = artists_service.claim_token_for(runtime=runtime, artist_id=artist_id, event_id=not_invited_to)
    problem(await client.post(f"/artists/{artist_id}/claim", json={"claimToken": token}, headers=fan.headers), 404)


async def test_claiming_once_the_event_is_closed_is_409(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event_id = await create_event(client, admin, status="live")
    invitation = await invite(client, admin, event_id)
    await transition(client, admin, event_id, "close")
    problem(await claim(client, fan, invitation), 409)
    await transition(client, admin, event_id, "archive")
    problem(await claim(client, fan, invitation), 409)
    assert ok(await client.get("/auth/profile", headers=fan.headers))["role"] == "fan"


async def test_claiming_works_while_draft_published_or_live(client: AsyncClient, admin: Actor, actors: Actors) -> None:
    for status in ("draft", "published", "live"):
        event_id = await create_event(client, admin, status=status)
        who = await actors.make("fan")
        assert ok(await claim(client, who, await invite(client, admin, event_id)))["claimedByUserId"] == who.user_id


async def test_the_claiming_artist_reads_the_draft_it_is_invited_to(
    client: AsyncClient, admin: Actor, fan: Actor, actors: Actors
) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    problem(await client.get(f"/events/{event_id}", headers=fan.headers), 404)
    ok(await claim(client, fan, invitation))
    assert ok(await client.get(f"/events/{event_id}", headers=fan.headers))["id"] == event_id
    bystander = await actors.make("fan")
    problem(await client.get(f"/events/{event_id}", headers=bystander.headers), 404)
    problem(await client.get(f"/events/{event_id}"), 404)
    # another artist, invited to another draft, does not see this one
    elsewhere = await create_event(client, admin)
    stranger = await actors.make("fan")
    ok(await claim(client, stranger, await invite(client, admin, elsewhere, name="Elsewhere")))
    problem(await client.get(f"/events/{event_id}", headers=stranger.headers), 404)


# --- accepting and declining ----------------------------------------------------------------------


async def test_answers_may_change_while_the_event_is_open(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event_id = await create_event(client, admin, status="published")
    invitation = await invite(client, admin, event_id)
    artist_id = invitation["artistId"]
    ok(await claim(client, fan, invitation))
    assert ok(await answer(client, fan, event_id, artist_id, "accept")) == {"inviteStatus": "accepted"}
    joined_at = (await line_up(client, event_id, admin))["items"][0]["joinedAt"]
    assert ok(await answer(client, fan, event_id, artist_id, "accept")) == {"inviteStatus": "accepted"}
    assert (await line_up(client, event_id, admin))["items"][0]["joinedAt"] == joined_at  # unchanged by a repeat
    assert (await line_up(client, event_id))["total"] == 1

    assert ok(await answer(client, fan, event_id, artist_id, "decline")) == {"inviteStatus": "declined"}
    assert (await line_up(client, event_id))["total"] == 0
    assert (await line_up(client, event_id, admin))["items"][0]["joinedAt"] is None
    await transition(client, admin, event_id, "start")
    assert ok(await answer(client, fan, event_id, artist_id, "accept")) == {"inviteStatus": "accepted"}
    assert (await line_up(client, event_id))["total"] == 1


async def test_an_admin_answers_for_an_artist_who_has_not_claimed(client: AsyncClient, admin: Actor) -> None:
    event_id = await create_event(client, admin, status="live")
    artist_id = (await invite(client, admin, event_id))["artistId"]
    assert ok(await answer(client, admin, event_id, artist_id, "accept")) == {"inviteStatus": "accepted"}
    assert [a["artistId"] for a in (await line_up(client, event_id))["items"]] == [artist_id]
    assert ok(await answer(client, admin, event_id, artist_id, "decline")) == {"inviteStatus": "declined"}
    assert (await line_up(client, event_id))["items"] == []


async def test_only_the_claiming_artist_or_an_admin_answers(
    client: AsyncClient, admin: Actor, fan: Actor, actors: Actors
) -> None:
    event_id = await create_event(client, admin, status="published")
    invitation = await invite(client, admin, event_id)
    artist_id = invitation["artistId"]
    problem(await answer(client, None, event_id, artist_id, "accept"), 401)
    # nobody has claimed the profile yet: a fan cannot answer for it
    problem(await answer(client, fan, event_id, artist_id, "accept"), 403)
    ok(await claim(client, fan, invitation))
    another_artist = await actors.make("artist")
    for who in (another_artist, await actors.make("fan"), await actors.make("brand")):
        for verb in ("accept", "decline"):
            problem(await answer(client, who, event_id, artist_id, verb), 403)
    assert (await line_up(client, event_id, admin))["items"][0]["inviteStatus"] == "pending"
    ok(await answer(client, fan, event_id, artist_id, "decline"))


async def test_answering_an_unknown_invitation_is_404(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event_id = await create_event(client, admin, status="published")
    other_event = await create_event(client, admin, status="published")
    invitation = await invite(client, admin, event_id)
    ok(await claim(client, fan, invitation))
    artist_id = invitation["artistId"]
    problem(await answer(client, fan, other_event, artist_id, "accept"), 404)  # not invited there
    problem(await answer(client, admin, event_id, 999999, "accept"), 404)
    problem(await answer(client, admin, 999999, artist_id, "decline"), 404)


async def test_a_draft_invitation_is_404_to_a_fan_but_answerable_by_its_artist(
    client: AsyncClient, admin: Actor, fan: Actor, actors: Actors
) -> None:
    event_id = await create_event(client, admin)
    invitation = await invite(client, admin, event_id)
    bystander = await actors.make("fan")
    problem(await answer(client, bystander, event_id, invitation["artistId"], "accept"), 404)
    ok(await claim(client, fan, invitation))
    assert ok(await answer(client, fan, event_id, invitation["artistId"], "accept")) == {"inviteStatus": "accepted"}


async def test_answering_once_the_event_is_closed_is_409(client: AsyncClient, admin: Actor, fan: Actor) -> None:
    event_id = await create_event(client, admin, status="live")
    invitation = await invite(client, admin, event_id)
    ok(await claim(client, fan, invitation))
    ok(await answer(client, fan, event_id, invitation["artistId"], "accept"))
    await transition(client, admin, event_id, "close")
    for who in (fan, admin):
        for verb in ("accept", "decline"):
            problem(await answer(client, who, event_id, invitation["artistId"], verb), 409)
    assert (await line_up(client, event_id))["items"][0]["artistId"] == invitation["artistId"]
    await transition(client, admin, event_id, "archive")
    problem(await answer(client, admin, event_id, invitation["artistId"], "decline"), 409)
