"""Intervals that hold their share exactly: options chosen by nobody or by everybody used to
make error bars of negative length (`'xerr' must not contain negative values`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reports.charts import error_bars
from reports.estimates import CellSums, ratio
from reports.stats import proportion, wilson_interval, wilson_share


@given(st.integers(min_value=1, max_value=10**9).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))))
def test_wilson_interval_holds_its_share_exactly(count_n: tuple[int, int]) -> None:
    """Catches: dropping the clamp (0 of 400 gave a low of 8.7e-19; 300 of 300 a high of
    0.9999999999999998)."""
    count, n = count_n
    low, high = wilson_interval(count, n)
    share = proportion(count, n).share
    assert 0.0 <= low <= share <= high <= 1.0
    assert share - low >= 0.0 and high - share >= 0.0
    if count == 0:
        assert low == 0.0
    if count == n:
        assert high == 1.0


@given(st.floats(min_value=0, max_value=1), st.floats(min_value=1e-3, max_value=1e9))
def test_wilson_share_at_an_effective_size_holds_its_share(p: float, n: float) -> None:
    low, high = wilson_share(p, n)
    assert 0.0 <= low <= p <= high <= 1.0


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500),
                          st.floats(min_value=0.01, max_value=50)), min_size=1, max_size=8))
def test_weighted_share_interval_holds_its_share(cells: list[tuple[int, int, float]]) -> None:
    """Weighted shares too, including cells where nobody or everybody chose the option."""
    sums = {i: CellSums.of_indicator(min(a, n), n) for i, (a, n, _) in enumerate(cells)}
    weights = {i: w for i, (_, _, w) in enumerate(cells)}
    e = ratio(sums, weights, share=True)
    assert 0.0 <= e.low <= e.value <= e.high <= 1.0
    below, above = error_bars([e.low], [e.value], [e.high])
    assert below[0] >= 0 and above[0] >= 0


def test_known_unanimous_and_unchosen_cases() -> None:
    assert wilson_interval(0, 400)[0] == 0.0
    assert wilson_interval(300, 300)[1] == 1.0
