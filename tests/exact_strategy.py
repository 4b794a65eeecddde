"""The default strategy's rule with the exact Decimal indicators only: the reference the
float pre-tests (tests/test_trend_in_float.py, tests/test_body_in_float.py) are held to."""

from trader.domain import Candle, Side, Signal
from trader.market.indicators import atr, ema
from trader.strategy.default import DefaultStrategy


def exact_signal(strategy: DefaultStrategy, closed: list[Candle]) -> Signal | None:
    """The default strategy's rule with the exact Decimal indicators only."""
    last, before, channel = closed[-1], closed[-2], strategy.channel
    breaks_up = (last.close > max(c.high for c in closed[-channel - 1:-1])
                 and before.close <= max(c.high for c in closed[-channel - 2:-2]))
    breaks_down = (last.close < min(c.low for c in closed[-channel - 1:-1])
                   and before.close >= min(c.low for c in closed[-channel - 2:-2]))
    window = closed[-strategy.window:]
    average_range = atr(window, strategy.atr_period)
    if not (breaks_up or breaks_down) or average_range is None or average_range <= 0:
        return None
    body, least = last.close - last.open, strategy.min_body_atr * average_range
    closes = [candle.close for candle in window]
    fast, slow = ema(closes, strategy.ema_fast), ema(closes, strategy.ema_slow)
    assert fast is not None and slow is not None
    if breaks_up and body >= least and fast > slow:
        return strategy._signal(Side.BUY, last, body, average_range)
    if breaks_down and -body >= least and fast < slow:
        return strategy._signal(Side.SELL, last, -body, average_range)
    return None
