"""The tally behind leaderboards: never half-filled, and exact while it is being rebuilt."""

from __future__ import annotations

import pytest

from stagevote.core.runtime import Runtime
from stagevote.core.tally import Tally


@pytest.fixture
async def tally(runtime: Runtime) -> Tally:
    return runtime.tally  # Redis on the PostgreSQL run, memory on the SQLite run


async def test_an_increment_to_an_unseeded_key_is_dropped(tally: Tally) -> None:
    assert await tally.increment("board", {"7": 1}, marker="1:7") is False
    assert await tally.read("board") is None


async def test_seeded_keys_count_and_an_empty_tally_still_exists(tally: Tally) -> None:
    await tally.seed("board", {}, counted_markers=[])
    assert await tally.read("board") == {}
    assert await tally.increment("board", {"7": 1}, marker="1:7") is True
    assert await tally.increment("board", {"7": 1, "8": -1}, marker="2:7") is True
    assert await tally.read("board") == {"7": 2, "8": -1}


async def test_a_second_seed_does_not_overwrite_the_first(tally: Tally) -> None:
    await tally.seed("board", {"7": 3}, counted_markers=[])
    await tally.seed("board", {"7": 99}, counted_markers=[])
    assert await tally.read("board") == {"7": 3}


async def test_an_increment_the_seed_already_counted_is_skipped(tally: Tally) -> None:
    # vote 5 (for artist 7) was in the database when the seed read it; its own increment comes later
    await tally.seed("board", {"7": 1}, counted_markers=["5:7"])
    assert await tally.increment("board", {"7": 1}, marker="5:7") is False
    assert await tally.read("board") == {"7": 1}
    # vote 5 then changed to artist 8: that is a new change, and counts
    assert await tally.increment("board", {"8": 1, "7": -1}, marker="5:8") is True
    assert await tally.read("board") == {"7": 0, "8": 1}


async def test_drop_forgets_the_key(tally: Tally) -> None:
    await tally.seed("board", {"7": 1}, counted_markers=["5:7"])
    await tally.drop("board")
    assert await tally.read("board") is None


async def test_many_increments_in_one_call_keep_the_seed_markers(tally: Tally) -> None:
    """The vote path's group commit moves several keys at once: unseeded keys drop their changes,
    and a change the seed already counted is skipped while the others of the same key count."""
    await tally.seed("board", {"7": 1}, counted_markers=["5:7"])
    await tally.seed("other", {}, counted_markers=[])
    await tally.increment_many(
        [
            ("board", "5:7", {"7": 1}),  # counted by the seed
            ("board", "6:7", {"7": 1}),
            ("board", "9:8", {"8": 1}),
            ("board", "10:8", {"8": 1, "7": -1}),
            ("other", "11:3", {"3": 1}),
            ("unseeded", "12:3", {"3": 1}),
        ]
    )
    assert await tally.read("board") == {"7": 1, "8": 2}
    assert await tally.read("other") == {"3": 1}
    assert await tally.read("unseeded") is None
    await tally.increment_many([("other", "13:3", {"3": 1}), ("other", "14:4", {"4": 1})])  # one key alone
    assert await tally.read("other") == {"3": 2, "4": 1}
