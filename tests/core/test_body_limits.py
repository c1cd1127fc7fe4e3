"""Request bodies are capped: 413 problem+json past the cap, declared or streamed; uploads and webhooks have
caps of their own, and a webhook's form is bounded before its signature is checked and anything is done."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from pydantic import SecretStr

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import messages
from tests.conftest import Actor
from tests.factories import event_body, make_event
from tests.http import ok, problem
from tests.sms.conftest import AUTH_TOKEN, WEBHOOK, sign

CAP = 256 * 1024  # above the webhooks' own 64 KiB


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "max_body_bytes": CAP,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_account_sid": "AC" + "0" * 32,
        }
    )


def too_large(r_status: int, body: dict[str, object]) -> None:
    assert r_status == 413
    assert body["type"] == "urn:stagevote:problem:content-too-large"


async def test_a_body_past_the_cap_is_413_problem_whether_declared_or_streamed(
    client: AsyncClient, admin: Actor
) -> None:
    body = event_body(venue="x" * (CAP + 1))  # past the cap before any field is checked
    r = await client.post("/events", json=body, headers=admin.headers)
    too_large(r.status_code, problem(r, 413))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(CAP // 1024 + 8):
            yield b" " * 1024

    headers = {**admin.headers, "Content-Type": "application/json"}
    streamed = await client.post("/events", content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    too_large(streamed.status_code, problem(streamed, 413))
    # under the cap, the same call works
    ok(await client.post("/events", json=event_body(), headers=admin.headers), 201)


async def test_the_csv_upload_takes_more_than_the_default_cap(client: AsyncClient, admin: Actor) -> None:
    event = await make_event(client, admin)
    csv = b"phoneNumber\n+12025550123\n" + b"\n" * (4 * CAP)  # blank lines: read, and skipped
    r = await client.post(
        f"/events/{event['id']}/attendees", content=csv, headers={**admin.headers, "Content-Type": "text/csv"}
    )
    assert ok(r)["created"] == 1


async def test_a_webhook_body_past_its_cap_is_413_and_nothing_happens(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    params = {
        "MessageSid": "SM" + "b" * 32,
        "From": "+12025550188",
        "To": "+12025550000",
        "Body": f"JOIN {event['keyword']}",
        "Padding": "p" * (70 * 1024),  # a field Twilio does not send: past the webhooks' 64 KiB, under CAP
    }
    r = await client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": sign(WEBHOOK, params)})
    too_large(r.status_code, problem(r, 413))
    assert await messages(runtime, recipient="+12025550188") == []


async def test_a_webhook_form_with_too_many_fields_is_refused_before_anything_happens(
    client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    params = {"MessageSid": "SM" + "c" * 32, "From": "+12025550189", "Body": f"JOIN {event['keyword']}"}
    params |= {f"F{n}": "x" for n in range(200)}
    r = await client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": sign(WEBHOOK, params)})
    problem(r, 400)
    assert await messages(runtime, recipient="+12025550189") == []


async def test_a_webhook_that_is_not_form_encoded_is_refused(client: AsyncClient, runtime: Runtime) -> None:
    params = {"MessageSid": "SM" + "d" * 32, "From": "+12025550190", "Body": "HELP"}
    multipart = {name: (None, value) for name, value in params.items()}  # the same fields, as multipart
    r = await client.post(WEBHOOK, files=multipart, headers={"X-Twilio-Signature": sign(WEBHOOK, params)})
    problem(r, 403)
    assert await messages(runtime, recipient="+12025550190") == []
