"""The default strategy's float pre-test (trader/strategy/default.py `_surely_none`): on a
history's window it answers None from the float closes and true ranges the history kept,
only where the exact Decimal tests answer None too. Windows built to put the body on its
boundary (exactly `min_body_atr` ATRs, then moved by 10**-12..10**-20 of the price: below
what floats can tell) and random ones; the float Wilder average within its proven bound of
the exact ATR; the windows' floats those of their candles, also after the history trims."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.exact_strategy import exact_signal
from trader.domain import Candle
from trader.market.history import CandleHistory
from trader.market.indicators import (
    ROUGH_WILDER_ERROR,
    atr,
    rough_emas_of_floats,
    rough_wilder,
    true_ranges,
    wilder_average,
)
from trader.strategy import default as default_module
from trader.strategy.default import DefaultStrategy
from trader.strategy.regime import is_trending

START = datetime(2024, 1, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)
STRATEGY = DefaultStrategy()
PRICES = st.sampled_from([Decimal("0.5123"), Decimal("100"), Decimal("43123.4")])


def candle(number: int, open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Candle:
    return Candle("XRPUSDT", START + number * FIVE, FIVE, open_, high, low, close, Decimal(1))


def walk(price: Decimal, count: int, moves: list[int], drift: int) -> list[Candle]:
    """`count` candles: each close `moves[i] + drift` thousandths of the price from the
    last, with wicks of a thousandth."""
    unit, candles, close = price / 1000, [], price
    for number in range(count):
        opened = close
        close = opened + (moves[number % len(moves)] + drift) * unit
        candles.append(candle(number, opened, max(opened, close) + unit,
                              min(opened, close) - unit, close))
    return candles


def history_of(candles: list[Candle], maxlen: int = 1000) -> CandleHistory:
    return CandleHistory(maxlen, 5, 99, candles)


@settings(max_examples=200, deadline=None)
@given(PRICES, st.sampled_from([1, -1]), st.lists(st.integers(-3, 3), min_size=1, max_size=9),
       st.integers(-2, 2), st.sampled_from([-12, -16, -18, -20]), st.integers(-3, 3))
def test_a_body_on_its_boundary_signals_as_with_the_exact_tests(
        price: Decimal, direction: int, moves: list[int], drift: int, closeness: int,
        nudge: int) -> None:
    """A breakout candle whose body is `min_body_atr` ATRs to within `nudge` x 10**closeness
    of the price: where a float test without its margin answers wrongly."""
    history = walk(price, STRATEGY.window - 1, moves, drift)
    opened = history[-1].close
    close = opened + direction * 40 * price / 1000
    last = candle(len(history), opened, max(opened, close), min(opened, close), close)
    closed = [*history, last]
    average_range = atr(closed, STRATEGY.atr_period)
    assert average_range
    unit = price.scaleb(closeness)
    weight = (abs(close - opened) + nudge * unit) / average_range
    strategy = DefaultStrategy(min_body_atr=max(weight, Decimal(0)))
    window = history_of(closed).closed()
    assert strategy.signal(window) == exact_signal(strategy, closed)
    assert strategy.signal(window) == strategy.signal(closed)


@settings(max_examples=100, deadline=None)
@given(PRICES, st.lists(st.integers(-4, 4), min_size=3, max_size=40), st.integers(-1, 1))
def test_every_candle_of_a_walk_signals_as_with_the_exact_tests(
        price: Decimal, moves: list[int], drift: int) -> None:
    candles = walk(price, 200, moves, drift)
    history = history_of([], maxlen=150)
    for number, item in enumerate(candles):
        history.append(item)
        if number + 1 >= STRATEGY.window:
            window = history.closed()
            closed = list(window)
            assert STRATEGY.signal(window) == exact_signal(STRATEGY, closed)
            assert is_trending(window) == is_trending(closed)


@settings(max_examples=200, deadline=None)
@given(PRICES, st.lists(st.integers(-9, 9), min_size=1, max_size=30), st.integers(-3, 3),
       st.sampled_from([1, 7, 14, 21, 60]))
def test_the_float_wilder_average_is_within_its_bound(
        price: Decimal, moves: list[int], drift: int, period: int) -> None:
    """Within ROUGH_WILDER_ERROR x the largest price of the exact one; the floats do differ
    from it (a bound of 0 fails here)."""
    candles = walk(price, 120, moves, drift)
    window = history_of(candles).closed()
    floats = window.floats(120)
    assert floats is not None
    rough = rough_wilder(floats[1][1:], period)
    exact = wilder_average(true_ranges(candles)[1:], period)
    assert rough is not None and exact is not None
    largest = max(float(c.high) for c in candles)
    assert abs(rough - float(exact)) <= ROUGH_WILDER_ERROR * largest


def test_the_windows_floats_are_their_candles_also_after_a_trim() -> None:
    candles = walk(Decimal("0.5123"), 700, [3, -2, 1, -4, 2], 0)
    history = history_of([], maxlen=200)
    kept = None
    for number, item in enumerate(candles):
        history.append(item)
        if number == 350:
            kept = history.closed()
    for window in (history.closed(), kept):
        assert window is not None
        closes, ranges = window.floats(120)     # type: ignore[misc]
        tail = list(window)[-121:]
        assert closes == [float(c.close) for c in tail[1:]]
        # each range made in float from the floats: within a few roundings of the exact one
        assert ranges == pytest.approx([float(r) for r in true_ranges(tail)[1:]],
                                       rel=0, abs=1e-15)
        # the pre-tests' P, kept on the window, and the rough EMAs that read it
        for count in (120, 50, 120):
            assert window.largest_close(count) == max(abs(float(c.close)) for c in tail[-count:])
        assert window.rough_emas(120, 20, 50) == rough_emas_of_floats(closes, 20, 50)
        highs, lows = window.channel_floats(40, True), window.channel_floats(40, False)
        assert highs == ([float(c.close) for c in tail[-40:]], [float(c.high) for c in tail[-40:]])
        assert lows == ([float(c.close) for c in tail[-40:]], [float(c.low) for c in tail[-40:]])
    assert history.closed().floats(201) is None       # more than the window holds
    assert history.closed().largest_close(201) is None
    assert history.closed().channel_floats(201, True) is None


def test_no_float_pretest_without_the_histories_floats(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain list, or a history that keeps no floats (no range window), goes to the exact
    tests: the pre-test is never asked."""
    def refuse(*args: object) -> bool:
        raise AssertionError("the float pre-test was asked")

    monkeypatch.setattr(default_module.DefaultStrategy, "_surely_none", refuse)
    candles = walk(Decimal("100"), 100, [1, 2, -1], 1)      # a rise, then 19 flat candles
    level = candles[-1].close
    candles += [candle(number, level, level + Decimal("0.1"), level - Decimal("0.1"), level)
                for number in range(100, 119)]
    opened = candles[-1].close
    last = candle(119, opened, opened + 5, opened - Decimal("0.1"), opened + 4)
    closed = [*candles, last]
    plain = CandleHistory(1000, 5, 0, closed).closed()
    assert plain.floats(120) is None
    assert STRATEGY.signal(closed) == STRATEGY.signal(plain) == exact_signal(STRATEGY, closed)
    assert STRATEGY.signal(closed) is not None          # a breakout that signals
