"""Attendee data rights: the export holds everything we keep about one fan; erasure removes the phone number,
e-mail and message bodies, keeps the votes counted (leaderboard and reports unchanged), and keeps a STOP as a
keyed hash so an erased number that opted out is still never texted."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select

from stagevote.attendees.models import PhoneOptOut, PhoneOptOutDigest
from stagevote.config import Settings
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.sms.models import InboundMessage
from tests.attendees.conftest import code_in, messages, web_join
from tests.conftest import Actor
from tests.factories import Show, live_show, new_phone
from tests.http import ok, problem
from tests.messaging.conftest import settle
from tests.sms.conftest import AUTH_TOKEN, Phone


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"twilio_auth_token": SecretStr(AUTH_TOKEN), "twilio_account_sid": "AC" + "0" * 32}
    )


async def fan_who_voted(client: AsyncClient, show: Show, *, email: str | None = None) -> tuple[Phone, int]:
    """A fan who joined by SMS, confirmed, gave an e-mail on the web and voted by SMS; their attendee id."""
    phone = Phone(client, new_phone())
    code = code_in(await phone.text(f"JOIN {show.keyword}") or "")
    await phone.text(code)
    attendee_id = ok(
        await web_join(client, show.id, phone.number, email=email or f"{phone.number[1:]}@example.com"), 202
    )["attendeeId"]
    assert "counted" in (await phone.text(f"VOTE {show.codes['Owls']}") or "")
    return phone, int(attendee_id)


def holds(values: set[str], phone: str) -> bool:
    """Whether any stored value gives the number away (E.164, or its national digits)."""
    return any(phone in value or phone.removeprefix("+1") in value for value in values)


async def opt_outs(runtime: Runtime) -> tuple[set[str], set[str]]:
    async with unit_of_work(runtime.sessionmaker) as session:
        clear = set((await session.scalars(select(PhoneOptOut.phone_number))).all())
        hashed = set((await session.scalars(select(PhoneOptOutDigest.digest))).all())
    return clear, hashed


async def texts_from(runtime: Runtime, phone: str) -> list[InboundMessage]:
    async with unit_of_work(runtime.sessionmaker) as session:
        return list((await session.scalars(select(InboundMessage).where(InboundMessage.from_number == phone))).all())


async def test_the_export_holds_the_attendee_their_votes_messages_and_texts(
    client: AsyncClient, runtime: Runtime, admin: Actor, fan: Actor
) -> None:
    show = await live_show(client, runtime, admin)
    phone, attendee_id = await fan_who_voted(client, show, email="owl.lover@example.com")
    await settle(runtime)
    export = ok(await client.get(f"/attendees/{attendee_id}/export", headers=admin.headers))
    attendee = export["attendee"]
    assert attendee["id"] == attendee_id and attendee["eventId"] == show.id
    assert attendee["phoneNumber"] == phone.number and attendee["email"] == "owl.lover@example.com"
    assert attendee["confirmedAt"] is not None and attendee["optedOut"] is False and attendee["optedOutAt"] is None
    assert attendee["erasedAt"] is None
    [vote] = export["votes"]
    assert (vote["round"], vote["artistId"], vote["channel"]) == (1, show.artists["Owls"], "sms")
    assert {m["messageType"] for m in export["messages"]} >= {"JOIN", "CONFIRM", "VOTE"}
    assert all(m["recipient"] == phone.number and m["body"] for m in export["messages"])
    assert export["inboundMessages"][0]["body"] == f"JOIN {show.keyword}"
    assert len(export["inboundMessages"]) == 3 and export["exportedAt"]

    problem(await client.get(f"/attendees/{attendee_id}/export", headers=fan.headers), 403)
    problem(await client.get(f"/attendees/{attendee_id}/export"), 401)
    problem(await client.get("/attendees/999999/export", headers=admin.headers), 404)


async def test_erasure_keeps_the_votes_counted_and_a_stop_as_a_keyed_hash(
    client: AsyncClient, runtime: Runtime, admin: Actor, fan: Actor
) -> None:
    show = await live_show(client, runtime, admin)
    phone, attendee_id = await fan_who_voted(client, show)
    other, _ = await fan_who_voted(client, show)
    await phone.text("STOP")
    await settle(runtime)
    board = ok(await client.get(f"/events/{show.id}/leaderboard"))
    votes_csv = (await client.get(f"/events/{show.id}/report", headers=admin.headers)).text

    problem(await client.delete(f"/attendees/{attendee_id}", headers=fan.headers), 403)
    assert (await client.delete(f"/attendees/{attendee_id}", headers=admin.headers)).status_code == 204
    assert (await client.delete(f"/attendees/{attendee_id}", headers=admin.headers)).status_code == 204  # again
    problem(await client.delete("/attendees/999999", headers=admin.headers), 404)

    export = ok(await client.get(f"/attendees/{attendee_id}/export", headers=admin.headers))
    assert export["attendee"]["phoneNumber"] is None and export["attendee"]["email"] is None
    assert export["attendee"]["erasedAt"] is not None and export["attendee"]["optedOut"] is True
    assert len(export["votes"]) == 1 and export["inboundMessages"] == []
    assert export["messages"] and all(m["body"] == "" and m["recipient"] is None for m in export["messages"])
    assert all(t.body == "" and t.reply == "" and t.sealed_reply is None for t in await texts_from(runtime, ""))
    assert await texts_from(runtime, phone.number) == []
    assert len(await texts_from(runtime, other.number)) == 3  # another fan's texts stay

    after = ok(await client.get(f"/events/{show.id}/leaderboard"))
    assert after["standings"] == board["standings"] and after["totalVotes"] == board["totalVotes"] == 2
    assert (await client.get(f"/events/{show.id}/report", headers=admin.headers)).text == votes_csv
    people = (
        await client.get(f"/events/{show.id}/report", params={"dataset": "attendees"}, headers=admin.headers)
    ).text
    assert phone.number not in people and f"\r\n{attendee_id},,," in people
    assert all(m.recipient != phone.number for m in await messages(runtime))
    erased = [m for m in await messages(runtime) if m.attendee_id == attendee_id]
    assert erased and all(m.sealed_body is None for m in erased)  # the text as sent is gone too, not only its redaction

    clear, hashed = await opt_outs(runtime)
    assert phone.number not in clear and len(hashed) == 1 and not holds(hashed, phone.number)  # kept, not in clear
    assert await phone.text(f"JOIN {show.keyword}") is None  # still opted out: not a word back
    problem(await web_join(client, show.id, phone.number), 409)
    assert "START" not in (await phone.text("START") or "START")  # texting START opts back in
    clear, hashed = await opt_outs(runtime)
    assert hashed == set()
    ok(await web_join(client, show.id, phone.number), 202)


async def test_a_number_another_attendee_holds_keeps_its_stop_and_texts_until_the_last_is_erased(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    first = await live_show(client, runtime, admin)
    phone, one = await fan_who_voted(client, first)
    second = await live_show(client, runtime, admin)
    code = code_in(await phone.text(f"JOIN {second.keyword}") or "")
    await phone.text(code)
    two = int(ok(await web_join(client, second.id, phone.number), 202)["attendeeId"])
    await phone.text("STOP")
    assert (await client.delete(f"/attendees/{one}", headers=admin.headers)).status_code == 204
    clear, hashed = await opt_outs(runtime)
    assert phone.number in clear and len(hashed) == 1  # the other row holds the number anyway
    assert len(await texts_from(runtime, phone.number)) == 6  # the texts belong to the phone, held still
    assert (await client.delete(f"/attendees/{two}", headers=admin.headers)).status_code == 204
    clear, hashed = await opt_outs(runtime)
    assert phone.number not in clear and len(hashed) == 1 and not holds(hashed, phone.number)
    assert await texts_from(runtime, phone.number) == []
    assert await phone.text(f"JOIN {second.keyword}") is None  # the erased number's STOP still holds
