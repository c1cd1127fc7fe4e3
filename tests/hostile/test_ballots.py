"""Ballot tokens an attacker makes, at the vote itself: each is 401 and counts nothing. (The service's checks of
every kind of bad token are in tests/attendees/test_who_may_vote.py; here, end to end over HTTP.)"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.factories import build_stage
from tests.http import ok, problem
from tests.proof.figures import Figures
from tests.tokens import ANOTHER_KEY, alg_none_keeping_signature, clock_moved, resigned, unsigned

pytestmark = pytest.mark.proof


async def test_forged_expired_and_revoked_ballots_count_nothing(
    client: AsyncClient, runtime: Runtime, admin: Actor, figures: Figures
) -> None:
    stage = await build_stage(client, runtime, admin)
    real, erased = await stage.ballot(), await stage.ballot()
    assert (await client.delete(f"/attendees/{erased.attendee_id}", headers=admin.headers)).status_code == 204
    forged = {
        "alg none": unsigned(real.token),
        "alg none, signature kept": alg_none_keeping_signature(real.token),
        "another key": resigned(real.token, ANOTHER_KEY),
        "an erased attendee's ballot": erased.token,
        "an admin's access token": admin.token,
    }

    async def vote(token: str) -> int:
        body = {"round": 1, "artistId": stage.artists["Owls"], "token": uuid.uuid4().hex}
        r = await client.post(f"/events/{stage.event_id}/vote", json=body, headers={"Authorization": f"Bearer {token}"})
        if r.status_code >= 400:
            problem(r, r.status_code)
        return r.status_code

    for why, token in forged.items():
        assert await vote(token) == 401, why
        assert (await client.get("/ballot", headers={"Authorization": f"Bearer {token}"})).status_code == 401, why
        figures.add("hostile cases tried")
    end = dt.datetime.fromisoformat(ok(await client.get(f"/events/{stage.event_id}"))["endDate"])
    with clock_moved(end - dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):  # expired
        assert await vote(real.token) == 401
    figures.add("hostile cases tried")
    assert ok(await stage.board())["totalVotes"] == 0
    assert await vote(real.token) == 201  # the real ballot, now
