"""The client address behind proxies (`TRUSTED_PROXIES`): believed from trusted hops only, IPv6 per /64,
computed in one place and used by every per-IP limit."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

import stagevote
from stagevote.config import Settings
from stagevote.core.network import limit_key, resolve_client
from stagevote.core.runtime import Runtime
from tests.attendees.conftest import joined, web_join
from tests.conftest import Actor
from tests.factories import make_event, new_phone
from tests.http import problem

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
LIMIT = 3


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("198.51.100.9", ["203.0.113.5"], "198.51.100.9"),  # the peer is no proxy of ours: the header is not believed
        ("10.0.0.2", ["203.0.113.5"], "203.0.113.5"),  # one trusted proxy
        ("10.0.0.2", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),  # what the client wrote itself stays ignored
        ("10.0.0.2", ["203.0.113.5, 10.0.0.7"], "203.0.113.5"),  # two proxies of ours
        ("10.0.0.2", ["203.0.113.5", "10.0.0.7"], "203.0.113.5"),  # the header repeated
        ("10.0.0.2", ["10.1.1.1, 10.0.0.7"], "10.1.1.1"),  # every hop trusted: the leftmost
        ("10.0.0.2", ["not-an-ip, 10.0.0.7"], "10.0.0.7"),  # garbage ends the walk at the last trusted hop
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.2", ["203.0.113.5:51000"], "203.0.113.5"),
        ("::ffff:10.0.0.2", ["203.0.113.5"], "203.0.113.5"),  # an IPv4-mapped peer is its IPv4 address
        ("fd00::1", ["2001:db8:1:2::3"], "2001:db8:1:2::3"),
    ],
)
def test_the_client_is_the_rightmost_address_no_trusted_proxy_vouches_for(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert str(resolve_client(peer, forwarded, PROXIES)) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert str(resolve_client("10.0.0.2", ["203.0.113.5"], [])) == "10.0.0.2"


def test_limits_count_ipv4_by_address_and_ipv6_by_64() -> None:
    assert limit_key(ipaddress.ip_address("203.0.113.5")) == "203.0.113.5"
    assert limit_key(ipaddress.ip_address("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert limit_key(ipaddress.ip_address("2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert limit_key(None) == "unknown"


def test_settings_read_trusted_proxies_as_written_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEVOTE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 fd00::/8")
    assert Settings().trusted_proxies == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("fd00::/8"),
    ]
    monkeypatch.setenv("STAGEVOTE_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    assert Settings().trusted_proxies == [ipaddress.ip_network("10.0.0.0/8")]
    monkeypatch.setenv("STAGEVOTE_TRUSTED_PROXIES", "[]")
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("STAGEVOTE_TRUSTED_PROXIES", "10.0.0.0/8,nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        Settings()


def test_one_place_reads_the_peer_and_x_forwarded_for() -> None:
    """Every per-IP limit takes its address from core/network.py: nothing else reads the peer or the header."""
    source = Path(stagevote.__file__).parent
    readers = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if re.search(
            r"request\.client\b|\.client\.host|['\"]x-forwarded-for['\"]|scope\[['\"]client", path.read_text(), re.I
        )
    ]
    assert readers == ["core/network.py"]


# --- over HTTP: behind a trusted proxy (the test client's peer is 127.0.0.1) --------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "trusted_proxies": [ipaddress.ip_network("127.0.0.0/8")],
            "login_rate_per_ip": f"{LIMIT}/minute",
            "login_rate_per_account": "1000/minute",
            "signup_rate_per_ip": f"{LIMIT}/minute",
            "confirm_rate_per_ip": f"{LIMIT}/minute",
        }
    )


@asynccontextmanager
async def peer(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def via(*hops: str) -> dict[str, str]:
    return {"X-Forwarded-For": ", ".join(hops)}


Attempt = Callable[[AsyncClient, dict[str, str], int], Awaitable[Response]]


async def login(http: AsyncClient, headers: dict[str, str], n: int) -> Response:
    return await http.post("/auth/login", json={"email": f"x{n}@example.com", "password": "wrong"}, headers=headers)


async def signup(http: AsyncClient, headers: dict[str, str], n: int) -> Response:
    email = f"new-{n}-{headers.get('X-Forwarded-For', '')}@example.com".replace(",", "").replace(" ", "")
    email = re.sub(r"[^a-z0-9@.-]", "-", email)
    return await http.post("/auth/signup", json={"email": email, "password": "long password 1"}, headers=headers)


async def confirm(http: AsyncClient, headers: dict[str, str], n: int) -> Response:
    return await http.post(f"/attendees/{900 + n}/confirm", json={"code": "123456"}, headers=headers)


@pytest.mark.parametrize("attempt", [login, signup, confirm], ids=["login", "signup", "confirm"])
async def test_per_ip_limits_count_the_client_behind_the_proxy(app: FastAPI, attempt: Attempt) -> None:
    async with peer(app, "127.0.0.1") as proxy:
        for n in range(LIMIT):
            assert (await attempt(proxy, via("203.0.113.1"), n)).status_code != 429
        # the same client is stopped, even when it writes an address of its choice in front
        problem(await attempt(proxy, via("203.0.113.1"), 100), 429)
        problem(await attempt(proxy, via("6.6.6.6", "203.0.113.1"), 101), 429)
        # another client behind the same proxy is not: a venue behind a load balancer is not one caller
        assert (await attempt(proxy, via("203.0.113.2"), 102)).status_code != 429
        # IPv6 clients count per /64
        for n in range(LIMIT):
            assert (await attempt(proxy, via(f"2001:db8:7:7::{n + 1}"), 200 + n)).status_code != 429
        problem(await attempt(proxy, via("2001:db8:7:7:ffff::1"), 300), 429)
    # a peer that is no proxy of ours cannot choose its address by writing the header
    async with peer(app, "198.51.100.20") as direct:
        for n in range(LIMIT):
            assert (await attempt(direct, via(f"192.0.2.{n}"), 400 + n)).status_code != 429
        problem(await attempt(direct, via("192.0.2.99"), 500), 429)


async def test_the_web_join_limit_counts_the_client_behind_the_proxy(
    app: FastAPI, client: AsyncClient, runtime: Runtime, admin: Actor
) -> None:
    event = await make_event(client, admin)
    await joined(client, runtime, event["id"], new_phone())  # the proxy's own address has used one
    async with peer(app, "127.0.0.1") as proxy:
        for _ in range(30):  # attendees.service.JOIN_RATE_PER_IP
            r = await proxy.post(
                f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}, headers=via("203.0.113.9")
            )
            assert r.status_code == 202, r.text
        r = await proxy.post(
            f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}, headers=via("203.0.113.9")
        )
        problem(r, 429)
        r = await proxy.post(
            f"/events/{event['id']}/join", json={"phoneNumber": new_phone()}, headers=via("203.0.113.10")
        )
        assert r.status_code == 202
    assert (await web_join(client, event["id"], new_phone())).status_code == 202
