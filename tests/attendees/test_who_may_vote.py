"""Who may vote: `ensure_may_vote` for every access type, and the ballot tokens that name the attendee."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from httpx import AsyncClient

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.core.errors import Forbidden, Unauthorized
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event
from stagevote.events.schemas import VoteConfig
from tests.attendees.conftest import code_in, joined
from tests.conftest import Actor
from tests.factories import make_event
from tests.http import ok
from tests.tokens import (
    ANOTHER_KEY,
    alg_none_keeping_signature,
    clock_at,
    clock_moved,
    each_claim_dropped,
    resigned,
    unsigned,
)

NOW = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)


def event_of(access: str, event_id: int = 1) -> Event:
    return Event(id=event_id, access_type=access, status="live", keyword="ROCK", default_language="en")


def attendee_of(event_id: int = 1, **fields: Any) -> Attendee:
    values: dict[str, Any] = {
        "id": 7,
        "event_id": event_id,
        "phone_number": "+12025550100",
        "opted_out": False,
        "pre_registered": False,
        "confirmed_at": None,
        "erased_at": None,
    }
    values.update(fields)
    return Attendee(**values)


def may_vote(attendee: Attendee, event: Event, *, require_confirmation: bool) -> str | None:
    """None when the attendee may vote, else the slug of the 403."""
    config = VoteConfig(require_confirmation=require_confirmation)
    try:
        attendees_service.ensure_may_vote(attendee=attendee, event=event, config=config)
    except Forbidden as exc:  # always a 403
        return exc.slug
    return None


@pytest.mark.parametrize(
    ("access", "require", "pre_registered", "confirmed", "expected"),
    [
        # public: requireConfirmation alone decides
        ("public", True, False, False, "not-confirmed"),
        ("public", True, False, True, None),
        ("public", False, False, False, None),
        ("public", True, True, False, "not-confirmed"),
        # private: only the organizer's numbers, and requireConfirmation still applies to them
        ("private", True, True, False, "not-confirmed"),
        ("private", True, True, True, None),
        ("private", False, True, False, None),
        ("private", False, False, True, "not-registered"),
        # hybrid: walk-ins must confirm even without requireConfirmation; the organizer's numbers need not
        ("hybrid", False, False, False, "not-confirmed"),
        ("hybrid", True, False, False, "not-confirmed"),
        ("hybrid", False, False, True, None),
        ("hybrid", False, True, False, None),
        ("hybrid", True, True, False, None),
    ],
)
def test_who_may_vote_by_access_type(
    access: str, require: bool, pre_registered: bool, confirmed: bool, expected: str | None
) -> None:
    attendee = attendee_of(pre_registered=pre_registered, confirmed_at=NOW if confirmed else None)
    assert may_vote(attendee, event_of(access), require_confirmation=require) == expected


@pytest.mark.parametrize("access", ["public", "private", "hybrid"])
def test_opted_out_erased_and_foreign_attendees_never_vote(access: str) -> None:
    ready = {"pre_registered": True, "confirmed_at": NOW}
    event = event_of(access)
    assert may_vote(attendee_of(**ready), event, require_confirmation=True) is None
    assert may_vote(attendee_of(**ready, opted_out=True), event, require_confirmation=False) == "opted-out"
    erased = attendee_of(**ready, erased_at=NOW, phone_number=None)
    assert may_vote(erased, event, require_confirmation=False) == "attendee-erased"
    assert may_vote(attendee_of(event_id=2, **ready), event, require_confirmation=False) == "other-event"


async def test_the_opt_out_column_follows_stop_and_start_on_every_row_of_the_number(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    first = await make_event(client, admin)
    second = await make_event(client, admin)
    phone = "+12025550190"
    one, _ = await joined(client, runtime, first["id"], phone)
    two, _ = await joined(client, runtime, second["id"], phone)
    async with runtime.sessionmaker() as session:
        assert await attendees_service.opt_out(session=session, runtime=runtime, phone_number=phone) is True
        assert await attendees_service.opt_out(session=session, runtime=runtime, phone_number=phone) is False
        await session.commit()
    async with runtime.sessionmaker() as session:
        rows = [await session.get(Attendee, i) for i in (one, two)]
        assert all(r is not None and r.opted_out for r in rows)
        assert await attendees_service.opt_in(session=session, runtime=runtime, phone_number=phone) is True
        await session.commit()
    async with runtime.sessionmaker() as session:
        rows = [await session.get(Attendee, i) for i in (one, two)]
        assert all(r is not None and not r.opted_out for r in rows)
        assert await attendees_service.is_opted_out(session=session, runtime=runtime, phone_number=phone) is False


async def test_ballot_tokens_name_one_attendee_of_one_event(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    other = await make_event(client, admin)
    attendee_id, body = await joined(client, runtime, event["id"], "+12025550191")
    token = ok(await client.post(f"/attendees/{attendee_id}/confirm", json={"code": code_in(body)}))["ballotToken"]

    async def resolve(ballot_token: str, event_id: int) -> int:
        async with runtime.sessionmaker() as session:
            found = await attendees_service.attendee_for_ballot(
                session=session, runtime=runtime, ballot_token=ballot_token, event_id=event_id
            )
            return found.id

    assert await resolve(token, event["id"]) == attendee_id
    assert (
        await resolve(resigned(token, runtime.secret_key.get_secret_value()), event["id"]) == attendee_id
    )  # the harness's control

    async with runtime.sessionmaker() as session:  # tokens the app itself would sign, for the wrong pairs
        attendee, there = await session.get(Attendee, attendee_id), await session.get(Event, other["id"])
        assert attendee is not None and there is not None
        elsewhere = attendees_service.ballot_token_for(runtime=runtime, attendee=attendee, event=there)
        nobody = attendees_service.ballot_token_for(runtime=runtime, attendee=Attendee(id=999_999), event=there)
    invitation = ok(
        await client.post(f"/events/{event['id']}/artists", json={"name": "Owls"}, headers=admin.headers), 201
    )
    here, there_id = event["id"], other["id"]
    refused = {
        "tampered": (token + "x", here),
        "not a token": ("not-a-token", here),
        "another key": (resigned(token, ANOTHER_KEY), here),
        "alg none": (unsigned(token), here),
        "alg none, signature kept": (alg_none_keeping_signature(token), here),
        "an artist's claim token": (invitation["inviteUrl"].rsplit("/", 1)[1], here),
        "an access token": (admin.token, here),
        "an attendee of another event": (elsewhere, there_id),
        "no such attendee": (nobody, there_id),
    }
    for why, (bad, at) in refused.items():
        try:
            await resolve(bad, at)
        except Unauthorized:
            continue
        raise AssertionError(f"accepted: {why}")
    # a token missing one of its claims (even signed with our key) is refused, or still the same attendee
    for name, dropped in each_claim_dropped(token, runtime.secret_key.get_secret_value()):
        with contextlib.suppress(Unauthorized):
            assert await resolve(dropped, here) == attendee_id, name
    with pytest.raises(Unauthorized):  # a good token, presented at another event
        await resolve(token, other["id"])
    ended = dt.datetime.fromisoformat(event["endDate"])
    with clock_at(ended + dt.timedelta(days=1, minutes=1)), pytest.raises(Unauthorized):  # a day after its end
        await resolve(token, event["id"])
    with clock_at(ended + dt.timedelta(hours=23)):  # and not before
        assert await resolve(token, event["id"]) == attendee_id


async def test_a_ballot_token_lives_at_least_a_day(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    past = {
        "startDate": "2020-01-01T19:00:00Z",
        "endDate": "2020-01-01T23:00:00Z",
    }
    created = await client.post(
        "/events",
        json={"title": "Old", "keyword": "OLDIES", "voteConfig": {"requireConfirmation": False}, **past},
        headers=admin.headers,
    )
    event_id = ok(created, 201)["id"]
    ok(await client.post(f"/events/{event_id}/publish", headers=admin.headers))
    attendee_id = ok(await client.post(f"/events/{event_id}/join", json={"phoneNumber": "+12025550192"}), 202)
    async with runtime.sessionmaker() as session:
        attendee = await session.get(Attendee, attendee_id["attendeeId"])
        event = await session.get(Event, event_id)
        assert attendee is not None and event is not None
        token = attendees_service.ballot_token_for(runtime=runtime, attendee=attendee, event=event)
    headers = {"Authorization": f"Bearer {token}"}
    ok(await client.get("/ballot", headers=headers))  # the event ended years ago: the token works all the same
    with clock_moved(dt.timedelta(hours=23)):
        ok(await client.get("/ballot", headers=headers))
    with clock_moved(dt.timedelta(hours=25)):
        assert (await client.get("/ballot", headers=headers)).status_code == 401
