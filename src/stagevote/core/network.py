"""Who is calling: the client address behind trusted proxies (`TRUSTED_PROXIES`), and the key per-IP limits count by.

The one place that reads `X-Forwarded-For`. The peer of the connection is the client unless it is a
trusted proxy; then the header is read from the right, hop by hop, while the hop that added an
entry is trusted: the first address not trusted is the client (what a client writes into the
header itself stays to the left of it and is never believed). When every hop is trusted, the
leftmost one is the client. An entry that is not an address ends the walk at the last trusted hop.

Rate limits key IPv4 clients by address and IPv6 clients by their /64: one subscriber, or one host,
usually holds a whole /64, so limiting single IPv6 addresses would limit nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"
IPV6_LIMIT_PREFIX = 64
_STATE_KEY = "client_address"


def parse_address(raw: str) -> IPAddress | None:
    """An address as a peer or a proxy writes it (`203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443`,
    `203.0.113.7:51234`), or None. IPv4-mapped IPv6 addresses are their IPv4 address."""
    text = raw.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # no zone ids
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def limit_key(address: IPAddress | None) -> str:
    """What per-IP rate limits count by: the IPv4 address, or the /64 of an IPv6 one."""
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_LIMIT_PREFIX), strict=False))
    return str(address)


def resolve_client(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The client of a request that came from `peer` with these `X-Forwarded-For` header values."""
    client = parse_address(peer) if peer else None
    if client is None or not trusted:
        return client
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not _is_trusted(client, trusted):
            break
        earlier = parse_address(hop)
        if earlier is None:  # not an address: believe nothing further left
            break
        client = earlier
    return client


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


@dataclass(frozen=True)
class ClientAddress:
    """The caller of one request: its address (None when unknown) and the key its per-IP limits count by."""

    address: IPAddress | None
    limit_key: str

    def __str__(self) -> str:
        return str(self.address) if self.address is not None else UNKNOWN


def client_address(request: Request) -> ClientAddress:
    """The caller of `request`, computed once per request from the peer and the trusted proxies."""
    cached = getattr(request.state, _STATE_KEY, None)
    if isinstance(cached, ClientAddress):
        return cached
    trusted: Sequence[IPNetwork] = request.app.state.runtime.settings.trusted_proxies
    peer = request.client.host if request.client else None
    address = resolve_client(peer, request.headers.getlist("x-forwarded-for"), trusted)
    found = ClientAddress(address, limit_key(address))
    setattr(request.state, _STATE_KEY, found)
    return found


ClientAddressDep = Annotated[ClientAddress, Depends(client_address)]
"""A route parameter: who is calling (see the module docstring)."""
