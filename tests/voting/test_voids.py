"""Voids: an organizer voids one vote or every vote of an attendee; the leaderboard, analytics, reports and the
receipt follow; a seal made before the void stands, a seal made after leaves the voided vote out."""

from __future__ import annotations

import csv
import io

from httpx import AsyncClient

from stagevote.core import merkle
from stagevote.core.runtime import Runtime
from tests.audit.conftest import audit_log
from tests.conftest import Actor
from tests.factories import Ballot, Stage, build_stage
from tests.http import ok, problem


async def standings(stage: Stage, round_: int = 1) -> dict[str, int]:
    board = ok(await stage.board(round_, headers=stage.admin.headers))
    return {s["name"]: s["votes"] for s in board["standings"]}


async def void_vote(stage: Stage, vote_id: int, reason: str = "fraud", **extra: str) -> dict[str, object]:
    r = await stage.client.post(
        f"/events/{stage.event_id}/votes/{vote_id}/void", json={"reason": reason, **extra}, headers=stage.admin.headers
    )
    return ok(r)


async def test_a_voided_vote_leaves_every_count_and_its_receipt_says_why(stage: Stage) -> None:
    votes = [ok(await stage.vote(await stage.ballot(), artist), 201) for artist in ("Owls", "Owls", "Foxes")]
    assert await standings(stage) == {"Owls": 2, "Foxes": 1, "Bears": 0}
    voided = await void_vote(stage, votes[0]["id"], "duplicate", note="same phone twice")
    assert voided["status"] == "voided" and voided["reason"] == "duplicate" and voided["note"] == "same phone twice"
    assert voided["voidedBy"] == stage.admin.user_id and voided["receipt"] == votes[0]["receipt"]
    assert await standings(stage) == {"Owls": 1, "Foxes": 1, "Bears": 0}
    public = ok(await stage.board())
    assert public["totalVotes"] == 2

    receipt = ok(await stage.client.get(f"/events/{stage.event_id}/receipts/{votes[0]['receipt']}"))
    assert (receipt["status"], receipt["reason"]) == ("voided", "duplicate")
    analytics = ok(await stage.client.get(f"/analytics/events/{stage.event_id}", headers=stage.admin.headers))
    assert analytics["votes"]["total"] == 2
    report = await stage.client.get(
        f"/events/{stage.event_id}/report", params={"format": "csv", "dataset": "votes"}, headers=stage.admin.headers
    )
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert sorted(int(r["vote_id"]) for r in rows) == sorted(v["id"] for v in votes[1:])

    # voiding again changes nothing: the first reason stays, nothing is counted twice
    again = await void_vote(stage, votes[0]["id"], "other")
    assert again["reason"] == "duplicate" and again["voidedAt"] == voided["voidedAt"]
    assert await standings(stage) == {"Owls": 1, "Foxes": 1, "Bears": 0}
    # the void is in the audit log once, with who, what and why (no second row for the void that changed nothing)
    logged = await audit_log(stage.client, stage.admin, eventId=stage.event_id, action="vote.voided")
    assert [(e["actorId"], e["target"], e["changes"]["reason"]) for e in logged] == [
        (stage.admin.user_id, f"vote:{votes[0]['id']}", "duplicate")
    ]


async def test_bad_voids_are_answered_and_change_nothing(
    client: AsyncClient, runtime: Runtime, admin: Actor, stage: Stage
) -> None:
    vote = ok(await stage.vote(await stage.ballot(), "Owls"), 201)
    other = await build_stage(client, runtime, admin)
    path = f"/events/{other.event_id}/votes/{vote['id']}/void"
    problem(await client.post(path, json={"reason": "fraud"}, headers=admin.headers), 404)  # another event's vote
    path = f"/events/{stage.event_id}/votes/{vote['id']}/void"
    bad = problem(await client.post(path, json={"reason": "boring"}, headers=admin.headers), 422)
    assert bad["errors"][0]["field"] == "reason"
    problem(await client.post(path, json={}, headers=admin.headers), 422)
    problem(await client.post("/attendees/999999/void", json={"reason": "fraud"}, headers=admin.headers), 404)
    assert await standings(stage) == {"Owls": 1, "Foxes": 0, "Bears": 0}


async def test_voiding_an_attendee_voids_all_their_votes_and_refuses_the_next(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin, votesPerRound=2)
    cheat, honest = await stage.ballot(), await stage.ballot()
    for ballot, artist in ((cheat, "Owls"), (cheat, "Owls"), (honest, "Foxes")):
        ok(await stage.vote(ballot, artist), 201)
    await stage.admin_post("/rounds/1/close")
    await stage.admin_post("/rounds/2/open")
    ok(await stage.vote(cheat, "Owls", round_=2), 201)

    answer = ok(
        await client.post(f"/attendees/{cheat.attendee_id}/void", json={"reason": "fraud"}, headers=admin.headers)
    )
    assert answer["attendeeId"] == cheat.attendee_id and answer["votesVoided"] == 3 and answer["reason"] == "fraud"
    assert await standings(stage, 1) == {"Owls": 0, "Foxes": 1, "Bears": 0}
    assert await standings(stage, 2) == {"Owls": 0, "Foxes": 0, "Bears": 0}
    refused = problem(await stage.vote(cheat, "Bears", round_=2), 403)
    assert refused["type"].endswith("attendee-voided")
    ok(await stage.vote(honest, "Bears", round_=2), 201)
    again = ok(
        await client.post(f"/attendees/{cheat.attendee_id}/void", json={"reason": "other"}, headers=admin.headers)
    )
    assert again["votesVoided"] == 0 and again["reason"] == "fraud"


async def test_a_seal_stands_after_a_void_and_later_seals_leave_voided_votes_out(stage: Stage) -> None:
    ballots: list[Ballot] = [await stage.ballot() for _ in range(3)]
    votes = [ok(await stage.vote(b, "Owls"), 201) for b in ballots]
    await void_vote(stage, votes[2]["id"])  # before the seal: left out of it
    await stage.admin_post("/rounds/1/close")
    seal = ok(await stage.client.get(f"/events/{stage.event_id}/rounds/1/seal"))
    assert seal["votes"] == 2 and seal["root"] == merkle.root_of([v["receipt"] for v in votes[:2]])
    out = ok(await stage.client.get(f"/events/{stage.event_id}/receipts/{votes[2]['receipt']}"))
    assert out["status"] == "voided" and out["root"] == seal["root"] and out["proof"] == []

    await void_vote(stage, votes[0]["id"], "ineligible")  # after the seal: the seal is history
    assert ok(await stage.client.get(f"/events/{stage.event_id}/rounds/1/seal")) == seal
    found = ok(await stage.client.get(f"/events/{stage.event_id}/receipts/{votes[0]['receipt']}"))
    assert (found["status"], found["reason"]) == ("voided", "ineligible")
    assert merkle.verify_inclusion(votes[0]["receipt"], found["proof"], seal["root"])
    assert await standings(stage) == {"Owls": 1, "Foxes": 0, "Bears": 0}
