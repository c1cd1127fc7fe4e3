"""Small-group suppression for aggregate figures: what a sponsor (or anyone outside the staff) may be shown.

A count of fewer than `SMALLEST_GROUP` people (1 to 4) could point at someone, so it is hidden
(primary suppression). Hiding it is not enough where a total is published beside it: with the total
and every other cell of the line, the hidden one is a subtraction away. So wherever a line whose
total is known holds exactly one hidden cell, its smallest shown cell is hidden too (complementary
suppression), and that is repeated until no line holds a lone hidden cell, since hiding a cell in
one line can leave another line (a column of the same table) with a lone hidden cell.

Zero is not a group of people and stays shown; it may still be hidden as a complement.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import TypeVar

SMALLEST_GROUP = 5

K = TypeVar("K", bound=Hashable)


def is_small(count: int) -> bool:
    """Whether a count is a group too small to show (1 to 4)."""
    return 0 < count < SMALLEST_GROUP


def small_or_none(count: int) -> int | None:
    """The count, or None when it is too small to show (a figure that stands alone, with no line)."""
    return None if is_small(count) else count


def suppressed(cells: Mapping[K, int], lines: Iterable[Collection[K]]) -> set[K]:
    """The keys of `cells` to hide: the small ones, and complements wherever a line with a known total
    would otherwise hold exactly one hidden cell. `lines` are groups of keys whose sum is published."""
    order = {key: position for position, key in enumerate(cells)}
    groups = [[key for key in line if key in cells] for line in lines]
    hidden = {key for key, count in cells.items() if is_small(count)}
    changed = bool(hidden)
    while changed:
        changed = False
        for group in groups:
            if sum(1 for key in group if key in hidden) != 1:
                continue
            shown = [key for key in group if key not in hidden]
            if not shown:
                continue
            hidden.add(min(shown, key=lambda key: (cells[key], order[key])))
            changed = True
    return hidden


def suppress_line(counts: Mapping[K, int]) -> dict[K, int | None]:
    """One line whose total is published: each count, or None where it must stay hidden."""
    hidden = suppressed(counts, [list(counts)])
    return {key: None if key in hidden else count for key, count in counts.items()}
