"""`max_drawdown` in one pass, dividing only where the fall below the current peak is the
largest so far, answers as first written: the largest value of `drawdown_series` and the
largest `peak - equity`, the very same Decimal (digits and all)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trader.domain import ZERO
from trader.metrics import EquityPoint, drawdown_series, max_drawdown

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def as_first_written(curve: list[EquityPoint]) -> tuple[float, Decimal]:
    fraction = max((value for _, value in drawdown_series(curve)), default=0.0)
    money = ZERO
    peak: Decimal | None = None
    for point in curve:
        peak = point.equity if peak is None else max(peak, point.equity)
        money = max(money, peak - point.equity)
    return fraction, money


# equal values with other digits (10, 10.0, 10.00), long fractions, zero and below
equities = st.one_of(
    st.sampled_from(["10", "10.0", "10.00", "9.5", "9.50", "0", "-1", "1E+1", "12"]).map(Decimal),
    st.decimals(min_value=-5, max_value=50, places=3, allow_nan=False),
    st.decimals(min_value=Decimal("9"), max_value=Decimal("11"), allow_nan=False,
                allow_infinity=False).map(lambda d: d / 3),
)


@given(st.lists(equities, max_size=40))
def test_one_pass_answers_as_the_series(values: list[Decimal]) -> None:
    curve = [EquityPoint(T0 + timedelta(minutes=i), v) for i, v in enumerate(values)]
    fraction, money = max_drawdown(curve)
    expected_fraction, expected_money = as_first_written(curve)
    assert fraction == expected_fraction
    assert str(money) == str(expected_money)


def test_a_deep_dip_of_a_small_account_and_a_large_fall_of_a_big_one() -> None:
    values = ["100", "50", "100", "1000", "900", "1000"]
    curve = [EquityPoint(T0 + timedelta(minutes=i), Decimal(v)) for i, v in enumerate(values)]
    assert max_drawdown(curve) == (0.5, Decimal("100"))
    assert max_drawdown([]) == (0.0, ZERO)
