"""Password hashing stays off the event loop, in a bounded number of threads; signup is rate-limited."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from stagevote.config import Settings
from stagevote.core import security
from stagevote.core.runtime import Runtime
from tests.conftest import PASSWORD, Actors
from tests.http import ok, problem

SIGNUPS_PER_IP = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "password_hash_concurrency": 1,
            "password_hash_queue": 1,
            "signup_rate_per_ip": f"{SIGNUPS_PER_IP}/minute",
        }
    )


class Gate:
    """argon2 (the real one) whose `hash` or `verify` waits in whatever thread runs it, until opened."""

    def __init__(self, method: str) -> None:
        self.hasher = security._hasher
        self.method = method
        self.entered = threading.Semaphore(0)
        self.open = threading.Event()
        self.threads: list[threading.Thread] = []

    def __getattr__(self, name: str) -> Any:
        original = getattr(self.hasher, name)
        if name != self.method:
            return original

        def gated(*args: Any, **kwargs: Any) -> Any:
            self.threads.append(threading.current_thread())
            self.entered.release()
            self.open.wait(timeout=10)  # were this on the event loop, the loop would be stuck these 10 s
            return original(*args, **kwargs)

        return gated

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.acquire, True, 10), "the hash never started"


@asynccontextmanager
async def caller(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_the_app_answers_others_while_a_password_is_hashed(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate("hash")
    monkeypatch.setattr(security, "_hasher", gate)
    signup = asyncio.create_task(
        client.post("/auth/signup", json={"email": "slow@example.com", "password": "a long enough password"})
    )
    await gate.wait_entered()
    # the hash is under way in its thread; meanwhile the event loop serves other requests
    ok(await asyncio.wait_for(client.get("/health"), timeout=10))
    assert not signup.done()
    assert gate.threads[0] is not threading.main_thread()
    gate.open.set()
    ok(await signup, 201)


async def test_hashing_slots_are_bounded_and_a_full_line_is_503(
    client: AsyncClient, runtime: Runtime, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [await actors.make("fan") for _ in range(3)]
    gate = Gate("verify")
    monkeypatch.setattr(security, "_hasher", gate)

    def login(n: int) -> asyncio.Task[Any]:
        return asyncio.create_task(client.post("/auth/login", json={"email": users[n].email, "password": PASSWORD}))

    first = login(0)
    await gate.wait_entered()  # the one slot is taken
    second = login(1)
    async with asyncio.timeout(10):
        while runtime.passwords.waiting < 1:  # noqa: ASYNC110  (the second waits in line for the slot)
            await asyncio.sleep(0.01)
    third = await asyncio.wait_for(login(2), timeout=10)  # the line is full: refused at once
    problem(third, 503)
    assert int(third.headers["retry-after"]) >= 1
    assert len(gate.threads) == 1  # never more than one hash at a time
    gate.open.set()
    ok(await first)
    ok(await second)


async def test_signup_is_rate_limited_per_caller_address(app: FastAPI) -> None:
    async with caller(app, "198.51.100.7") as http:
        for n in range(SIGNUPS_PER_IP):
            ok(
                await http.post("/auth/signup", json={"email": f"fan{n}@example.com", "password": "long password 1"}),
                201,
            )
        refused = await http.post("/auth/signup", json={"email": "fanx@example.com", "password": "long password 1"})
        problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
    async with caller(app, "198.51.100.8") as elsewhere:
        ok(await elsewhere.post("/auth/signup", json={"email": "fany@example.com", "password": "long password 1"}), 201)
