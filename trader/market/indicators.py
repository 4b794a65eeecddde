"""Indicators on closed candles: true range, Wilder ATR, EMA, rolling median, returns.

Pure functions over `Decimal`s; nothing here reads the clock or the exchange. Callers pass
closed candles only (an open candle's high/low are still moving).

The true ranges, the ATR and the EMA remember their last few answers (`_Recent`): an entry
asks for the same ones several times on one candle (the strategy's signal, then the
planning's regime and trend over the same candles), each costs ~100 Decimal operations,
and the true ranges of a window are mostly those of a recent window that overlaps it. An
answer is given again only for the very same input objects (candles and Decimals are
immutable), so it is the answer the computation would give again.
"""

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Hashable, Sequence
from decimal import Decimal, getcontext
from itertools import islice
from operator import attrgetter, is_
from typing import Any

from trader.domain import ZERO, Candle

_MISSING: Any = object()


class _Recent:
    """The last `size` answers of one indicator, each kept with the very objects it was
    computed from (their own tuple: a caller may change its list afterwards), the
    parameter, and the Decimal context's precision and rounding (what decides the digits).
    Nothing is ever stale: the same objects, parameter and context give the same digits
    again. The oldest answer goes when a new one comes.

        found = RECENT.find(values, period)     # _MISSING, or the answer kept
    """
    __slots__ = ("size", "kept")

    def __init__(self, size: int) -> None:
        self.size = size
        self.kept: list[tuple[tuple[Any, ...], Hashable, Any]] = []

    def find(self, inputs: Sequence[Any], parameter: Hashable) -> Any:
        if not inputs:
            return _MISSING
        key = _key(parameter)
        for objects, kept_key, answer in self.kept:
            if (kept_key == key and len(objects) == len(inputs) and objects[-1] is inputs[-1]
                    and all(map(is_, objects, inputs))):
                return answer
        return _MISSING

    def keep(self, inputs: Sequence[Any], parameter: Hashable, answer: Any) -> None:
        if len(self.kept) >= self.size:
            del self.kept[0]
        self.kept.append((tuple(inputs), _key(parameter), answer))


def _key(parameter: Hashable) -> Hashable:
    context = getcontext()
    return parameter, context.prec, context.rounding


_RANGES, _ATR, _EMA = _Recent(2), _Recent(2), _Recent(4)


def true_ranges(candles: Sequence[Candle]) -> list[Decimal]:
    """One true range per candle: max(high-low, |high-prev close|, |low-prev close|).

    The first candle has no previous close, so its true range is its high-low range.
    """
    ranges = _ranges_from_recent(candles)
    if ranges is None:
        ranges = _true_ranges(candles)
        # (an answer taken whole from a kept one is not kept: the longer run stays)
        _RANGES.keep(candles, None, tuple(ranges))     # the caller may change its list
    return ranges


def _ranges_from_recent(candles: Sequence[Candle]) -> list[Decimal] | None:
    """The true ranges of `candles` taken from a recent answer for a run of candles that
    shares a stretch with them, by identity, from their first candle on (the regime's 100
    candles within the strategy's 120; the strategy's window a few candles later): there
    each range but the first has the same candle and previous close; the first has no
    previous close here, so it is its high-low range (as `_true_ranges` gives it); the
    candles beyond the stretch are computed (and the whole answer kept). None when no
    recent run shares any."""
    count = len(candles)
    if count < 2:
        return None
    first, key = candles[0], _key(None)
    for objects, kept_key, ranges in _RANGES.kept:
        offset = _place_of(objects, first) if kept_key == key else -1
        if offset < 0:
            continue
        shared = min(len(objects) - offset, count)
        if not all(map(is_, islice(objects, offset, offset + shared), islice(candles, shared))):
            continue
        reused = [first.high - first.low, *islice(ranges, offset + 1, offset + shared)]
        if shared < count:     # from the last shared candle on: its close is the previous
            reused += _true_ranges(list(islice(candles, shared - 1, None)))[1:]
            _RANGES.keep(candles, None, tuple(reused))
        return reused
    return None


def _place_of(objects: Sequence[Candle], wanted: Candle) -> int:
    """Where the very candle `wanted` is in `objects`, or -1: looked for only where the
    candles' times put it (a run of one interval, oldest first), so a run it is not in is
    passed over at once. Never compared for equality."""
    if not objects:
        return -1
    start = objects[0]
    if not start.interval or wanted.interval != start.interval:
        return -1
    place = (wanted.open_time - start.open_time) // start.interval
    return place if 0 <= place < len(objects) and objects[place] is wanted else -1


def _true_ranges(candles: Sequence[Candle]) -> list[Decimal]:
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
    found = _ATR.find(candles, period)
    if found is _MISSING:
        found = wilder_average(true_ranges(candles)[1:], period)
        _ATR.keep(candles, period, found)
    return found


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
    found = _EMA.find(values, period)
    if found is _MISSING:
        found = _ema(values, period)
        _EMA.keep(values, period, found)
    return found


def _ema(values: Sequence[Decimal], period: int) -> Decimal:
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


class MedianWindow:
    """The last `size` values, kept in arrival order and, from the first `median()` on, in
    sorted order too, so that the median is read without a sort (the spread breaker reads
    it on every tick whose spread is wide enough to matter): `median()` equals
    `rolling_median` of the same values. Until a median is asked (a book a tick or two
    wide, most markets, every replayed candle) an append is two deque operations."""

    __slots__ = ("size", "arrived", "ordered")

    def __init__(self, size: int) -> None:
        self.size = size
        self.arrived: deque[Decimal] = deque()
        self.ordered: list[Decimal] | None = None     # sorted `arrived`, once asked

    def append(self, value: Decimal) -> None:
        arrived, ordered = self.arrived, self.ordered
        arrived.append(value)
        if ordered is None:
            if len(arrived) > self.size:
                arrived.popleft()
            return
        insort(ordered, value)
        if len(arrived) > self.size:
            del ordered[bisect_left(ordered, arrived.popleft())]

    def __len__(self) -> int:
        return len(self.arrived)

    def median(self) -> Decimal:
        """Raises ValueError when empty, as rolling_median."""
        ordered = self.ordered
        if ordered is None:
            ordered = self.ordered = sorted(self.arrived)
        if not ordered:
            raise ValueError("median of an empty sequence")
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
