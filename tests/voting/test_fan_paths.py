"""The whole way of a fan, on the web: join, confirm with the texted code, vote, see the leaderboard move."""

from __future__ import annotations

from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.attendees.conftest import code_in, messages
from tests.conftest import Actor
from tests.factories import build_stage


async def test_join_confirm_vote_and_the_leaderboard_on_the_web(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    joined = await client.post(f"/events/{stage.event_id}/join", json={"phoneNumber": "+1 202 555 0177"})
    assert joined.status_code == 202
    attendee_id = joined.json()["attendeeId"]
    await runtime.queue.broker.wait_all()  # type: ignore[attr-defined]
    [confirm_sms] = await messages(runtime, attendee_id=attendee_id, message_type="CONFIRM")
    code = code_in(confirm_sms.body)

    confirmed = await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code})
    assert confirmed.status_code == 200
    ballot = {"Authorization": f"Bearer {confirmed.json()['ballotToken']}"}
    vote = {"round": 1, "artistId": stage.artists["Bears"], "token": "web-fan-0177"}
    assert (await client.post(f"/events/{stage.event_id}/vote", json=vote, headers=ballot)).status_code == 201

    board = (await client.get(f"/events/{stage.event_id}/leaderboard")).json()
    assert board["totalVotes"] == 1
    assert board["standings"][0] == {"artistId": stage.artists["Bears"], "name": "Bears", "votes": 1, "rank": 1}
