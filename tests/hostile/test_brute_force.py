"""Brute force from many addresses: the limits that count per account and per attendee hold whatever address
each try comes from (per-address limits alone would let a botnet through). Per-address limits on login, sign-up,
join and confirm, and confirm's per-attendee limit, are in tests/auth, tests/core and tests/attendees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from stagevote.config import Settings
from tests.conftest import PASSWORD, Actors
from tests.http import ok, problem
from tests.proof.figures import Figures

pytestmark = pytest.mark.proof
PER_ACCOUNT = 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"login_rate_per_account": f"{PER_ACCOUNT}/minute"})


@asynccontextmanager
async def caller(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_guessing_one_password_from_many_addresses_stops_at_the_account_limit(
    app: FastAPI, actors: Actors, figures: Figures
) -> None:
    victim = await actors.make("fan")
    for n in range(PER_ACCOUNT):
        async with caller(app, f"203.0.113.{n + 1}") as http:
            guess = await http.post("/auth/login", json={"email": victim.email, "password": f"guess-{n:04d}"})
            problem(guess, 401)
        figures.add("hostile cases tried")
    async with caller(app, "203.0.113.200") as http:  # a fresh address, and even the right password
        blocked = await http.post("/auth/login", json={"email": victim.email, "password": PASSWORD})
        problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) >= 1
        # another account is not locked by it
        other = await actors.make("fan")
        ok(await http.post("/auth/login", json={"email": other.email, "password": PASSWORD}))
