"""The report's curve statistics worked out once per distinct value (trader/counted_stats.py,
trader/metrics.py) answer as first written, float for float and Decimal for Decimal:
statistics.stdev and statistics.median over every value, a division for every period."""

import math
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trader.counted_stats import median_of, sample_stdev
from trader.metrics import (
    EquityPoint,
    _periods_per_year,
    period_returns,
    sharpe_ratio,
    sortino_ratio,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FLAT = Decimal("10000")             # one object, repeated: a flat account's equity

# repeated values (as a flat curve's returns are), tiny and huge ones, both signs
returns = st.lists(st.one_of(st.sampled_from([0.0, -0.0, 0.001, -0.002, 1e-300]),
                             st.floats(min_value=-1e6, max_value=1e6)), max_size=60)
equities = st.one_of(st.just(FLAT), st.sampled_from(["10", "10.0", "1E+1", "0", "-5"]).map(
    Decimal), st.decimals(min_value=-5, max_value=50, places=3, allow_nan=False))


def returns_as_first_written(curve: list[EquityPoint]) -> list[float]:
    return [float(after.equity / before.equity) - 1.0
            for before, after in zip(curve, curve[1:], strict=False) if before.equity > 0]


def periods_as_first_written(curve: list[EquityPoint]) -> float:
    gaps = [after.at - before.at for before, after in zip(curve, curve[1:], strict=False)]
    positive = [gap for gap in gaps if gap > timedelta(0)]
    return timedelta(days=365) / statistics.median(positive) if positive else 0.0


@given(returns)
def test_the_stdev_of_the_distinct_values_is_statistics_stdev(values: list[float]) -> None:
    if len(values) < 2:
        with pytest.raises(statistics.StatisticsError):
            sample_stdev(values)
        return
    assert sample_stdev(values) == statistics.stdev(values)


def outcome(stdev: Callable[[list[Any]], float], values: list[Any]) -> object:
    try:
        answer = stdev(values)
    except (AttributeError, TypeError, ValueError) as exc:   # statistics.stdev's, by type
        return type(exc)
    return "nan" if math.isnan(answer) else answer


def test_a_value_that_is_not_finite_is_left_to_statistics_itself() -> None:
    for values in ([0.0, math.inf, 1.0], [math.nan, 0.0], [1, 2, 4], [Decimal(1), 2.0]):
        assert outcome(sample_stdev, values) == outcome(statistics.stdev, values)


@given(st.lists(st.integers(min_value=-3, max_value=3).map(lambda m: timedelta(minutes=m)),
                min_size=1, max_size=30))
def test_the_median_of_counted_values_is_statistics_median(gaps: list[timedelta]) -> None:
    assert median_of(Counter(gaps)) == statistics.median(gaps)


def test_no_median_of_nothing() -> None:
    with pytest.raises(statistics.StatisticsError):
        median_of(Counter())


@given(st.lists(st.tuples(equities, st.sampled_from([0, 0, 5, 5, 5, 7, -1])), max_size=40))
def test_the_curve_statistics_answer_as_first_written(
        steps: list[tuple[Decimal, int]]) -> None:
    moment, curve = T0, []
    for equity, minutes in steps:
        moment += timedelta(minutes=minutes)
        curve.append(EquityPoint(moment, equity))
    got = period_returns(curve)
    assert got == returns_as_first_written(curve)
    assert [math.copysign(1, r) for r in got] == \
        [math.copysign(1, r) for r in returns_as_first_written(curve)]
    per_year = _periods_per_year(curve)
    assert per_year == periods_as_first_written(curve)
    old_sortino = 0.0
    if len(got) >= 2 and per_year > 0:
        downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in got) / len(got))
        if downside > 0:
            old_sortino = statistics.fmean(got) / downside * math.sqrt(per_year)
            old_sortino = old_sortino if math.isfinite(old_sortino) else 0.0
    assert sortino_ratio(got, per_year) == old_sortino
    old_sharpe = 0.0
    if len(got) >= 2 and per_year > 0 and statistics.stdev(got) > 0:
        old_sharpe = statistics.fmean(got) / statistics.stdev(got) * math.sqrt(per_year)
        old_sharpe = old_sharpe if math.isfinite(old_sharpe) else 0.0
    assert sharpe_ratio(got, per_year) == old_sharpe


def test_a_repeated_equity_returns_what_its_division_gives() -> None:
    """The very Decimal again: float(x / x) - 1.0, also where that is not 0.0 (an equity
    of 0 or below starts no period)."""
    curve = [EquityPoint(T0 + timedelta(minutes=i), equity)
             for i, equity in enumerate([FLAT, FLAT, FLAT, Decimal(0), Decimal(0), FLAT])]
    assert period_returns(curve) == returns_as_first_written(curve) == [0.0, 0.0, -1.0]
