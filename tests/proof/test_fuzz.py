"""Schemathesis over the app's own OpenAPI document: every operation, as each role, against `stagevote serve`.

In `make test` a small budget per operation, role and mode (`STAGEVOTE_FUZZ_EXAMPLES`, 3 by default: about
2,000 requests, well under a minute on SQLite here); `make proof` runs it with a larger one. What is checked:
tests/proof/fuzzing.py.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND, PG_URL, REDIS_URL, _create_database, _drop_database
from tests.proof.figures import Figures
from tests.proof.fuzzing import ROLES, fuzz, seed, serve

EXAMPLES = int(os.environ.get("STAGEVOTE_FUZZ_EXAMPLES", "3"))

pytestmark = pytest.mark.proof


@pytest.fixture
def fuzz_database(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """A database of its own for the served app (and Redis on the PostgreSQL run)."""
    if BACKEND != "postgresql":
        yield f"sqlite:///{tmp_path}/fuzz.db", None
        return
    name = f"stagevote_fuzz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_create_database(name))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False), REDIS_URL
    finally:
        asyncio.run(_drop_database(name))


def test_every_operation_as_every_role_answers_as_documented(
    fuzz_database: tuple[str, str | None], tmp_path: Path, figures: Figures
) -> None:
    database_url, redis_url = fuzz_database
    with serve(database_url, tmp_path, redis_url=redis_url) as server:
        seeded = seed(server)
        report = fuzz(server.url, seeded, examples=EXAMPLES)
    figures.add("fuzz runs")
    figures.add("operations fuzzed", len(report.operations))
    figures.add("examples tried", report.examples)
    assert len(report.operations) >= 45, sorted(report.operations)  # every operation of the document
    assert report.examples >= len(report.operations) * len(ROLES) * 2
    assert report.by_status.get(500, 0) == 0
    assert report.failures == [], "\n\n".join(report.failures[:20])
