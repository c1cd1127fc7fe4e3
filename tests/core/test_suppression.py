"""Small-group suppression: groups of 1 to 4 hidden, and a complement wherever a published total would
otherwise give a hidden group away by subtraction, across every line of a table."""

from __future__ import annotations

from stagevote.core.suppression import small_or_none, suppress_line, suppressed
from stagevote.reports.service import neutralise


def test_a_small_group_alone_in_a_line_takes_the_smallest_other_with_it() -> None:
    assert suppress_line({"owls": 12, "foxes": 5, "bears": 3}) == {"owls": 12, "foxes": None, "bears": None}
    assert suppress_line({"owls": 12, "foxes": 2, "bears": 3}) == {"owls": 12, "foxes": None, "bears": None}
    assert suppress_line({"owls": 12, "foxes": 7}) == {"owls": 12, "foxes": 7}
    assert suppress_line({"owls": 0, "foxes": 9}) == {"owls": 0, "foxes": 9}  # nobody is not a group


def test_complements_spread_until_no_line_holds_a_lone_hidden_cell() -> None:
    # rows a, b; columns x, y, z; row and column totals published
    cells = {("a", "x"): 2, ("a", "y"): 10, ("a", "z"): 20, ("b", "x"): 9, ("b", "y"): 11, ("b", "z"): 30}
    rows = [[k for k in cells if k[0] == r] for r in "ab"]
    columns = [[k for k in cells if k[1] == c] for c in "xyz"]
    hidden = suppressed(cells, rows + columns)
    assert ("a", "x") in hidden
    for line in rows + columns:
        assert sum(1 for k in line if k in hidden) != 1, (line, hidden)
    assert hidden == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}


def test_standalone_figures_and_formula_neutralisation() -> None:
    assert [small_or_none(n) for n in (0, 1, 4, 5, 40)] == [0, None, None, 5, 40]
    for cell in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert neutralise(cell) == "'" + cell
    for cell in ("+14155550100", "-3", "Owls", "", "a=b"):
        assert neutralise(cell) == cell
