"""The address the audit log records: the client behind a trusted proxy, never what an untrusted peer claims."""

from __future__ import annotations

import ipaddress

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from stagevote.config import Settings
from tests.audit.conftest import audit_log
from tests.conftest import Actor
from tests.factories import event_body
from tests.http import ok

PROXY = "10.0.0.2"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"trusted_proxies": [ipaddress.ip_network("10.0.0.0/8")]})


def peer(app: FastAPI, address: str) -> AsyncClient:
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return AsyncClient(transport=transport, base_url="http://testserver")


async def test_the_address_is_the_client_behind_a_trusted_proxy(
    app: FastAPI, client: AsyncClient, admin: Actor
) -> None:
    async with peer(app, PROXY) as proxy:
        headers = {**admin.headers, "X-Forwarded-For": "6.6.6.6, 203.0.113.9"}
        ok(await proxy.post("/events", json=event_body(), headers=headers), 201)
    async with peer(app, "198.51.100.20") as direct:  # no proxy of ours: its header is not believed
        headers = {**admin.headers, "X-Forwarded-For": "203.0.113.77"}
        ok(await direct.post("/events", json=event_body(), headers=headers), 201)
    assert [e["address"] for e in await audit_log(client, admin)] == ["203.0.113.9", "198.51.100.20"]
