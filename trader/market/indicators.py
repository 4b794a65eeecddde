"""Indicators on closed candles: true range, Wilder ATR, EMA, rolling median, returns.

Pure functions over `Decimal`s; nothing here reads the clock or the exchange. Callers pass
closed candles only (an open candle's high/low are still moving).
"""

from collections.abc import Sequence
from decimal import Decimal
from operator import attrgetter

from trader.domain import ZERO, Candle


def true_ranges(candles: Sequence[Candle]) -> list[Decimal]:
    """One true range per candle: max(high-low, |high-prev close|, |low-prev close|).

    The first candle has no previous close, so its true range is its high-low range.
    """
    ranges: list[Decimal] = []
    previous_close: Decimal | None = None
    for candle in candles:
        high, low = candle.high, candle.low
        if previous_close is None:
            ranges.append(high - low)
        elif low <= high:
            # The one subtraction the three-way max below would pick, ties included (max
            # keeps the first), so the very same Decimal in a third of the time.
            if high >= previous_close:
                ranges.append(high - (low if low <= previous_close else previous_close))
            else:
                ranges.append(previous_close - (high if high == low else low))
        else:   # an inconsistent candle: keep the literal definition
            ranges.append(max(high - low, abs(high - previous_close), abs(low - previous_close)))
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
    return wilder_average(true_ranges(candles)[1:], period)


def wilder_average(ranges: Sequence[Decimal], period: int) -> Decimal | None:
    """Wilder's smoothing of true ranges that all have a previous close (`atr` without
    recomputing the ranges, for callers that need several periods of the same candles)."""
    if period < 1:
        raise ValueError(f"ATR period must be >= 1, got {period}")
    if len(ranges) < period:
        return None
    # Decimal operands: the same exact arithmetic as with the ints, without converting
    # them on every step (a third faster; this loop is the regime engine's main cost).
    divisor, keep = Decimal(period), Decimal(period - 1)
    value = sum(ranges[:period], ZERO) / divisor
    for span in ranges[period:]:
        value = (value * keep + span) / divisor
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


_HIGH, _LOW = attrgetter("high"), attrgetter("low")


def highest_high(candles: Sequence[Candle]) -> Decimal:
    if not candles:
        raise ValueError("highest high of no candles")
    return max(map(_HIGH, candles))


def lowest_low(candles: Sequence[Candle]) -> Decimal:
    if not candles:
        raise ValueError("lowest low of no candles")
    return min(map(_LOW, candles))
