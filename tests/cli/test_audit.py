"""`stagevote audit verify EVENT`: every sealed round recomputed from the votes table; a row changed, deleted or
inserted behind the app's back is named, a void is not tampering."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result
from httpx import AsyncClient
from sqlalchemy import text

from stagevote.cli import main
from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.factories import Stage, build_stage
from tests.http import ok


@pytest.fixture
async def stage(client: AsyncClient, runtime: Runtime, admin: Actor) -> Stage:
    return await build_stage(client, runtime, admin)


async def audit(settings: Settings, event_id: int) -> Result:
    """The command, in a thread (it runs its own event loop), on the test's database and secret key."""
    environment = {
        "STAGEVOTE_DATABASE_URL": settings.database_url.get_secret_value(),
        "STAGEVOTE_SECRET_KEY": settings.resolved_secret_key().get_secret_value(),
    }
    return await asyncio.to_thread(CliRunner().invoke, main, ["audit", "verify", str(event_id)], env=environment)


async def sql(runtime: Runtime, statement: str, **values: object) -> None:
    async with runtime.engine.begin() as connection:
        await connection.execute(text(statement), values)


async def test_untouched_seals_hold_and_a_void_is_not_tampering(stage: Stage, settings: Settings) -> None:
    votes = [ok(await stage.vote(await stage.ballot(), "Owls"), 201) for _ in range(3)]
    await stage.admin_post("/rounds/1/close")
    await stage.admin_post("/rounds/2/open")
    ok(await stage.vote(await stage.ballot(), "Foxes", round_=2), 201)
    await stage.admin_post("/close")
    held = await audit(settings, stage.event_id)
    assert held.exit_code == 0, held.output
    assert "all 2 seals hold" in held.output
    void = f"/events/{stage.event_id}/votes/{votes[1]['id']}/void"
    ok(await stage.client.post(void, json={"reason": "fraud"}, headers=stage.admin.headers))
    after_void = await audit(settings, stage.event_id)
    assert after_void.exit_code == 0, after_void.output


async def test_changed_deleted_and_inserted_votes_are_named(stage: Stage, settings: Settings, runtime: Runtime) -> None:
    ballots = [await stage.ballot() for _ in range(4)]
    votes = [ok(await stage.vote(b, "Owls"), 201) for b in ballots[:3]]
    await stage.admin_post("/rounds/1/close")

    await sql(
        runtime, "UPDATE votes SET artist_id = :artist WHERE id = :id", artist=stage.artists["Foxes"], id=votes[0]["id"]
    )
    changed = await audit(settings, stage.event_id)
    assert changed.exit_code == 1
    assert f"vote {votes[0]['id']} (receipt {votes[0]['receipt']}) was changed since the seal" in changed.output

    await sql(runtime, "DELETE FROM votes WHERE id = :id", id=votes[1]["id"])
    await sql(
        runtime,
        "INSERT INTO votes (attendee_id, event_id, artist_id, round, slot, token, channel, created_at)"
        " SELECT :attendee, event_id, artist_id, round, 1, 'forged-token-1', 'web', created_at"
        " FROM votes WHERE id = :id",
        attendee=ballots[3].attendee_id,
        id=votes[2]["id"],
    )
    report = await audit(settings, stage.event_id)
    assert report.exit_code == 1
    lines = report.output.splitlines()
    assert any(f"vote {votes[0]['id']} " in line and "changed" in line for line in lines)
    assert any(f"receipt {votes[1]['receipt']} was removed" in line for line in lines)
    assert any("was added after the seal" in line for line in lines)
    assert not any(f"vote {votes[2]['id']} " in line for line in lines)  # the untouched vote is not named


async def test_an_unknown_event_is_an_error(settings: Settings, stage: Stage) -> None:
    result = await audit(settings, 999_999)
    assert result.exit_code == 1 and "No event 999999" in result.output
