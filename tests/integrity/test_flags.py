"""Fraud signals an admin reads at GET /events/{id}/integrity: each pattern seeded raises its flag with a reason
and names the attendee and/or votes to act on; a normal event, with its crowds and last calls, raises none."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import attendee_row
from tests.conftest import Actor
from tests.factories import build_stage, make_event
from tests.http import ok, problem
from tests.integrity.conftest import (
    T0,
    Cast,
    Join,
    flags,
    seed_joins,
    seed_votes,
    set_closes_at,
    spread_phone,
    voters_at,
)

SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test client's peer (127.0.0.1) is a trusted proxy: each join says who its client is."""
    return settings.model_copy(update={"trusted_proxies": [ipaddress.ip_network("127.0.0.0/8")]})


def by_attendee(found: list[dict[str, object]], kind: str) -> dict[object, dict[str, object]]:
    return {f["attendeeId"]: f for f in found if f["kind"] == kind}


async def test_a_burst_of_numbers_from_one_block_flags_each_of_them(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, status="live")
    burst = await seed_joins(
        runtime, event["id"], [Join(T0 + i * 15 * SECOND, f"+1202777{100 + i:04d}") for i in range(6)]
    )
    # four of a block together, and six of another spread over an hour: neither is a burst
    await seed_joins(runtime, event["id"], [Join(T0 + i * SECOND, f"+1202777{200 + i:04d}") for i in range(4)])
    await seed_joins(runtime, event["id"], [Join(T0 + i * 10 * MINUTE, f"+1202777{300 + i:04d}") for i in range(6)])
    # the organizer's own list, imported at once, is not a burst either
    await seed_joins(runtime, event["id"], [Join(T0, f"+1202777{400 + i:04d}", pre_registered=True) for i in range(8)])

    found = await flags(client, admin, event["id"])

    assert {f["kind"] for f in found} == {"join_burst"}
    bursts = by_attendee(found, "join_burst")
    assert sorted(bursts) == sorted(burst)
    first = bursts[burst[0]]
    assert first["severity"] == "medium"
    assert first["voteIds"] is None
    assert "One of 6 numbers of the block +120277701xx that joined within 75 s (20:00:00–20:01:15 UTC)" in str(
        first["reason"]
    )
    assert "POST /attendees/{id}/void" in str(first["reason"])
    assert first["detectedAt"].startswith("2026-12-01T20:00:00")
    # newest first
    assert [f["attendeeId"] for f in found] == list(reversed(burst))


async def test_numbers_that_are_not_mobiles_are_flagged_by_kind_of_line(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, status="live")
    numbers = {
        "+18005550199": ("high", "toll-free"),
        "+19005550100": ("high", "premium-rate"),
        "+445612345678": ("medium", "VoIP"),
        "+442079460000": ("low", "landline"),
    }
    flagged = await seed_joins(runtime, event["id"], [Join(T0 + i * MINUTE, phone) for i, phone in enumerate(numbers)])
    # mobiles (a UK one, and the US where mobiles and landlines share ranges), and a pre-registered VoIP number
    await seed_joins(
        runtime,
        event["id"],
        [Join(T0, "+447911123456"), Join(T0, spread_phone()), Join(T0, "+445612345679", pre_registered=True)],
    )

    found = by_attendee(await flags(client, admin, event["id"]), "non_mobile_number")

    assert sorted(found) == sorted(flagged)
    for attendee_id, (phone, (severity, label)) in zip(flagged, numbers.items(), strict=True):
        assert found[attendee_id]["severity"] == severity
        assert f"{phone} is a {label} number, not a mobile" in str(found[attendee_id]["reason"])


