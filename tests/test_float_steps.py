"""The float EMA and Wilder average computed as the weighted sums their steps equal
(trader/market/indicators.py `_linear_steps`) stay within their stated bound of the step by
step recursion, itself within its proven bound of the exact Decimal answer; so the float
pre-tests that read them (tests/test_trend_in_float.py, tests/test_body_in_float.py) answer
as before."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.market.indicators import (
    _float_ema,
    _linear_steps,
    ema,
    rough_wilder,
    wilder_average,
)

U = 2.0 ** -53
ITEMS = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300)


def stepped(seed: float, items: list[float], keep: float, weight: float) -> float:
    value = seed
    for item in items:
        value = keep * value + weight * item
    return value


def bound(items: list[float], seed: float, period: int) -> float:
    """(n + 5 period + 15) u P for the weighted sum, as much again for the steps."""
    largest = max([abs(seed), *map(abs, items)])
    return 2 * (len(items) + 5 * period + 15) * U * largest


@settings(max_examples=300, deadline=None)
@given(ITEMS, st.integers(1, 200), st.floats(-1e6, 1e6))
def test_the_weighted_sum_is_the_steps_within_the_bound(items: list[float], period: int,
                                                         seed: float) -> None:
    for keep, weight in ((1 - 2 / (period + 1), 2 / (period + 1)),
                         ((period - 1) / period, 1 / period)):
        got, wanted = _linear_steps(seed, items, keep, weight), stepped(seed, items, keep, weight)
        assert abs(got - wanted) <= bound(items, seed, period)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(Decimal("0.0001"), Decimal("99999"), places=4), min_size=2,
                max_size=200), st.integers(1, 60))
def test_float_ema_and_wilder_stay_near_the_exact_ones(values: list[Decimal], period: int) -> None:
    """Within 1e-9 of the largest value (the bound the pre-tests rely on) of the Decimal
    answers, with thousands of times less in practice."""
    if period > len(values):
        period = len(values)
    floats = list(map(float, values))
    largest = max(floats)
    exact_ema = ema(values, period)
    assert exact_ema is not None
    assert abs(_float_ema(floats, period) - float(exact_ema)) <= 1e-12 * largest
    exact_wilder, rough = wilder_average(values, period), rough_wilder(floats, period)
    assert exact_wilder is not None and rough is not None
    assert abs(rough - float(exact_wilder)) <= 1e-12 * largest


def test_no_bound_past_the_most_steps() -> None:
    """Beyond _MOST_STEPS items the weighted sum's bound is not proved: no rough answer
    (the callers take the exact indicators)."""
    assert rough_wilder([1.0] * 100_001, 14) is None
    assert rough_wilder([1.0] * 100_000, 14) is not None
