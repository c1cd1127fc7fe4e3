"""SMS votes through the vote path's group commit (PostgreSQL): answered as the one-by-one path answers, once
per MessageSid, and a vote the batch committed is still answered "counted" when its reply was lost."""

from __future__ import annotations

import asyncio
import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from stagevote.attendees.models import Attendee
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.sms.models import InboundMessage
from stagevote.voting import service as voting_service
from tests.attendees.conftest import messages
from tests.conftest import Actor
from tests.factories import live_show, new_phone
from tests.http import ok
from tests.sms.conftest import Phone
from tests.sms.test_sms_votes import votes_of

pytestmark = pytest.mark.postgresql


def _batched(runtime: Runtime) -> float:
    """Votes handed to the group commit's statements so far (inserted or not)."""
    return runtime.metrics.registry.get_sample_value("stagevote_vote_batch_size_sum") or 0.0


def _receipt_of(reply: str | None) -> str:
    found = re.search(r"Receipt: (\S+)$", reply or "")
    assert found, reply
    return found.group(1)


async def _inbound_rows(runtime: Runtime) -> int:
    async with unit_of_work(runtime.sessionmaker) as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


async def test_sms_votes_through_the_batch_answer_as_the_one_by_one_path(
    client: AsyncClient, app: FastAPI, runtime: Runtime, admin: Actor
) -> None:
    writer = app.state.vote_writer
    assert writer is not None
    show = await live_show(client, runtime, admin, requireConfirmation=False)
    batched, alone = Phone(client, new_phone()), Phone(client, new_phone())
    for phone in (batched, alone):
        assert "/b/" in (await phone.text(show.keyword) or "")

    async def both(body: str, sid: str) -> tuple[str | None, str | None, float]:
        """The reply through the group commit, the reply one by one (no writer), and the votes the batch saw."""
        before = _batched(runtime)
        through_batch = await batched.text(body, sid=f"{sid}b")
        seen = _batched(runtime) - before
        app.state.vote_writer = None
        try:
            one_by_one = await alone.text(body, sid=f"{sid}a")
        finally:
            app.state.vote_writer = writer
        return through_batch, one_by_one, seen

    owls = show.codes["Owls"]
    counted, counted_alone, seen = await both(f"VOTE {owls}", "SMgc01")
    assert seen == 1
    votes = {vote.token: vote for vote in await votes_of(runtime)}
    assert _receipt_of(counted) == voting_service.receipt_of(runtime, votes["sms:SMgc01b"])
    assert _receipt_of(counted_alone) == voting_service.receipt_of(runtime, votes["sms:SMgc01a"])
    expected = f"Thanks! Your vote for {owls} at {show.keyword} (round 1) is counted. Receipt: "
    assert (counted or "").startswith(expected) and (counted_alone or "").startswith(expected)
    assert await batched.text(f"VOTE {owls}", sid="SMgc01b") == counted  # Twilio's retry: the stored reply

    quota, quota_alone, seen = await both(f"VOTE {show.codes['Foxes']}", "SMgc02")
    assert seen == 1  # the batch inserted nothing; the one-by-one path answered
    assert quota == quota_alone and (quota or "").startswith(f"Your vote at {show.keyword} didn't count:")

    bad, bad_alone, seen = await both("VOTE 99", "SMgc03")
    assert bad == bad_alone and "99 is not an artist code" in (bad or "")

    ok(await client.post(f"/events/{show.id}/rounds/1/close", headers=admin.headers))
    closed, closed_alone, seen = await both(f"VOTE {owls}", "SMgc04")
    assert closed == closed_alone and "didn't count" in (closed or "") and "round" in (closed or "").lower()

    assert len(await votes_of(runtime)) == 2
    for phone in (batched, alone):
        recorded = [m.body for m in await messages(runtime, recipient=phone.number) if m.message_type == "VOTE"]
        assert len(recorded) == 4
    assert recorded[0] == counted_alone


async def test_a_vote_the_batch_committed_is_answered_counted_when_its_reply_was_lost(
    client: AsyncClient, app: FastAPI, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    show = await live_show(client, runtime, admin, requireConfirmation=False)
    await phone.text(show.keyword)
    code = show.codes["Foxes"]
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee_id = await session.scalar(select(Attendee.id).where(Attendee.phone_number == phone.number))
        assert attendee_id is not None
        # the batch commits the vote; the unit of work that would have kept the reply never commits (a crash)
        vote = await voting_service.vote_by_code_in_batch(
            session=session, runtime=runtime, writer=app.state.vote_writer, event_id=show.id,
            attendee_id=attendee_id, vote_code=code, token="sms:SMlost0001", channel="sms",
        )  # fmt: skip
        assert vote is not None
        await session.rollback()
    ok(await client.post(f"/events/{show.id}/rounds/1/close", headers=admin.headers))  # before Twilio retries

    reply = await phone.text(f"VOTE {code}", sid="SMlost0001")
    assert reply == f"Thanks! Your vote for {code} at {show.keyword} (round 1) is counted. Receipt: {vote.receipt}"
    assert await phone.text(f"VOTE {code}", sid="SMlost0001") == reply
    rows = await votes_of(runtime)
    assert [(v.token, voting_service.receipt_of(runtime, v)) for v in rows] == [("sms:SMlost0001", vote.receipt)]
    recorded = [m for m in await messages(runtime, recipient=phone.number) if m.message_type == "VOTE"]
    assert [m.body for m in recorded] == [reply]


async def test_concurrent_deliveries_of_one_vote_text_act_once(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    show = await live_show(client, runtime, admin, requireConfirmation=False)
    await phone.text(show.keyword)
    inbound_before = await _inbound_rows(runtime)
    answers = await asyncio.gather(*(phone.send(f"VOTE {show.codes['Owls']}", sid="SMsame0003") for _ in range(5)))
    assert all(r.status_code == 200 for r in answers)
    assert len({r.text for r in answers}) == 1
    [vote] = await votes_of(runtime)
    assert answers[0].text.endswith(f"Receipt: {voting_service.receipt_of(runtime, vote)}</Message></Response>")
    assert len([m for m in await messages(runtime, recipient=phone.number) if m.message_type == "VOTE"]) == 1
    assert await _inbound_rows(runtime) == inbound_before + 1