@asynccontextmanager
async def behind_proxy(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def join_from(http: AsyncClient, event_id: int, address: str) -> int:
    r = await http.post(
        f"/events/{event_id}/join", json={"phoneNumber": spread_phone()}, headers={"X-Forwarded-For": address}
    )
    return int(ok(r, 202)["attendeeId"])


async def test_many_web_joins_from_one_address_or_one_ipv6_64_are_flagged_and_erasure_forgets_the_address(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin, status="live")
    async with behind_proxy(app) as http:
        one_address = [await join_from(http, event["id"], "203.0.113.7") for _ in range(20)]
        one_64 = [await join_from(http, event["id"], f"2001:db8:1:2:{i:x}::1") for i in range(20)]
        below = [await join_from(http, event["id"], "198.51.100.9") for _ in range(19)]
        apart = [await join_from(http, event["id"], f"198.51.100.{100 + i}") for i in range(20)]

    found = await flags(client, admin, event["id"])

    assert {f["kind"] for f in found} == {"shared_address"}
    shared = by_attendee(found, "shared_address")
    assert sorted(shared) == sorted(one_address + one_64)
    assert "One of 20 web joins from 203.0.113.7 within" in str(shared[one_address[0]]["reason"])
    assert "venue's Wi-Fi" in str(shared[one_address[0]]["reason"])
    assert "One of 20 web joins from 2001:db8:1:2::/64 within" in str(shared[one_64[0]]["reason"])
    assert {f["severity"] for f in found} == {"medium"}
    assert not set(below + apart) & set(shared)

    # the address is personal data: the export shows it, the erasure blanks it, and the flags follow
    export = ok(await client.get(f"/attendees/{one_address[0]}/export", headers=admin.headers))
    assert export["attendee"]["joinAddress"] == "203.0.113.7"
    r = await client.delete(f"/attendees/{one_address[0]}", headers=admin.headers)
    assert r.status_code == 204
    assert (await attendee_row(runtime, one_address[0])).join_address is None
    shared = by_attendee(await flags(client, admin, event["id"]), "shared_address")
    assert sorted(shared) == sorted(one_64), "19 joins left from 203.0.113.7: below the threshold"


async def test_joining_seconds_before_a_timed_round_closes_and_voting_in_it_is_flagged_with_the_votes(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    closes = T0 + 30 * MINUTE
    await set_closes_at(runtime, stage.event_id, 1, closes)
    late, late_idle, early, after = await seed_joins(
        runtime,
        stage.event_id,
        [Join(closes - 12 * SECOND), Join(closes - 5 * SECOND), Join(closes - 10 * MINUTE), Join(closes + 5 * SECOND)],
    )
    owls = stage.artists["Owls"]
    votes = await seed_votes(
        runtime,
        stage.event_id,
        [
            Cast(late, owls, closes - 4 * SECOND),
            Cast(early, owls, closes - 2 * SECOND),
            Cast(after, owls, closes + 10 * SECOND, round=2),
        ],
    )

    found = await flags(client, admin, stage.event_id)

    assert [(f["kind"], f["attendeeId"]) for f in found] == [("late_join", late)]
    flag = found[0]
    assert flag["voteIds"] == [votes[0]]
    assert flag["severity"] == "low"
    assert "Joined 12 s before round 1 closed (20:30:00 UTC) and voted in it" in flag["reason"]
    assert "POST /events/{id}/votes/{voteId}/void" in flag["reason"]
    assert late_idle not in {f["attendeeId"] for f in found}


async def test_an_artists_minute_far_above_its_own_rate_is_flagged_with_its_votes(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    owls, foxes = stage.artists["Owls"], stage.artists["Foxes"]
    steady = [T0 + m * MINUTE + s * 20 * SECOND for m in range(10) for s in range(2)]  # 2 a minute
    await voters_at(runtime, stage.event_id, owls, steady)
    await voters_at(runtime, stage.event_id, foxes, steady)
    spike = await voters_at(runtime, stage.event_id, owls, [T0 + 10 * MINUTE + i * SECOND for i in range(40)])
    await voters_at(runtime, stage.event_id, foxes, [T0 + 10 * MINUTE + 30 * SECOND])

    found = await flags(client, admin, stage.event_id)

    assert [f["kind"] for f in found] == ["vote_spike"]
    flag = found[0]
    assert flag["attendeeId"] is None
    assert flag["voteIds"] == spike
    assert flag["severity"] == "high"
    assert flag["detectedAt"].startswith("2026-12-01T20:10:00")
    assert "40 votes for Owls in the minute from 20:10 UTC: 20 times its usual 2 a minute" in flag["reason"]


async def test_a_normal_event_raises_no_flag(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    """Doors open (joins seconds apart from numbers of every block, a dozen on the venue's Wi-Fi), fans vote all
    evening, a last call doubles everyone's votes, a fan joins a minute before the round closes: nothing here
    is fraud, and nothing is flagged."""
    rng = random.Random(16)
    stage = await build_stage(client, runtime, admin)
    closes = T0 + 21 * MINUTE
    await set_closes_at(runtime, stage.event_id, 1, closes)
    artists = list(stage.artists.values())
    opening = T0 - 30 * MINUTE
    joins: list[Join] = []
    for i in range(450):
        at = opening + rng.uniform(0, 45) * MINUTE
        wifi = "198.51.100.20" if i % 25 == 0 else None
        joins.append(Join(at, address=wifi or (f"203.0.113.{i % 200}" if i % 3 == 0 else None)))
    fans = await seed_joins(runtime, stage.event_id, joins)
    last_minute = await seed_joins(runtime, stage.event_id, [Join(closes - 70 * SECOND)])
    casts: list[Cast] = []
    voters = iter(fans)
    for artist in artists:
        for minute in range(20):
            per_minute = 25 if minute == 19 else rng.randint(2, 6)  # the last call: everyone at once
            casts += [
                Cast(next(voters), artist, T0 + minute * MINUTE + rng.uniform(0, 59) * SECOND)
                for _ in range(per_minute)
            ]
    casts.append(Cast(last_minute[0], artists[0], closes - 30 * SECOND))
    assert len(casts) <= len(fans) + 1
    await seed_votes(runtime, stage.event_id, casts)

    page = ok(await client.get(f"/events/{stage.event_id}/integrity", headers=admin.headers))

    assert page == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_flags_of_an_unknown_event_are_404(client: AsyncClient, admin: Actor) -> None:
    problem(await client.get("/events/999999/integrity", headers=admin.headers), 404)
