"""Voting by SMS: `VOTE <code>` or the code alone, which event it goes to, and friendly refusals."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import select

from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.voting import service as voting_service
from stagevote.voting.models import Vote
from tests.attendees.conftest import code_in, messages
from tests.conftest import Actor
from tests.factories import Show, live_show, make_event
from tests.http import ok
from tests.sms.conftest import Phone


async def votes_of(runtime: Runtime) -> list[Vote]:
    async with unit_of_work(runtime.sessionmaker) as session:
        return list((await session.scalars(select(Vote).order_by(Vote.id))).all())


async def join_and_confirm(phone: Phone, show: Show) -> None:
    code = code_in(await phone.text(f"JOIN {show.keyword}") or "")
    assert "/b/" in (await phone.text(code) or "")


async def standings(client: AsyncClient, show: Show) -> dict[str, int]:
    board = ok(await client.get(f"/events/{show.id}/leaderboard"))
    return {s["name"]: s["votes"] for s in board["standings"]}


async def test_vote_by_code_counts_once_per_message_sid(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    show = await live_show(client, runtime, admin)
    await join_and_confirm(phone, show)
    code = show.codes["Foxes"]
    reply = await phone.text(f"vote {code}", sid="SMvote0001")
    [vote] = await votes_of(runtime)
    receipt = voting_service.receipt_of(runtime, vote)
    assert reply == f"Thanks! Your vote for {code} at {show.keyword} (round 1) is counted. Receipt: {receipt}"
    assert await phone.text(f"vote {code}", sid="SMvote0001") == reply  # Twilio's retry
    assert (vote.artist_id, vote.round, vote.channel, vote.token) == (show.artists["Foxes"], 1, "sms", "sms:SMvote0001")
    assert await standings(client, show) == {"Foxes": 1, "Owls": 0}
    recorded = [m for m in await messages(runtime, recipient=phone.number) if m.message_type == "VOTE"]
    assert len(recorded) == 1 and recorded[0].body == reply and recorded[0].event_id == show.id


async def test_the_code_alone_votes_and_the_quota_is_answered_kindly(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    show = await live_show(client, runtime, admin)
    await join_and_confirm(phone, show)
    assert "is counted" in (await phone.text(show.codes["Owls"]) or "")
    second = await phone.text(f"VOTE {show.codes['Foxes']}") or ""
    assert second.startswith(f"Your vote at {show.keyword} didn't count:") and "1 vote" in second
    assert len(await votes_of(runtime)) == 1


async def test_unknown_codes_closed_rounds_and_sms_voting_off(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone, another_phone: Phone
) -> None:
    show = await live_show(client, runtime, admin, open_round=False)
    await join_and_confirm(phone, show)
    closed = await phone.text(f"VOTE {show.codes['Owls']}") or ""
    assert "didn't count" in closed and "round" in closed.lower()
    ok(await client.post(f"/events/{show.id}/rounds/1/open", headers=admin.headers))
    assert "is not an artist code" in (await phone.text("VOTE 99") or "")
    assert await votes_of(runtime) == []

    quiet = await live_show(client, runtime, admin, smsVoting=False)
    await join_and_confirm(another_phone, quiet)
    assert "Voting by text is off" in (await another_phone.text(f"VOTE {quiet.codes['Owls']}") or "")
    assert await votes_of(runtime) == []


async def test_an_unconfirmed_or_unknown_number_is_told_what_to_do_first(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone, another_phone: Phone
) -> None:
    show = await live_show(client, runtime, admin)
    assert "JOIN" in (await phone.text(f"VOTE {show.codes['Owls']}") or "")  # never joined
    await another_phone.text(f"JOIN {show.keyword}")
    reply = await another_phone.text(f"VOTE {show.codes['Owls']}") or ""
    assert reply.startswith("Please confirm your number first")
    assert await votes_of(runtime) == []
    recorded = await messages(runtime, recipient=phone.number)
    assert [m.message_type for m in recorded] == ["VOTE"]


async def test_a_vote_goes_to_the_latest_joined_live_event(
    client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone
) -> None:
    first = await live_show(client, runtime, admin, requireConfirmation=False)
    second = await live_show(client, runtime, admin, requireConfirmation=False, names=("Bears",))
    upcoming = await make_event(client, admin, status="published", requireConfirmation=False)
    await phone.text(first.keyword)
    await phone.text(second.keyword)
    await phone.text(upcoming["keyword"])  # joined last, but not live: votes do not go there
    assert show_in(await phone.text("VOTE 1"), second)
    ok(await client.post(f"/events/{second.id}/close", headers=admin.headers))
    assert show_in(await phone.text("VOTE 1"), first)  # the latest joined event still live
    [to_second, to_first] = await votes_of(runtime)
    assert (to_second.event_id, to_second.artist_id) == (second.id, second.artists["Bears"])
    assert (to_first.event_id, to_first.artist_id) == (first.id, first.artists["Owls"])


def show_in(reply: str | None, show: Show) -> bool:
    return reply is not None and f"at {show.keyword} " in reply and "is counted" in reply


async def test_votar_and_spanish_replies(client: AsyncClient, runtime: Runtime, admin: Actor, phone: Phone) -> None:
    show = await live_show(client, runtime, admin, requireConfirmation=False)
    assert "/b/" in (await phone.text(f"UNIRME {show.keyword}") or "")
    assert (await phone.text(f"VOTAR {show.codes['Owls']}") or "").startswith("¡Gracias! Tu voto")
    assert (await phone.text(f"VOTAR {show.codes['Foxes']}") or "").startswith(f"Tu voto en {show.keyword} no cuenta")
    assert (await phone.text("VOTAR 77") or "").startswith("77 no es la clave")
