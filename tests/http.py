"""Checks of an HTTP answer that many tests share."""

from __future__ import annotations

from typing import Any

from httpx import Response


def ok(r: Response, status: int = 200) -> dict[str, Any]:
    """The JSON body of an answer that must have `status`."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def problem(r: Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error answer that must have `status`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body
