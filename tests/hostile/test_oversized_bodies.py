"""Oversized bodies on every route that takes one (derived from the OpenAPI document): one byte past the route's
cap is 413 problem+json, whether `Content-Length` says so or the body streams without one, and changes nothing;
a body just under the cap is read (and refused for what it says, not for its size).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from pydantic import SecretStr
from sqlalchemy import func, select

from stagevote.attendees.routes import MAX_UPLOAD_BYTES
from stagevote.config import Settings
from stagevote.core.db import unit_of_work
from stagevote.core.runtime import Runtime
from stagevote.models import Base
from stagevote.sms.routes import WEBHOOK_MAX_BYTES
from tests.conftest import Actor, Actors
from tests.factories import build_stage
from tests.http import problem
from tests.proof.figures import Figures
from tests.sms.conftest import AUTH_TOKEN

pytestmark = pytest.mark.proof

CAP = 128 * 1024
OWN_CAPS = {  # routes that set a cap of their own (core/bodylimit.py `body_limit`)
    # the upload: 5 MiB of content (JSON or CSV; a multipart form may add MULTIPART_OVERHEAD_BYTES around it)
    ("POST", "/events/{event_id}/attendees"): MAX_UPLOAD_BYTES,
    ("POST", "/sms/join"): WEBHOOK_MAX_BYTES,
    ("POST", "/sms/status"): WEBHOOK_MAX_BYTES,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "max_body_bytes": CAP,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_account_sid": "AC" + "0" * 32,
        }
    )


def routes_with_a_body(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, media type) of every operation that declares a request body."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if content:
                media = "application/json" if "application/json" in content else next(iter(content))
                found.append((method.upper(), path, media))
    return sorted(found)


async def row_counts(runtime: Runtime) -> dict[str, int]:
    async with unit_of_work(runtime.sessionmaker) as session:
        return {
            t.name: int(await session.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }


def padded(size: int, media: str) -> bytes:
    """`size` bytes that parse as the media type (leading whitespace before an empty document or form)."""
    tail = b"{}" if media.endswith("json") else b"a=b"
    return b" " * (size - len(tail)) + tail if media.endswith("json") else tail + b"&" + b"x" * (size - len(tail) - 1)


async def test_every_body_past_its_cap_is_413_and_changes_nothing(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor, actors: Actors, figures: Figures
) -> None:
    stage = await build_stage(client, runtime, admin)
    ballot = await stage.ballot()
    routes = routes_with_a_body(app)
    assert len(routes) >= 15, routes
    before = await row_counts(runtime)
    for method, path, media in routes:
        cap = OWN_CAPS.get((method, path), CAP)
        url = re.sub(r"\{(\w+)\}", lambda m: str(stage.artists["Owls"] if m.group(1) == "artist_id" else 1), path)
        url = url.replace("/events/1", f"/events/{stage.event_id}")
        credential = ballot.headers if path.endswith("/vote") else admin.headers
        if path == "/auth/logout":  # a body under the cap would end the admin's session
            credential = (await actors.make("fan")).headers
        headers = {**credential, "Content-Type": media if media != "multipart/form-data" else "text/csv"}

        declared = await client.request(method, url, content=padded(cap + 1, media), headers=headers)
        assert_too_large(declared, f"{method} {path}, declared")

        streamed = await client.request(method, url, content=chunks(padded(cap + 1, media)), headers=headers)
        assert "content-length" not in streamed.request.headers
        assert_too_large(streamed, f"{method} {path}, streamed")

        under = await client.request(method, url, content=padded(cap - 1, media), headers=headers)
        assert under.status_code != 413, f"{method} {path}: {under.text[:200]}"
        figures.add("hostile cases tried", 2)
    after = await row_counts(runtime)
    grown = {t: (before[t], after[t]) for t in before if after[t] != before[t]}
    # only what the bodies under the cap legitimately did: nothing, as each is an empty document or form
    assert set(grown) <= {"refresh_tokens", "inbound_messages", "messages", "users", "api_keys"}, grown


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    """The body as a stream without `Content-Length`: counted as it arrives."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def assert_too_large(r: Response, what: str) -> None:
    assert r.status_code == 413, f"{what}: {r.status_code} {r.text[:200]}"
    assert problem(r, 413)["type"] == "urn:stagevote:problem:content-too-large", what
