"""PostgreSQL crashes and comes back while fans vote: while it is down the vote path answers clean 503s (problem+json,
Retry-After; never a 500), /ready says so, the server reconnects on its own once it is back, and every vote it
acknowledged is in the database."""

from __future__ import annotations

import httpx
import pytest

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.faults.conftest import PrivatePostgres, Server, VoteLoad, ballots, live_stage, stored_tokens, until
from tests.proof.figures import Figures

pytestmark = [pytest.mark.postgresql, pytest.mark.proof]


async def test_votes_get_503s_while_postgresql_is_down_and_none_acknowledged_is_lost(
    server: Server,
    runtime_of: Runtime,
    fault_settings: Settings,
    private_postgres: PrivatePostgres,
    figures: Figures,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        stage = await live_stage(api, runtime_of)
        load = VoteLoad(server.url, stage, await ballots(runtime_of, stage.event_id, 300))
        async with load.running():
            await load.acknowledge(150, "before the crash")
            private_postgres.stop("immediate")  # as a crash: every backend gone at once, recovery from the WAL
            figures.add("faults injected")
            await until(
                lambda: load.answers[503] >= 20, "votes refused with 503 while PostgreSQL is down", seen=load.seen
            )
            ready = await api.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unavailable"

            private_postgres.start()  # the server is not restarted: it must find the database again by itself
            await load.acknowledge(100, "after PostgreSQL is back")
            assert (await api.get("/ready")).status_code == 200

    stored = await stored_tokens(fault_settings.database_url.get_secret_value(), stage.event_id)
    lost = load.acknowledged - stored
    figures.add("acknowledged votes lost", len(lost))
    assert lost == set(), f"{len(lost)} of {len(load.acknowledged)} acknowledged votes lost: {sorted(lost)[:5]}"
    # every vote got an answer, and each refusal was a clean 503 a client can retry after: no 500, no dropped line
    assert set(load.answers) <= {200, 201, 503}, load.seen()
    refused = load.last[503]
    assert refused.headers["content-type"] == "application/problem+json", refused.text
    assert refused.json()["type"] == "urn:stagevote:problem:unavailable" and int(refused.headers["retry-after"]) >= 1
    figures.add("faults survived")
