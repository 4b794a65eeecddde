"""The default strategy decides its Donchian channel tests without a scan on most candles
(trader/strategy/default.py): the same signals as the rule in its docstring computed
literally (the channel's highest high and lowest low over the whole channel), ties
included."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Candle, Side, Signal
from trader.market.history import CandleHistory
from trader.market.indicators import atr, ema, highest_high, lowest_low
from trader.strategy.default import DefaultStrategy, _breaks_down, _breaks_up

START = datetime(2024, 1, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def literal_signal(strategy: DefaultStrategy, closed: list[Candle]) -> Signal | None:
    """The docstring's rule, every test on the whole channel."""
    if len(closed) < strategy.window:
        return None
    last, before, channel = closed[-1], closed[-2], strategy.channel
    breaks_up = (last.close > highest_high(closed[-channel - 1:-1])
                 and before.close <= highest_high(closed[-channel - 2:-2]))
    breaks_down = (last.close < lowest_low(closed[-channel - 1:-1])
                   and before.close >= lowest_low(closed[-channel - 2:-2]))
    if not (breaks_up or breaks_down):
        return None
    window = closed[-strategy.window:]
    average_range = atr(window, strategy.atr_period)
    if average_range is None or average_range <= 0:
        return None
    body, least = last.close - last.open, strategy.min_body_atr * average_range
    up, down = breaks_up and body >= least, breaks_down and -body >= least
    closes = [candle.close for candle in window]
    fast, slow = ema(closes, strategy.ema_fast), ema(closes, strategy.ema_slow)
    if not (up or down) or fast is None or slow is None:
        return None
    if up and fast > slow:
        return strategy._signal(Side.BUY, last, body, average_range)
    if down and fast < slow:
        return strategy._signal(Side.SELL, last, -body, average_range)
    return None


# small integer moves: highs, lows and closes meet often (the ties the tests turn on)
moves = st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 2), st.integers(0, 2),
                           st.integers(-2, 2)), min_size=8, max_size=40)


def walk(steps: list[tuple[int, int, int, int]]) -> list[Candle]:
    """Candles from (close move, upper wick, lower wick, body) steps from 100."""
    candles: list[Candle] = []
    close = Decimal(100)
    for number, (move, up, down, body) in enumerate(steps):
        opened = close
        close = opened + move
        high, low = max(opened, close) + up, min(opened, close) - down
        candle_open = min(max(opened + body, low), high)      # bodies of every size
        candles.append(Candle("XRPUSDT", START + number * FIVE, FIVE, candle_open, high, low,
                              close, Decimal(1)))
    return candles


@settings(max_examples=300, deadline=None)
@given(moves, st.integers(1, 5), st.sampled_from([Decimal(0), Decimal("0.3")]))
def test_the_signal_is_the_literal_rule_s(steps: list[tuple[int, int, int, int]],
                                          channel: int, min_body_atr: Decimal) -> None:
    strategy = DefaultStrategy(channel=channel, ema_fast=2, ema_slow=3, atr_period=2,
                               window=channel + 3, min_body_atr=min_body_atr)
    walked = walk(steps)
    for end in range(1, len(walked) + 1):
        candles = walked[:end]
        got, wanted = strategy.signal(candles), literal_signal(strategy, candles)
        assert got == wanted


# A nudge of 10**-18 of the price: Decimals that differ where their floats are equal (the
# float channel tests must leave those to the Decimals).
NUDGES = st.lists(st.tuples(st.sampled_from([0, 0, 1, -1]), st.sampled_from([0, 0, 1, -1]),
                            st.sampled_from([0, 0, 1, -1])), min_size=1, max_size=7)
TINY = Decimal("1e-16")


def nudged(candles: list[Candle], nudges: list[tuple[int, int, int]]) -> list[Candle]:
    """Each candle's high, low and close moved by a multiple of TINY (floats keep them
    equal: a close meets a high or a low as a float while the Decimals differ)."""
    out = []
    for number, candle in enumerate(candles):
        high, low, close = nudges[number % len(nudges)]
        out.append(Candle(candle.symbol, candle.open_time, candle.interval, candle.open,
                          candle.high + high * TINY, candle.low + low * TINY,
                          candle.close + close * TINY, candle.volume))
    return out


@settings(max_examples=300, deadline=None)
@given(moves, st.integers(1, 5), NUDGES)
def test_a_historys_window_tests_its_channel_as_the_literal_rule(
        steps: list[tuple[int, int, int, int]], channel: int,
        nudges: list[tuple[int, int, int]]) -> None:
    """The channel tests from the history's float highs and lows (trader/strategy/default.py
    `_breaks_up`, `_breaks_down`) answer as the Decimal rule on every window, ties of the
    floats and of the Decimals included; so does the signal."""
    strategy = DefaultStrategy(channel=channel, ema_fast=2, ema_slow=3, atr_period=2,
                               window=channel + 3, min_body_atr=Decimal(0))
    walked = nudged(walk(steps), nudges)
    history = CandleHistory(maxlen=channel + 5, factor=5, range_window=99)
    for end, candle in enumerate(walked, start=1):
        history.append(candle)
        window, candles = history.closed(), walked[max(0, end - channel - 5):end]
        assert window.channel_floats(channel + 2, True) is not None or len(window) < channel + 2
        if len(candles) >= channel + 2:
            price, before = candles[-1].close, candles[-2].close
            assert _breaks_up(price, before, window, channel) == (
                price > highest_high(candles[-channel - 1:-1])
                and before <= highest_high(candles[-channel - 2:-2]))
            assert _breaks_down(price, before, window, channel) == (
                price < lowest_low(candles[-channel - 1:-1])
                and before >= lowest_low(candles[-channel - 2:-2]))
        assert strategy.signal(window) == literal_signal(strategy, candles)


def test_equal_floats_leave_the_channel_to_the_decimals() -> None:
    """A close above the channel's highest high by less than a float can tell breaks it; one
    below by as little does not (the float pre-test must not decide either)."""
    base = walk([(0, 1, 1, 0)] * 6)
    for move, breaks in ((TINY, True), (-TINY, False), (Decimal(0), False)):
        highest = max(c.high for c in base[:-1])
        last = base[-1]
        candles = [*base[:-1], Candle(last.symbol, last.open_time, last.interval, last.open,
                                      highest + move + 1, last.low, highest + move)]
        history = CandleHistory(maxlen=10, factor=5, range_window=99, candles=candles)
        assert float(candles[-1].close) == float(highest)
        assert _breaks_up(candles[-1].close, candles[-2].close, history.closed(), 4) is breaks
