"""The tally behind leaderboards: never half-filled, and exact while it is being seeded or repaired."""

from __future__ import annotations

import pytest

from stagevote.core.runtime import Runtime
from stagevote.core.tally import Tally


async def seed(tally: Tally, key: str, counts: dict[str, int], *, counted_markers: list[str]) -> None:
    """A seed with nothing landing between its count and its write."""
    await tally.seed(await tally.begin(key), counts, counted_markers=counted_markers)


@pytest.fixture
async def tally(runtime: Runtime) -> Tally:
    return runtime.tally  # Redis on the PostgreSQL run, memory on the SQLite run


async def test_an_increment_to_an_unseeded_key_is_dropped(tally: Tally) -> None:
    assert await tally.increment("board", {"7": 1}, marker="1:7") is False
    assert await tally.read("board") is None


async def test_seeded_keys_count_and_an_empty_tally_still_exists(tally: Tally) -> None:
    await seed(tally, "board", {}, counted_markers=[])
    assert await tally.read("board") == {}
    assert await tally.increment("board", {"7": 1}, marker="1:7") is True
    assert await tally.increment("board", {"7": 1, "8": -1}, marker="2:7") is True
    assert await tally.read("board") == {"7": 2, "8": -1}


async def test_a_second_seed_does_not_overwrite_the_first(tally: Tally) -> None:
    await seed(tally, "board", {"7": 3}, counted_markers=[])
    await seed(tally, "board", {"7": 99}, counted_markers=[])
    assert await tally.read("board") == {"7": 3}


async def test_an_increment_the_seed_already_counted_is_skipped(tally: Tally) -> None:
    # vote 5 (for artist 7) was in the database when the seed read it; its own increment comes later
    await seed(tally, "board", {"7": 1}, counted_markers=["5:7"])
    assert await tally.increment("board", {"7": 1}, marker="5:7") is False
    assert await tally.read("board") == {"7": 1}
    # vote 5 then changed to artist 8: that is a new change, and counts
    assert await tally.increment("board", {"8": 1, "7": -1}, marker="5:8") is True
    assert await tally.read("board") == {"7": 0, "8": 1}


async def test_drop_forgets_the_key(tally: Tally) -> None:
    await seed(tally, "board", {"7": 1}, counted_markers=["5:7"])
    await tally.drop("board")
    assert await tally.read("board") is None


async def test_many_increments_in_one_call_keep_the_seed_markers(tally: Tally) -> None:
    """The vote path's group commit moves several keys at once: unseeded keys drop their changes,
    and a change the seed already counted is skipped while the others of the same key count."""
    await seed(tally, "board", {"7": 1}, counted_markers=["5:7"])
    await seed(tally, "other", {}, counted_markers=[])
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


async def test_a_change_committed_after_the_count_whose_increment_lands_before_the_seed_counts(tally: Tally) -> None:
    """The seed race that lost votes for good: the seed counted (vote 5), vote 6 committed after the
    count and its increment reached the key before the seed was written."""
    window = await tally.begin("board")  # then the count: {"7": 1}, vote 5 recent
    assert await tally.increment("board", {"7": 1}, marker="6:7") is False  # not applied: no key yet
    assert await tally.increment("board", {"7": 1}, marker="5:7") is False  # the count has vote 5
    await tally.seed(window, {"7": 1}, counted_markers=["5:7"])
    assert await tally.read("board") == {"7": 2}
    assert await tally.increment("board", {"7": 1}, marker="5:7") is False  # still counted once
    assert await tally.increment("board", {"8": 1}, marker="7:8") is True
    assert await tally.read("board") == {"7": 2, "8": 1}


async def test_two_seeds_at_once_keep_the_changes_between_them(tally: Tally) -> None:
    first = await tally.begin("board")
    second = await tally.begin("board")
    await tally.increment("board", {"7": 1}, marker="6:7")
    await tally.seed(first, {"7": 1}, counted_markers=["5:7"])
    await tally.seed(second, {"7": 2}, counted_markers=["5:7", "6:7"])  # the key exists: nothing written
    assert await tally.read("board") == {"7": 2}


async def test_a_repair_corrects_the_tally_without_fighting_live_increments(tally: Tally) -> None:
    """Vote 6's increment was lost (Redis was down). The repair counts votes 5 and 6; vote 7 commits
    after that count and its increment lands before the repair is written; vote 5's late increment
    lands too. The repair keeps vote 7, does not count vote 5 twice, and restores vote 6."""
    await seed(tally, "board", {"7": 1}, counted_markers=[])
    window = await tally.begin("board")
    assert await tally.increment("board", {"8": 1}, marker="7:8") is True  # live, and logged
    assert await tally.read("board") == {"7": 1, "8": 1}  # short by vote 6
    assert await tally.repair(window, {"7": 2}, counted_markers=["5:7", "6:7"]) == 1
    assert await tally.read("board") == {"7": 2, "8": 1}
    assert await tally.increment("board", {"7": 1}, marker="6:7") is False  # counted by the repair
    assert await tally.increment("board", {"8": 1}, marker="8:8") is True
    assert await tally.read("board") == {"7": 2, "8": 2}


async def test_a_repair_of_an_exact_or_missing_tally_writes_nothing(tally: Tally) -> None:
    await seed(tally, "board", {"7": 2}, counted_markers=[])
    assert await tally.repair(await tally.begin("board"), {"7": 2}, counted_markers=[]) == 0
    assert await tally.read("board") == {"7": 2}
    assert await tally.repair(await tally.begin("missing"), {"7": 2}, counted_markers=[]) == 0
    assert await tally.read("missing") is None  # left to the next read's seed
