"""A `stagevote worker` SIGKILLed mid-broadcast, with messages already handed to Twilio but their answers not yet
back (their rows left `sending`): the worker started again asks Twilio's message list about each such row once its
lease runs out, sends none of them again, and sends the rest: every fan gets the message exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from stagevote.config import ConnectionURL, Settings
from stagevote.core.runtime import Runtime
from tests.conftest import Actors
from tests.factories import make_event
from tests.faults.conftest import PrivateRedis, Process, Server, ballots, database_rows, until
from tests.messaging.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, FakeTwilio
from tests.proof.figures import Figures

pytestmark = [pytest.mark.postgresql, pytest.mark.proof]

FANS = 200
SENT_FIRST = 60  # answered at once before the kill
CUT_SHORT = 8  # then taken by Twilio with no answer until the worker is dead: every delivery slot of the worker


@pytest.fixture
def fault_settings(fault_settings: Settings, private_redis: PrivateRedis, twilio: FakeTwilio) -> Settings:
    """The broker is the private Redis (streams), SMS go to the fake Twilio; a `sending` row is looked into
    after 2 s instead of 2 minutes."""
    return fault_settings.model_copy(
        update={
            "broker_url": ConnectionURL(private_redis.url),
            "sms_provider": "twilio",
            "twilio_api_url": twilio.url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_from": OUR_NUMBER,
            "sms_per_second": 2000,
            "delivery_concurrency": CUT_SHORT,
            "delivery_sending_timeout_seconds": 2,
            "round_clock_seconds": 0,
        }
    )


@pytest.fixture
def worker(fault_settings: Settings, tmp_path: Path) -> Iterator[Process]:
    process = Process(["worker", "--concurrency", "20"], fault_settings, tmp_path / "worker.log")
    try:
        yield process
    finally:
        process.end()


async def _statuses(url: str) -> Counter[str]:
    rows = await database_rows(url, "SELECT status, count(*) AS n FROM messages GROUP BY status")
    return Counter({r["status"]: r["n"] for r in rows})


async def test_a_worker_killed_mid_broadcast_loses_nothing_and_doubles_nothing(
    server: Server,
    worker: Process,
    runtime_of: Runtime,
    fault_settings: Settings,
    twilio: FakeTwilio,
    figures: Figures,
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        admin = await Actors(runtime_of).make("admin")
        event = await make_event(api, admin)
        fans = {b.attendee_id for b in await ballots(runtime_of, event["id"], FANS)}
        twilio.answer(201, times=SENT_FIRST)
        twilio.take_then_stall(120, times=CUT_SHORT)  # created at Twilio; the answer never reaches the worker
        worker.start()
        body = {"channel": "sms", "messageType": "CUSTOM", "body": "Doors open at 8. Reply STOP to opt out."}
        answer = await api.post(f"/events/{event['id']}/messages", json=body, headers=admin.headers)
        assert answer.status_code == 202, answer.text
        assert answer.json()["queued"] == FANS

        await until(
            lambda: len(twilio.created) == SENT_FIRST + CUT_SHORT and twilio.in_flight == CUT_SHORT,
            "the worker waiting on Twilio for every message of its slots",
        )
        worker.kill()  # SIGKILL
        figures.add("faults injected")
        sent_before_kill = len(twilio.created)
        statuses = await _statuses(fault_settings.database_url.get_secret_value())
        assert statuses["sending"] == CUT_SHORT, statuses  # the kill left these for the recovery

        worker.start()
        await until(lambda: len(twilio.created) >= FANS, "the broadcast finished by the restarted worker", within=60)

        async def all_sent() -> bool:
            return (await _statuses(fault_settings.database_url.get_secret_value()))["sent"] == FANS

        await until(all_sent, "every row marked sent", within=30)
    rows = await database_rows(
        fault_settings.database_url.get_secret_value(), "SELECT attendee_id, status FROM messages"
    )
    assert sorted(r["attendee_id"] for r in rows) == sorted(fans)  # one row per fan, each sent
    per_number = Counter(m["to"] for m in twilio.created)
    doubled = [number for number, n in per_number.items() if n > 1]
    figures.add("messages doubled", len(doubled))
    assert 0 < sent_before_kill < FANS
    assert doubled == [], f"{len(doubled)} fans got the message twice"
    assert len(per_number) == FANS
    assert len(twilio.lookups) >= CUT_SHORT  # each row cut short was looked up before anything was sent again
    figures.add("faults survived")
