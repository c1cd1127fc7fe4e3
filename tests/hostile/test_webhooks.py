"""Forged and replayed Twilio webhooks, beyond tests/sms/test_webhook.py (no signature, another token, another
URL path, another body, the same MessageSid twice): a signature moved to the other webhook or made for another
host, and a captured STOP replayed after the fan texted START."""

from __future__ import annotations

import uuid

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import opted_out_numbers
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import problem
from tests.proof.figures import Figures
from tests.sms.conftest import AUTH_TOKEN, OUR_NUMBER, WEBHOOK, Phone, reply_of, sign

pytestmark = pytest.mark.proof
STATUS = "/sms/status"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"twilio_auth_token": SecretStr(AUTH_TOKEN), "twilio_account_sid": "AC" + "0" * 32}
    )


def inbound(phone: str, body: str) -> dict[str, str]:
    return {"MessageSid": f"SM{uuid.uuid4().hex}", "From": phone, "To": OUR_NUMBER, "Body": body}


async def test_a_signature_is_good_for_its_own_url_only(
    client: AsyncClient, runtime: Runtime, admin: Actor, figures: Figures
) -> None:
    event = await make_event(client, admin)
    params = inbound(new_phone(), f"JOIN {event['keyword']}") | {"MessageStatus": "delivered"}
    elsewhere = RequestValidator(AUTH_TOKEN).compute_signature(f"http://evil.example{WEBHOOK}", params)
    attempts = {
        "the inbound webhook's signature at the status webhook": (STATUS, sign(WEBHOOK, params)),
        "the status webhook's signature at the inbound one": (WEBHOOK, sign(STATUS, params)),
        "signed for another host": (WEBHOOK, elsewhere),
        "signed over https, served over http": (WEBHOOK, sign(WEBHOOK, params).swapcase()),
    }
    for why, (path, signature) in attempts.items():
        r = await client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert r.status_code == 403, why
        problem(r, 403)
        figures.add("hostile cases tried")
    listed = (await client.get(f"/events/{event['id']}/attendees", headers=admin.headers)).json()
    assert listed["items"] == []  # nobody joined


async def test_a_captured_stop_replayed_after_start_changes_nothing(
    client: AsyncClient, runtime: Runtime, figures: Figures
) -> None:
    phone = Phone(client, new_phone())
    stop = inbound(phone.number, "STOP")
    captured = {"X-Twilio-Signature": sign(WEBHOOK, stop)}
    first = reply_of(await client.post(WEBHOOK, data=stop, headers=captured))
    assert phone.number in await opted_out_numbers(runtime)
    assert "START" not in (await phone.text("START") or "START")  # opted back in
    assert phone.number not in await opted_out_numbers(runtime)

    replayed = await client.post(WEBHOOK, data=stop, headers=captured)  # the attacker sends the STOP again
    assert reply_of(replayed) == first  # the same answer as the first time
    assert phone.number not in await opted_out_numbers(runtime)  # and no effect: the MessageSid acted once
    figures.add("hostile cases tried")
