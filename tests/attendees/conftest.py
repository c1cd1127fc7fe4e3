"""Attendee test helpers: events of each access type and status, and the messages and rows they leave."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import select

from stagevote.attendees.models import Attendee, PhoneOptOut
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.messaging import service as messaging_service
from stagevote.messaging.models import Message
from tests.factories import LIFECYCLE, make_event, new_phone
from tests.http import ok

# moved to tests/factories.py; still importable from here for branches written before the move
__all__ = ["LIFECYCLE", "make_event", "new_phone"]


async def messages(runtime: Runtime, **where: Any) -> list[Message]:
    """The `messages` rows matching `where` (column=value), oldest first, each `body` the text as sent
    (stored bodies have their codes and ballot links redacted: tests/messaging/test_secrets.py)."""
    async with unit_of_work(runtime.sessionmaker) as session:
        statement = select(Message).order_by(Message.id)
        for name, value in where.items():
            statement = statement.where(getattr(Message, name) == value)
        rows = list((await session.scalars(statement)).all())
    for row in rows:
        row.body = messaging_service.text_as_sent(runtime, row)
    return rows


async def attendee_row(runtime: Runtime, attendee_id: int) -> Attendee:
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await session.get(Attendee, attendee_id)
        assert attendee is not None
        return attendee


async def attendees_of(runtime: Runtime, phone: str) -> list[Attendee]:
    async with unit_of_work(runtime.sessionmaker) as session:
        rows = await session.scalars(select(Attendee).where(Attendee.phone_number == phone).order_by(Attendee.id))
        return list(rows.all())


async def opted_out_numbers(runtime: Runtime) -> set[str]:
    async with unit_of_work(runtime.sessionmaker) as session:
        return set((await session.scalars(select(PhoneOptOut.phone_number))).all())


async def age_code(runtime: Runtime, attendee_id: int, *, by: dt.timedelta) -> None:
    """Move the attendee's code expiry into the past, as if `by` had passed."""
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await session.get(Attendee, attendee_id)
        assert attendee is not None and attendee.confirmation_expires_at is not None
        attendee.confirmation_expires_at -= by


def code_in(body: str) -> str:
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


def ballot_token_in(body: str) -> str:
    found = re.search(r"http://testserver/b/(\S+)", body)
    assert found, body
    return found.group(1)


async def web_join(client: AsyncClient, event_id: int, phone: str, **extra: Any) -> Response:
    return await client.post(f"/events/{event_id}/join", json={"phoneNumber": phone, **extra})


async def joined(client: AsyncClient, runtime: Runtime, event_id: int, phone: str, **extra: Any) -> tuple[int, str]:
    """Join on the web; the attendee id and the body of the CONFIRM SMS that followed."""
    attendee_id: int = ok(await web_join(client, event_id, phone, **extra), 202)["attendeeId"]
    sent = await messages(runtime, attendee_id=attendee_id, message_type="CONFIRM")
    return attendee_id, sent[-1].body
