"""Factories for request bodies: valid by default, any field overridable."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

_counter = itertools.count(1)


def event_body(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    start = dt.datetime(2026, 12, 1, 19, 0, tzinfo=dt.UTC) + dt.timedelta(days=n)
    body: dict[str, Any] = {
        "title": f"Battle of the Bands #{n}",
        "startDate": start.isoformat(),
        "endDate": (start + dt.timedelta(hours=4)).isoformat(),
        "venue": "The Roundhouse",
        "accessType": "public",
        "keyword": f"ROCK{n}X",
        "voteConfig": {"rounds": [{"number": 1, "name": "Heats"}, {"number": 2, "name": "Final"}]},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}  # an override of None leaves the field out
