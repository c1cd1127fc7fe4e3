"""Cross-event access: a ballot, an artist or a sponsor of event A, used on event B, gets nothing of B."""

from __future__ import annotations

import uuid

import pytest
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import Actor, Actors
from tests.factories import build_stage
from tests.http import ok, problem
from tests.proof.figures import Figures

pytestmark = pytest.mark.proof


async def test_a_ballot_of_one_event_votes_nowhere_else(
    client: AsyncClient, runtime: Runtime, admin: Actor, figures: Figures
) -> None:
    a, b = await build_stage(client, runtime, admin), await build_stage(client, runtime, admin)
    ballot = await a.ballot()
    vote = {"round": 1, "artistId": b.artists["Owls"], "token": uuid.uuid4().hex}
    problem(await client.post(f"/events/{b.event_id}/vote", json=vote, headers=ballot.headers), 401)
    assert ok(await b.board())["totalVotes"] == 0
    # its own event takes it: the refusal was the event, not the ballot
    assert (await a.vote(ballot, "Owls")).status_code == 201
    figures.add("hostile cases tried")


async def test_an_artist_of_one_event_is_not_in_another_events_rounds(
    client: AsyncClient, runtime: Runtime, admin: Actor, figures: Figures
) -> None:
    a, b = await build_stage(client, runtime, admin), await build_stage(client, runtime, admin, names=("Bears",))
    ballot = await b.ballot()
    vote = {"round": 1, "artistId": a.artists["Owls"], "token": uuid.uuid4().hex}
    refused = problem(await client.post(f"/events/{b.event_id}/vote", json=vote, headers=ballot.headers), 422)
    assert {e["field"] for e in refused["errors"]} == {"artistId"}
    assert ok(await b.board())["totalVotes"] == 0 and ok(await a.board())["totalVotes"] == 0
    assert (await b.vote(ballot, "Bears")).status_code == 201  # the ballot itself was good
    figures.add("hostile cases tried")


async def test_the_user_of_one_events_artist_cannot_answer_for_another_event(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors, figures: Figures
) -> None:
    a, b = await build_stage(client, runtime, admin), await build_stage(client, runtime, admin, names=("Bears",))
    invited = ok(
        await client.post(f"/events/{a.event_id}/artists", json={"name": "Wolves"}, headers=admin.headers), 201
    )
    artist = await actors.make("fan")
    token = invited["inviteUrl"].rsplit("/", 1)[1]
    ok(await client.post(f"/artists/{invited['artistId']}/claim", json={"claimToken": token}, headers=artist.headers))

    # its own profile is not invited to B; another artist's invitation in B is not its to answer
    problem(
        await client.post(f"/events/{b.event_id}/artists/{invited['artistId']}/accept", headers=artist.headers), 404
    )
    problem(
        await client.post(f"/events/{b.event_id}/artists/{b.artists['Bears']}/decline", headers=artist.headers), 403
    )
    # the claim link of A's invitation claims nothing at B's artists
    other = await client.post(
        f"/artists/{b.artists['Bears']}/claim", json={"claimToken": token}, headers=artist.headers
    )
    assert {e["field"] for e in problem(other, 422)["errors"]} == {"claimToken"}
    line_up = ok(await client.get(f"/events/{b.event_id}/artists", headers=admin.headers))["items"]
    assert [(x["name"], x["inviteStatus"], x["claimedByUserId"]) for x in line_up] == [("Bears", "accepted", None)]
    # and at A it answers its own invitation
    ok(await client.post(f"/events/{a.event_id}/artists/{invited['artistId']}/accept", headers=artist.headers))
    figures.add("hostile cases tried", 3)


async def test_a_sponsor_of_one_event_sees_no_figures_of_another(
    client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors, figures: Figures
) -> None:
    a, b = await build_stage(client, runtime, admin), await build_stage(client, runtime, admin)
    brand = await actors.make("brand")
    ok(await client.post(f"/events/{a.event_id}/sponsors", json={"userId": brand.user_id}, headers=admin.headers), 201)
    for path in ("/events/{}/report", "/events/{}/report?dataset=attendees", "/analytics/events/{}"):
        assert (await client.get(path.format(a.event_id), headers=brand.headers)).status_code == 200
        problem(await client.get(path.format(b.event_id), headers=brand.headers), 403)
        figures.add("hostile cases tried")
    stream = await client.get(
        f"/analytics/events/{b.event_id}", headers={**brand.headers, "Accept": "text/event-stream"}
    )
    problem(stream, 403)
    problem(await client.get(f"/events/{b.event_id}/sponsors", headers=brand.headers), 403)
    figures.add("hostile cases tried", 2)
