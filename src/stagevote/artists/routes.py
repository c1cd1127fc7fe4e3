"""HTTP routes of the artists domain: invitations, claims, answers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["artists"])
