"""The default strategy decides its Donchian channel tests without a scan on most candles
(trader/strategy/default.py): the same signals as the rule in its docstring computed
literally (the channel's highest high and lowest low over the whole channel), ties
included."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Candle, Side, Signal
from trader.market.indicators import atr, ema, highest_high, lowest_low
from trader.strategy.default import DefaultStrategy

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
