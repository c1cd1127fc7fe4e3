"""The dry run of a broadcast: recipients, skipped, encoding, segments and the estimated cost; nothing queued."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from stagevote.messaging import segments
from tests.attendees.conftest import messages
from tests.conftest import Actor
from tests.factories import Stage, build_stage
from tests.http import ok, problem

US_PRICE = Decimal("0.01")
GB_PRICE = Decimal("0.05")
OTHER_PRICE = Decimal("0.5")
GB_NUMBER = "+447400123456"
BR_NUMBER = "+5511987654321"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    prices = {"US": US_PRICE, "GB": GB_PRICE, "default": OTHER_PRICE}
    return settings.model_copy(update={"sms_prices": prices, "sms_price_currency": "EUR", "round_clock_seconds": 0})


async def dry_run(stage: Stage, status: int = 200, **body: Any) -> Any:
    r = await stage.client.post(
        f"/events/{stage.event_id}/messages", params={"dryRun": "true"}, json=body, headers=stage.admin.headers
    )
    return ok(r, status) if status < 400 else problem(r, status)


# --- counting segments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # the extension table: two septets each, 160 in all
        ("€" * 81, "gsm7", 2),
        ("a" * 152 + "€" + "a" * 152, "gsm7", 3),  # 306 septets, but the escape is never split across parts
        ("Ça coûte 5 £ à l'entrée", "ucs2", 1),  # û is not GSM-7: the whole text is UCS-2
        ("é" * 160, "gsm7", 1),  # é is
        ("ü" * 70, "gsm7", 1),
        ("ç" * 70, "ucs2", 1),  # lower-case ç is not in GSM 03.38 (only Ç)
        ("ç" * 71, "ucs2", 2),
        ("ç" * 134, "ucs2", 2),
        ("ç" * 135, "ucs2", 3),
        ("🎸" * 35, "ucs2", 1),  # a surrogate pair each: 70 units
        ("🎸" * 36, "ucs2", 2),
    ],
)
def test_encoding_and_segments(text: str, encoding: str, count: int) -> None:
    found = segments.segment(text)
    assert (found.encoding, found.segments) == (encoding, count)


def test_prices_by_the_numbers_region_else_the_default() -> None:
    prices = {"US": US_PRICE, "default": OTHER_PRICE}
    assert segments.price_per_segment(prices, "+14155550100") == US_PRICE
    assert segments.price_per_segment(prices, GB_NUMBER) == OTHER_PRICE
    estimate = segments.estimate([("+14155550100", "a" * 161), (GB_NUMBER, "hi")], prices)
    assert (estimate.segments_per_message, estimate.total_segments) == (2, 3)
    assert estimate.cost == 2 * US_PRICE + OTHER_PRICE


# --- the API -------------------------------------------------------------------------------------------------


async def test_a_dry_run_counts_and_prices_and_queues_nothing(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    for _ in range(3):
        await stage.ballot()
    await stage.ballot(phone=GB_NUMBER)
    await stage.ballot(phone=BR_NUMBER)
    await stage.ballot(opted_out=True)

    answer = await dry_run(stage, channel="sms", messageType="CUSTOM", body="Doors at 8 — see you there " + "x" * 150)
    # the em dash is not GSM-7: UCS-2, 177 units, 3 parts of 67
    assert answer == {
        "recipients": 5,
        "skipped": {"optedOut": 1, "noAddress": 0, "capped": 0},
        "deferred": 0,
        "encoding": "ucs2",
        "segmentsPerMessage": 3,
        "totalSegments": 15,
        "estimatedCost": {"amount": float(3 * (3 * US_PRICE + GB_PRICE + OTHER_PRICE)), "currency": "EUR"},
    }
    plain = await dry_run(stage, channel="sms", messageType="CUSTOM", body="Doors at 8")
    assert (plain["encoding"], plain["segmentsPerMessage"], plain["totalSegments"]) == ("gsm7", 1, 5)
    assert not await messages(runtime, event_id=stage.event_id)  # nothing queued, no history


async def test_per_recipient_texts_are_counted_each_as_sent(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    """A NUDGE carries each fan's own ballot link: the dry run counts each text, and the longest sets
    segmentsPerMessage; what it predicts is what the broadcast then writes."""
    stage = await build_stage(client, runtime, admin)
    for _ in range(4):
        await stage.ballot()
    predicted = await dry_run(stage, channel="sms", messageType="NUDGE")
    assert predicted["recipients"] == 4 and predicted["encoding"] == "gsm7"

    ok(
        await client.post(
            f"/events/{stage.event_id}/messages", json={"channel": "sms", "messageType": "NUDGE"}, headers=admin.headers
        ),
        202,
    )
    written = [segments.segment(m.body).segments for m in await messages(runtime, message_type="NUDGE")]
    assert len(written) == 4
    assert predicted["segmentsPerMessage"] == max(written) and predicted["totalSegments"] == sum(written)
    assert predicted["estimatedCost"]["amount"] == float(sum(written) * US_PRICE)
    await runtime.queue.broker.wait_all()


async def test_e_mail_is_counted_not_priced(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin)
    await stage.ballot()
    answer = await dry_run(stage, channel="email", messageType="CUSTOM", body="Hello")
    assert answer["recipients"] == 0 and answer["skipped"]["noAddress"] == 1
    assert (answer["encoding"], answer["totalSegments"], answer["estimatedCost"]["amount"]) == (None, 0, 0.0)


async def test_a_dry_run_refuses_what_the_broadcast_refuses(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    stage = await build_stage(client, runtime, admin)
    bad = await dry_run(stage, 422, channel="sms", messageType="CUSTOM")
    assert bad["errors"][0]["field"] == "body"
    await dry_run(stage, 422, channel="sms", messageType="CUSTOM", body="x", round=9)
