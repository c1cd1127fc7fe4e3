"""Receipts of both versions side by side: a vote cast now stores none (version 2, derived from its row and
id); a vote cast before migration 0012 keeps its stored version 1 receipt, which still finds it, seals
and audits; the migration marks the rows it finds as version 1 and refuses to go back over version 2 votes."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from stagevote.config import Settings
from stagevote.core.db import create_engine
from stagevote.core.runtime import Runtime
from stagevote.migrations import downgrade, upgrade
from stagevote.voting.receipts import receipt_for, receipt_v1
from tests.cli.test_audit import audit
from tests.conftest import BACKEND, PG_URL, _create_database, _drop_database
from tests.factories import Stage
from tests.http import ok


async def sql(runtime: Runtime, statement: str, **values: object) -> list[tuple[object, ...]]:
    async with runtime.engine.begin() as connection:
        result = await connection.execute(text(statement), values)
        return [tuple(row) for row in result] if result.returns_rows else []


async def test_a_vote_cast_now_stores_no_receipt(stage: Stage, runtime: Runtime) -> None:
    """The vote path writes nothing for the receipt: it is derived from the row and its id when answered."""
    vote = ok(await stage.vote(await stage.ballot(), "Owls"), 201)
    rows = await sql(runtime, "SELECT receipt, receipt_version FROM votes WHERE id = :id", id=vote["id"])
    assert rows == [(None, 2)]
    facts = {"event_id": stage.event_id, "round_number": 1, "artist_id": stage.artists["Owls"]}
    [(attendee_id, token)] = await sql(runtime, "SELECT attendee_id, token FROM votes WHERE id = :id", id=vote["id"])
    secret = runtime.secret_key.get_secret_value()
    expected = receipt_for(
        secret,
        vote_id=vote["id"],
        attendee_id=attendee_id,  # type: ignore[arg-type]
        token=token,  # type: ignore[arg-type]
        created_at=dt.datetime.fromisoformat(vote["createdAt"]),
        **facts,  # type: ignore[arg-type]
    )
    assert vote["receipt"] == expected


async def test_a_version_1_vote_keeps_its_stored_receipt(stage: Stage, runtime: Runtime, settings: Settings) -> None:
    """A vote from before migration 0012 (made one here behind the app's back): its stored receipt finds it,
    the round's seal holds it, and the audit holds; the code version 2 would give it finds nothing."""
    ballots = [await stage.ballot() for _ in range(2)]
    old, new = [ok(await stage.vote(b, "Owls"), 201) for b in ballots]
    [(attendee_id,)] = await sql(runtime, "SELECT attendee_id FROM votes WHERE id = :id", id=old["id"])
    stored = receipt_v1(
        runtime.secret_key.get_secret_value(),
        event_id=stage.event_id,
        round_number=1,
        attendee_id=attendee_id,  # type: ignore[arg-type]
        artist_id=stage.artists["Owls"],
        token=old["token"],
        created_at=dt.datetime.fromisoformat(old["createdAt"]),
    )
    await sql(runtime, "UPDATE votes SET receipt_version = 1, receipt = :r WHERE id = :id", r=stored, id=old["id"])

    found = ok(await stage.client.get(f"/events/{stage.event_id}/receipts/{stored.lower()}"))
    assert (found["receipt"], found["status"]) == (stored, "counted")
    gone = await stage.client.get(f"/events/{stage.event_id}/receipts/{old['receipt']}")
    assert gone.status_code == 404
    again = await stage.vote(ballots[0], "Owls", token=old["token"])  # the same token: the receipt it has now
    assert again.status_code == 200 and again.json()["receipt"] == stored

    await stage.admin_post("/rounds/1/close")
    for receipt in (stored, new["receipt"]):
        sealed = ok(await stage.client.get(f"/events/{stage.event_id}/receipts/{receipt}"))
        assert sealed["root"] is not None and sealed["proof"], receipt
    held = await audit(settings, stage.event_id)
    assert held.exit_code == 0, held.output
    # changed behind the app's back, the version 1 vote is named by its stored receipt
    await sql(runtime, "UPDATE votes SET artist_id = :a WHERE id = :id", a=stage.artists["Foxes"], id=old["id"])
    changed = await audit(settings, stage.event_id)
    assert changed.exit_code == 1
    assert f"vote {old['id']} (receipt {stored}) was changed since the seal" in changed.output


@pytest.fixture
async def bare_database(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own, for migrating by hand."""
    if BACKEND != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrating.db'}"
        return
    name = f"stagevote_receipts_{os.getpid()}"
    await _create_database(name)
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _drop_database(name)


async def test_the_migration_keeps_the_votes_it_finds_at_version_1(bare_database: str) -> None:
    await upgrade(bare_database, "0011")
    engine = create_engine(bare_database, pool_size=1)
    now = dt.datetime(2026, 12, 1, 20, tzinfo=dt.UTC)
    try:
        async with engine.begin() as connection:
            for statement in (
                "INSERT INTO events (id, title, start_date, end_date, access_type, keyword, default_language,"
                " vote_config, status, created_at, updated_at)"
                " VALUES (1, 't', :now, :later, 'public', 'MIGRATE', 'en', '{}', 'live', :now, :now)",
                "INSERT INTO artists (id, name, status, created_at) VALUES (1, 'Owls', 'approved', :now)",
                "INSERT INTO attendees (id, event_id, joined_at, opted_out, pre_registered, confirmation_attempts)"
                " VALUES (1, 1, :now, false, false, 0), (2, 1, :now, false, false, 0)",
                "INSERT INTO votes (attendee_id, event_id, artist_id, round, slot, token, channel, created_at,"
                " receipt) VALUES (1, 1, 1, 1, 1, 'old-token-1', 'web', :now, 'OLDRECEIPT234567')",
            ):
                await connection.execute(text(statement), {"now": now, "later": now + dt.timedelta(hours=3)})
        await upgrade(bare_database)
        async with engine.begin() as connection:
            # a vote cast now: its row says nothing of a receipt, and gets version 2 (two of them: no
            # stored receipt, no clash in the unique index)
            await connection.execute(
                text(
                    "INSERT INTO votes (attendee_id, event_id, artist_id, round, slot, token, channel, created_at)"
                    " VALUES (2, 1, 1, 1, 1, 'new-token-1', 'web', :now), (2, 1, 1, 1, 2, 'new-token-2', 'web', :now)"
                ),
                {"now": now},
            )
            found = await connection.execute(text("SELECT token, receipt, receipt_version FROM votes ORDER BY id"))
            rows = found.all()
        assert [tuple(r) for r in rows] == [
            ("old-token-1", "OLDRECEIPT234567", 1),
            ("new-token-1", None, 2),
            ("new-token-2", None, 2),
        ]
        # going back would forget which votes are version 2 (their receipts would change): refused
        with pytest.raises(RuntimeError, match="version 2"):
            await downgrade(bare_database, "0011")
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM votes WHERE receipt_version = 2"))
        await downgrade(bare_database, "0011")
        await upgrade(bare_database)
    finally:
        await engine.dispose()
