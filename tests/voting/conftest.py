"""Voting fixtures: `stage`, a live event with accepted artists and round 1 open (built by tests/factories.py)."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.factories import Ballot, Stage, build_stage

# moved to tests/factories.py; still importable from here for branches written before the move
__all__ = ["Ballot", "Stage", "build_stage"]


@pytest.fixture
async def stage(client: AsyncClient, runtime: Runtime, admin: Actor) -> Stage:
    return await build_stage(client, runtime, admin)
