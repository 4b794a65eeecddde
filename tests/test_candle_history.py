"""What the tick derives from candles as they close equals what it computed from the whole
history before (trader/market/history.py, trader/strategy/regime.py `classify_ranges`):
the higher timeframe equals `aggregate`, the float regime class equals the exact Decimal
reading or defers to it, on random candles with gaps, evictions and backfills."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.breakers import regime_of
from trader.domain import Candle
from trader.market.history import CandleHistory
from trader.market.indicators import true_ranges, wilder_average
from trader.strategy.base import aggregate
from trader.strategy.regime import (
    DEFAULT_THRESHOLDS,
    Regime,
    RegimeThresholds,
    _wilder_float,
    classify_ranges,
    read_regime,
)

START = datetime(2024, 3, 1, 0, 3, tzinfo=UTC)     # not on the 5-minute grid on purpose
MINUTE = timedelta(minutes=1)
WINDOW = DEFAULT_THRESHOLDS.lookback - 1


def candle(index: int, price: Decimal, move: Decimal, spread: Decimal) -> Candle:
    close = max(price + move, Decimal("0.0001"))
    high = max(price, close) + spread
    low = max(min(price, close) - spread, Decimal("0.00005"))
    return Candle("BTCUSDT", START + MINUTE * index, MINUTE, price, high, low, close,
                  Decimal(index % 7))


@st.composite
def candle_runs(draw: st.DrawFn, max_size: int = 260) -> list[Candle]:
    """Candles in time order with random moves, ranges and gaps (missing minutes)."""
    count = draw(st.integers(0, max_size))
    moves = draw(st.lists(st.decimals("-3", "3", places=2), min_size=count, max_size=count))
    spreads = draw(st.lists(st.decimals("0", "4", places=2), min_size=count, max_size=count))
    gaps = draw(st.lists(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 3]), min_size=count,
                         max_size=count))
    rows, index, price = [], 0, Decimal("100")
    for move, spread, gap in zip(moves, spreads, gaps, strict=True):
        index += 1 + gap
        rows.append(candle(index, price, move, spread))
        price = rows[-1].close
    return rows


@settings(max_examples=80, deadline=None)
@given(candle_runs(), st.integers(3, 60), st.integers(1, 6))
def test_higher_timeframe_kept_as_candles_close_equals_aggregate(
        candles: list[Candle], maxlen: int, factor: int) -> None:
    history = CandleHistory(maxlen, factor, WINDOW)
    for number, row in enumerate(candles):
        history.append(row)
        if number % 5 == 0 or number == len(candles) - 1:
            assert history.closed() == list(history)
            assert history.higher() == aggregate(history.closed(), factor)


@settings(max_examples=60, deadline=None)
@given(candle_runs(), st.integers(5, 40))
def test_a_backfill_that_rebuilds_the_history_rebuilds_the_higher_timeframe(
        candles: list[Candle], keep: int) -> None:
    history = CandleHistory(50, 5, WINDOW, candles[:keep])
    history.clear()                               # what the feed watchdog's backfill does
    history.extend(candles)
    assert history.higher() == aggregate(history.closed(), 5)
    assert history.closed() == candles[-50:]


@settings(max_examples=100, deadline=None)
@given(candle_runs(max_size=160), st.integers(0, 159))
def test_float_regime_class_is_the_exact_reading_or_defers_to_it(
        candles: list[Candle], cut: int) -> None:
    history = CandleHistory(1000, 5, WINDOW, candles[:cut + 1])
    exact = read_regime(history.closed())
    quick = classify_ranges(history.ranges)
    if quick is not None:
        assert exact is not None and quick is exact.regime
    assert regime_of(history) == (exact.regime if exact else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.decimals("0", "50", places=4), min_size=21, max_size=99),
       st.sampled_from([7, 14, 21]))
def test_wilder_as_one_weighted_sum_matches_the_decimal_loop(ranges: list[Decimal],
                                                             period: int) -> None:
    exact = wilder_average(ranges, period)
    assert exact is not None
    quick = _wilder_float([float(r) for r in ranges], period)
    assert abs(quick - float(exact)) <= 1e-9 * max(1.0, float(exact))


def test_float_ranges_are_the_windows_true_ranges() -> None:
    rows = [candle(n, Decimal(100 + n % 9), Decimal(n % 5 - 2), Decimal(n % 3)) for n in range(130)]
    history = CandleHistory(1000, 5, WINDOW, rows)
    exact = true_ranges(rows[-DEFAULT_THRESHOLDS.lookback:])[1:]
    assert list(history.ranges) == [float(r) for r in exact]


def test_a_ratio_on_a_threshold_is_left_to_the_exact_reading() -> None:
    """Equal ranges give VR 1: NORMAL by default; with a threshold at 1.0 float rounding
    could land either side, so the exact reading decides."""
    ranges = [1.5] * WINDOW
    assert classify_ranges(ranges) is Regime.NORMAL
    on_threshold = RegimeThresholds(normal=Decimal("0.8"), high=Decimal("1.0"))
    assert classify_ranges(ranges, on_threshold) is None
    assert classify_ranges(ranges[:20]) is None       # fewer ranges than the slow ATR needs
