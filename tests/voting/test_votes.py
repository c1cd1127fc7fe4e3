"""Voting by web ballot: every rule of voteConfig, idempotent tokens, and the quota under concurrency."""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.factories import Stage, build_stage


async def test_a_vote_is_201_and_the_same_token_again_is_200_counted_once(stage: Stage) -> None:
    ballot = await stage.ballot()
    first = await stage.vote(ballot, "Owls", token="token-abc-1")
    assert first.status_code == 201
    vote = first.json()
    assert set(vote) == {"id", "eventId", "round", "artistId", "token", "createdAt", "receipt"}
    assert vote["round"] == 1 and vote["artistId"] == stage.artists["Owls"] and vote["token"] == "token-abc-1"
    again = await stage.vote(ballot, "Owls", token="token-abc-1")
    assert again.status_code == 200
    assert again.json() == vote
    board = (await stage.board()).json()
    assert board["totalVotes"] == 1


async def test_the_quota_is_one_vote_per_round_by_default(stage: Stage) -> None:
    ballot = await stage.ballot()
    assert (await stage.vote(ballot, "Owls")).status_code == 201
    second = await stage.vote(ballot, "Foxes")
    assert second.status_code == 409
    assert second.json()["type"] == "urn:stagevote:problem:quota-used"
    await stage.admin_post("/rounds/1/close")
    await stage.admin_post("/rounds/2/open")
    assert (await stage.vote(ballot, "Foxes", round_=2)).status_code == 201


async def test_votes_per_round_allows_several(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin, votesPerRound=3)
    ballot = await stage.ballot()
    for artist in ("Owls", "Owls", "Foxes"):
        assert (await stage.vote(ballot, artist)).status_code == 201
    assert (await stage.vote(ballot, "Bears")).status_code == 409
    standings = {s["name"]: s["votes"] for s in (await stage.board()).json()["standings"]}
    assert standings == {"Owls": 2, "Foxes": 1, "Bears": 0}


async def test_allow_vote_change_moves_the_vote(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin, allowVoteChange=True)
    ballot = await stage.ballot()
    assert (await stage.vote(ballot, "Owls")).status_code == 201
    changed = await stage.vote(ballot, "Foxes")
    assert changed.status_code == 201
    assert changed.json()["artistId"] == stage.artists["Foxes"]
    board = (await stage.board()).json()
    assert board["totalVotes"] == 1
    assert {s["name"]: s["votes"] for s in board["standings"]}["Foxes"] == 1


async def test_a_late_retry_of_a_changed_vote_answers_200_and_never_changes_it_back(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    """Vote with token A, change with token B, then A's request arrives again (a retry after a timeout):
    200 with the vote as A recorded it, and the vote stays B's. So does a retry of B, and of A later."""
    stage = await build_stage(client, runtime, admin, allowVoteChange=True)
    ballot = await stage.ballot()
    first = await stage.vote(ballot, "Owls", token="token-A-1")
    assert first.status_code == 201
    changed = await stage.vote(ballot, "Foxes", token="token-B-1")
    assert changed.status_code == 201
    for _ in range(2):
        retry = await stage.vote(ballot, "Owls", token="token-A-1")
        assert retry.status_code == 200, retry.text
        assert retry.json() == first.json()  # the same answer as the first time: the same row, Owls, A's time
        again = await stage.vote(ballot, "Foxes", token="token-B-1")
        assert again.status_code == 200
        assert again.json() == changed.json()
    board = (await stage.board(headers=admin.headers)).json()
    assert board["totalVotes"] == 1
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 0, "Foxes": 1, "Bears": 0}
    other = await stage.ballot()  # a replaced token is nobody else's to use
    r = await stage.vote(other, "Bears", token="token-A-1")
    assert r.status_code == 409
    assert r.json()["type"] == "urn:stagevote:problem:token-used"
    # and a third change, then A and B again: still no flip
    assert (await stage.vote(ballot, "Bears", token="token-C-1")).status_code == 201
    assert (await stage.vote(ballot, "Owls", token="token-A-1")).status_code == 200
    assert (await stage.vote(ballot, "Foxes", token="token-B-1")).json() == changed.json()
    board = (await stage.board(headers=admin.headers)).json()
    assert {s["name"]: s["votes"] for s in board["standings"]} == {"Owls": 0, "Foxes": 0, "Bears": 1}


