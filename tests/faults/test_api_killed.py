"""An API process SIGKILLed while fans vote: every vote it answered 201/200 before it died is in the database, and
the process started again takes votes at once."""

from __future__ import annotations

import httpx
import pytest

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.faults.conftest import Server, VoteLoad, ballots, live_stage, stored_tokens, until
from tests.proof.figures import Figures

pytestmark = [pytest.mark.postgresql, pytest.mark.proof]


async def test_every_vote_answered_before_the_kill_is_in_the_database(
    server: Server, runtime_of: Runtime, fault_settings: Settings, figures: Figures
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        stage = await live_stage(api, runtime_of)
    load = VoteLoad(server.url, stage, await ballots(runtime_of, stage.event_id, 300))
    async with load.running():
        await load.acknowledge(200, "before the kill")
        server.kill()  # SIGKILL: no shutdown, votes in flight cut off
        figures.add("faults injected")
        acknowledged_before_kill = set(load.acknowledged)
        failed_before = load.answers[0]
        await until(lambda: load.answers[0] > failed_before, "a vote refused while the process is dead", seen=load.seen)

        await server.start_and_wait()
        await load.acknowledge(100, "after the restart")

    stored = await stored_tokens(fault_settings.database_url.get_secret_value(), stage.event_id)
    lost = acknowledged_before_kill - stored
    figures.add("acknowledged votes lost", len(lost))
    assert lost == set(), f"{len(lost)} of {len(acknowledged_before_kill)} acknowledged votes lost: {sorted(lost)[:5]}"
    assert load.acknowledged <= stored
    # a fan saw an answer (a vote counted, or, for a vote the dead process had queued, a dropped connection): no 500
    assert set(load.answers) <= {200, 201, 0}, load.seen()
    figures.add("faults survived")
