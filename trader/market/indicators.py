"""Indicators on closed candles: true range, Wilder ATR, EMA, rolling median, returns.

Pure functions over `Decimal`s; nothing here reads the clock or the exchange. Callers pass
closed candles only (an open candle's high/low are still moving).
"""

from collections.abc import Sequence
from decimal import Decimal

from trader.domain import ZERO, Candle


def true_ranges(candles: Sequence[Candle]) -> list[Decimal]:
    """One true range per candle: max(high-low, |high-prev close|, |low-prev close|).

    The first candle has no previous close, so its true range is its high-low range.
    """
    ranges: list[Decimal] = []
    previous_close: Decimal | None = None
    for candle in candles:
        span = candle.high - candle.low
        if previous_close is not None:
            span = max(span, abs(candle.high - previous_close), abs(candle.low - previous_close))
        ranges.append(span)
        previous_close = candle.close
    return ranges


def atr(candles: Sequence[Candle], period: int) -> Decimal | None:
    """Wilder's average true range over `period`; None with fewer than period+1 candles.

    Only true ranges that have a previous close are used (so period+1 candles are
    needed): the first ATR is their simple mean over `period`, then each later range is
    folded in as ATR = (ATR x (period-1) + TR) / period.
    """
    if period < 1:
        raise ValueError(f"ATR period must be >= 1, got {period}")
    ranges = true_ranges(candles)[1:]
    if len(ranges) < period:
        return None
    value = sum(ranges[:period], ZERO) / period
    for span in ranges[period:]:
        value = (value * (period - 1) + span) / period
    return value


def ema(values: Sequence[Decimal], period: int) -> Decimal | None:
    """Exponential moving average of `values` (seeded with the first `period` mean)."""
    if period < 1:
        raise ValueError(f"EMA period must be >= 1, got {period}")
    if len(values) < period:
        return None
    alpha = Decimal(2) / (period + 1)
    value = sum(values[:period], ZERO) / period
    for item in values[period:]:
        value = value + alpha * (item - value)
    return value


def rolling_median(values: Sequence[Decimal]) -> Decimal:
    """The median of `values` (mean of the two middle ones for an even count)."""
    if not values:
        raise ValueError("median of an empty sequence")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def returns(closes: Sequence[Decimal]) -> list[Decimal]:
    """Simple returns close[i]/close[i-1] - 1 (a zero previous close is skipped)."""
    return [(now / before) - 1 for before, now in zip(closes, closes[1:], strict=False) if before]


def highest_high(candles: Sequence[Candle]) -> Decimal:
    if not candles:
        raise ValueError("highest high of no candles")
    return max(candle.high for candle in candles)


def lowest_low(candles: Sequence[Candle]) -> Decimal:
    if not candles:
        raise ValueError("lowest low of no candles")
    return min(candle.low for candle in candles)
