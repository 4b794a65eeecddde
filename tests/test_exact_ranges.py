"""A history's window gives the exact ATR from the true ranges the history kept
(trader/market/exact_ranges.py, CandleWindow.atr): the very Decimal `atr` computes from the
window's candles, whatever windows were asked before (overlapping, older, newer, after a
trim or a backfill) and under whatever Decimal context."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Candle
from trader.management import trail_atr
from trader.market.exact_ranges import ExactRanges
from trader.market.history import CandleHistory
from trader.market.indicators import atr, true_ranges, true_ranges_afresh
from trader.strategy.regime import is_trending, read_regime

START = datetime(2024, 1, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)

# (close move, upper wick, lower wick) in ten-thousandths: gaps past the previous close too
STEPS = st.lists(st.tuples(st.integers(-40, 40), st.integers(0, 9), st.integers(0, 9)),
                 min_size=1, max_size=12)


def walk(steps: list[tuple[int, int, int]], count: int) -> list[Candle]:
    """Prices of 20 digits: a precision of 12 rounds their differences."""
    candles, close = [], Decimal("0.51234567890123456789")
    for number in range(count):
        move, up, down = steps[number % len(steps)]
        opened = close + Decimal(steps[(number * 7) % len(steps)][0]) / 30_000
        close = opened + Decimal(move) / 10_000
        tiny = Decimal(number) / 10**19       # ranges of ~16 digits
        candles.append(Candle("XRPUSDT", START + number * FIVE, FIVE, opened,
                              max(opened, close) + Decimal(up) / 10_000 + tiny,
                              min(opened, close) - Decimal(down) / 10_000, close))
    return candles


@settings(max_examples=150, deadline=None)
@given(STEPS, st.integers(5, 40), st.lists(st.tuples(st.integers(1, 60), st.integers(1, 20)),
                                           min_size=1, max_size=30),
       st.sampled_from([None, 12, 40]))
def test_a_windows_atr_is_atr_of_its_candles(steps: list[tuple[int, int, int]], maxlen: int,
                                              asks: list[tuple[int, int]],
                                              precision: int | None) -> None:
    """Candles appended one at a time (the history trims its list every `maxlen`); after
    each, a window of random length asks for ATRs of random counts and periods: each equals
    `atr(window[-count:], period)` (repr: the very digits), also under another precision."""
    candles = walk(steps, len(asks) * 3)
    history = CandleHistory(maxlen=maxlen, factor=5, range_window=99)
    ask = iter(asks * 3)
    kept = []
    for candle in candles:
        history.append(candle)
        window = history.closed()
        kept.append(window)
        count, period = next(ask)
        with localcontext() as context:
            if precision is not None and count % 3 == 0:
                context.prec, context.rounding = precision, ROUND_DOWN
            assert repr(window.atr(count, period)) == repr(atr(list(window)[-count:], period))
            assert repr(window.true_ranges(count)) == repr(true_ranges(list(window)[-count:])[1:])
            assert repr(window.atr(count, period)) == repr(atr(list(window)[-count:], period))
            # an older window (its moment's list, maybe trimmed since) asks too
            old = kept[count % len(kept)]
            assert repr(old.atr(count, period)) == repr(atr(list(old)[-count:], period))
    history.clear()                          # a backfill: clear + extend
    history.extend(candles[-maxlen:])
    window = history.closed()
    assert repr(window.atr(len(window), 3)) == repr(atr(list(window), 3))


def test_ranges_are_computed_once_each_as_windows_move_on() -> None:
    """A window a candle later computes only the new candle's range."""
    candles = walk([(3, 1, 2), (-5, 0, 4), (7, 2, 0)], 200)
    items = candles[:150]
    exact = ExactRanges(items)
    assert exact.between(31, 150) == true_ranges(items[30:150])[1:]
    assert len(exact.ranges) == 119
    items.append(candles[150])
    assert exact.between(32, 151) == true_ranges(items[31:151])[1:]
    assert (exact.first, len(exact.ranges)) == (31, 120)     # grown at its end only
    assert exact.between(5, 20) == true_ranges(items[4:20])[1:]   # before the run: afresh
    assert (exact.first, len(exact.ranges)) == (5, 15)


def test_a_trimmed_list_keeps_the_ranges_of_its_candles() -> None:
    candles = walk([(3, 1, 2), (-5, 0, 4), (7, 2, 0)], 60)
    exact = ExactRanges(candles)
    exact.between(5, 40)
    for cut in (3, 5, 6, 30, 39, 40, 50):
        trimmed = exact.trimmed(candles[cut:], cut)
        for start in range(max(trimmed.first, 1), trimmed.first + len(trimmed.ranges)):
            assert trimmed.ranges[start - trimmed.first] == true_ranges(candles[cut + start - 1:
                                                                                 cut + start + 1])[1]
        assert trimmed.between(1, 60 - cut) == true_ranges(candles[cut:])[1:]


def test_a_historys_windows_compute_each_range_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strategy's 120-candle ATR on window after window of a history: each candle's true
    range is computed once, not once per window."""
    from trader.market import exact_ranges
    computed: list[int] = []

    def counted(candles: list[Candle]) -> list[Decimal]:
        computed.append(len(candles) - 1)
        return true_ranges_afresh(candles)

    monkeypatch.setattr(exact_ranges, "true_ranges_afresh", counted)
    candles = walk([(3, 1, 2), (-5, 0, 4), (7, 2, 0)], 400)
    history = CandleHistory(maxlen=150, factor=5, range_window=99)
    for candle in candles:
        history.append(candle)
        window = history.closed()
        if len(window) >= 120:
            assert window.atr(120, 14) == atr(list(window)[-120:], 14)
    assert sum(computed) == 400 - 120 + 119


@settings(max_examples=60, deadline=None)
@given(STEPS, st.integers(1, 30))
def test_the_entrys_regime_and_trend_read_a_window_as_its_candles(
        steps: list[tuple[int, int, int]], every: int) -> None:
    """`read_regime` and `is_trending` on a history's window (its kept ranges and ATR, the
    strategy's) answer as on the list of its candles."""
    candles = walk(steps, 260)
    history = CandleHistory(maxlen=200, factor=5, range_window=99)
    for number, candle in enumerate(candles):
        history.append(candle)
        if number % every:
            continue
        window, plain = history.closed(), list(history.closed())
        if number % 2:
            window.atr(120, 14)                 # the strategy asked first
        assert read_regime(window) == read_regime(plain)
        assert is_trending(window) == is_trending(plain)


def test_the_trailing_atr_of_a_historys_window_is_that_of_its_candles() -> None:
    """trader/management.py `trail_atr` (an ATR trailing distance, every in-position candle)
    reads a history's window from its kept ranges: the same Decimal as from its candles,
    also with fewer candles than it looks at (42)."""
    candles = walk([(3, 1, 2), (-5, 0, 4), (7, 2, 0), (-2, 3, 1)], 150)
    history = CandleHistory(maxlen=100, factor=5, range_window=99)
    for candle in candles:
        history.append(candle)
        window = history.closed()
        assert repr(trail_atr(window)) == repr(trail_atr(list(window)))