async def test_rounds_and_events_not_open_are_409(stage: Stage) -> None:
    ballot = await stage.ballot()
    assert (await stage.vote(ballot, "Owls", round_=2)).status_code == 409  # pending
    r = await stage.vote(ballot, "Owls", round_=7)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "round"
    await stage.admin_post("/rounds/1/close")
    assert (await stage.vote(ballot, "Owls", round_=1)).status_code == 409  # closed
    await stage.admin_post("/close")
    r = await stage.vote(ballot, "Owls", round_=1)
    assert r.status_code == 409
    assert r.json()["type"] == "urn:stagevote:problem:event-not-live"


async def test_an_artist_not_in_the_round_is_422(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    # round 2 only has the Owls and the Bears
    event = (await client.get(f"/events/{stage.event_id}", headers=admin.headers)).json()
    config = event["voteConfig"]
    config["rounds"][1]["artistIds"] = [stage.artists["Owls"], stage.artists["Bears"]]
    assert (
        await client.put(f"/events/{stage.event_id}", json={"voteConfig": config}, headers=admin.headers)
    ).status_code == 200
    await stage.admin_post("/rounds/1/close")
    await stage.admin_post("/rounds/2/open")
    ballot = await stage.ballot()
    r = await stage.vote(ballot, "Foxes", round_=2)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "artistId"
    r = await client.post(
        f"/events/{stage.event_id}/vote",
        json={"round": 2, "artistId": 999999, "token": "tok-unknown-artist"},
        headers=ballot.headers,
    )
    assert r.status_code == 422
    assert (await stage.vote(ballot, "Bears", round_=2)).status_code == 201
    names = [s["name"] for s in (await stage.board(2)).json()["standings"]]
    assert sorted(names) == ["Bears", "Owls"]


async def test_unconfirmed_and_opted_out_attendees_are_403(stage: Stage) -> None:
    unconfirmed = await stage.ballot(confirmed=False)
    assert (await stage.vote(unconfirmed, "Owls")).status_code == 403
    opted_out = await stage.ballot(opted_out=True)
    assert (await stage.vote(opted_out, "Owls")).status_code == 403
    assert (await stage.board()).json()["totalVotes"] == 0


async def test_without_require_confirmation_unconfirmed_attendees_vote(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin, requireConfirmation=False)
    assert (await stage.vote(await stage.ballot(confirmed=False), "Owls")).status_code == 201


async def test_ballot_tokens_are_checked(stage: Stage, client: AsyncClient, admin: Actor) -> None:
    body = {"round": 1, "artistId": stage.artists["Owls"], "token": "tok-no-ballot"}
    assert (await client.post(f"/events/{stage.event_id}/vote", json=body)).status_code == 401
    bad = {"Authorization": "Bearer not-a-ballot"}
    assert (await client.post(f"/events/{stage.event_id}/vote", json=body, headers=bad)).status_code == 401
    # an admin's access token is not a ballot
    assert (await client.post(f"/events/{stage.event_id}/vote", json=body, headers=admin.headers)).status_code == 401
    other = await build_stage(client, stage.runtime, admin)
    ballot = await other.ballot()
    r = await client.post(f"/events/{stage.event_id}/vote", json=body, headers=ballot.headers)
    assert r.status_code == 401
    r = await client.post(f"/events/{stage.event_id}/vote", json={"round": 1}, headers=ballot.headers)
    assert r.status_code == 422


async def test_a_token_used_by_another_attendee_is_409(stage: Stage) -> None:
    one, two = await stage.ballot(), await stage.ballot()
    assert (await stage.vote(one, "Owls", token="shared-token-1")).status_code == 201
    assert (await stage.vote(two, "Owls", token="shared-token-1")).status_code == 409


@pytest.mark.postgresql
async def test_twenty_concurrent_votes_from_one_ballot_count_exactly_the_quota(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    batches = "stagevote_vote_batch_size_count"
    for quota in (1, 3):
        stage = await build_stage(client, runtime, admin, votesPerRound=quota)
        ballot = await stage.ballot()
        before = runtime.metrics.registry.get_sample_value(batches) or 0
        answers = await asyncio.gather(*(stage.vote(ballot, "Owls", token=f"burst-{quota}-{i}") for i in range(20)))
        codes = sorted(r.status_code for r in answers)
        assert codes.count(201) == quota, codes
        assert codes.count(409) == 20 - quota, codes
        assert (await stage.board()).json()["totalVotes"] == quota
        # on the group commit: each of the attendee's votes went into a batch of its own, one after another
        assert (runtime.metrics.registry.get_sample_value(batches) or 0) - before >= quota + 1


@pytest.mark.postgresql
async def test_twenty_concurrent_retries_of_one_token_count_once(stage: Stage) -> None:
    ballot = await stage.ballot()
    answers = await asyncio.gather(*(stage.vote(ballot, "Owls", token="same-token-20") for _ in range(20)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 19 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
