"""Reading the audit log as an admin reads it: `GET /audit` with its filters."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.conftest import Actor
from tests.http import ok


async def audit_log(client: AsyncClient, admin: Actor, **filters: Any) -> list[dict[str, Any]]:
    """Every entry matching `filters` (`eventId`, `actor`, `action`), oldest first."""
    page = ok(await client.get("/audit", params={"limit": 500, **filters}, headers=admin.headers))
    assert page["total"] == len(page["items"])
    return list(reversed(page["items"]))


async def actions(client: AsyncClient, admin: Actor, **filters: Any) -> list[str]:
    return [entry["action"] for entry in await audit_log(client, admin, **filters)]
