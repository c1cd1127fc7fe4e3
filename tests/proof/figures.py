"""Figures the proof tests report (`make proof` sums and prints them): a fixture to count, a file per process.

A test adds to a named figure with the `figures` fixture: `figures.add("hostile cases tried", 12)`. When
`STAGEVOTE_PROOF_RESULTS` names a folder, each test process (each xdist worker) writes its totals there as
`<pid>.json` at the end of its session, and `python -m tests.proof.summary <folder>` adds them up.

The names `make proof` prints (any other name is printed too, after these):
- `operations fuzzed`, `fuzz runs`, `examples tried`: tests/proof/test_fuzz.py (once per backend);
- `hostile cases tried`: every hostile case (a forged token, a caller on a route, a replayed webhook…);
- `faults injected`, `faults survived`: a fault test adds one of each per fault it injects and survives;
- `acknowledged votes lost`, `messages doubled`: what a fault test found, 0 when all is well. A fault test
  adds its count even when it is 0: the summary says "not measured" for a figure no test reported.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

RESULTS_ENV = "STAGEVOTE_PROOF_RESULTS"
_totals: Counter[str] = Counter()


class Figures:
    """Adds to this process's totals."""

    def add(self, name: str, count: int = 1) -> None:
        _totals[name] += count


@pytest.fixture
def figures() -> Figures:
    return Figures()


def pytest_sessionfinish(session: pytest.Session) -> None:
    folder = os.environ.get(RESULTS_ENV)
    if not folder or not _totals:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(dict(_totals)))
