"""Indicators on closed candles: true range, Wilder ATR, EMA, rolling median, returns.

Pure functions over `Decimal`s; nothing here reads the clock or the exchange. Callers pass
closed candles only (an open candle's high/low are still moving). `rough_emas` is the one
float helper: EMAs within a proven bound of the exact ones, for tests that are far from
their boundary on most candles (the exact EMAs decide the rest).

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
from dataclasses import dataclass
from decimal import Decimal, getcontext
from itertools import islice
from math import isfinite
from operator import attrgetter, is_, mul
from typing import Any

from trader.domain import ZERO, Candle
from trader.fast_init import fast_init

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


_RANGES, _ATR, _EMA, _ROUGH = _Recent(2), _Recent(2), _Recent(4), _Recent(2)


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


def true_ranges_afresh(candles: Sequence[Candle]) -> list[Decimal]:
    """`true_ranges(candles)`, computed: the same Decimals, without looking for them among
    the recent answers nor keeping them (a history keeps its own: market/exact_ranges.py)."""
    return _true_ranges(candles)


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


@fast_init          # one per entry signal looked at
@dataclass(frozen=True, slots=True)
class RoughEmas:
    """A fast and a slow EMA in float, each within `error` of `ema` of the same Decimals
    (same units as the values)."""
    fast: float
    slow: float
    error: float

    def order(self) -> int | None:
        """1 when the exact fast EMA is above the slow one, -1 below; None when the floats
        are too close to tell (within both errors)."""
        gap = self.fast - self.slow
        if abs(gap) <= 2 * self.error:
            return None
        return 1 if gap > 0 else -1

    def gap_reaches(self, least: Decimal) -> bool | None:
        """Whether the exact |fast - slow| >= `least` (same units); None when too close to
        tell. float(least) is off by ~1.1e-16 of itself: _ROUGH_ERROR of it covers that."""
        gap, bound = abs(self.fast - self.slow), float(least)
        if abs(gap - bound) <= 2 * self.error + _ROUGH_ERROR * abs(bound):
            return None
        return gap > bound


# Why 1e-9 of the largest |value| (P) bounds either EMA's error, with room to spare (u =
# 2**-53, ~1.1e-16, a float's relative rounding): each value converted from its Decimal is
# off by at most u x P; the seed (a float sum of `period` values, divided) by at most
# (period + 2) x u x P; a step value + alpha x (item - value) mixes the old error and the
# item's (weights 1 - alpha and alpha: no growth) and adds at most 7u x P of rounding, so
# the steps keep it under 7u x P / alpha more. In all under 5 (period + 1) u x P: ~3e-14 P
# for 50 periods, under 1e-9 P up to ~1.8e6 periods. The exact EMA (Decimal, 28 digits by
# default) is within the same bound with 5e-28 for u; a context of fewer than 16 digits is
# not covered (its rounding could near the bound), nor values whose floats lose digits
# (|value| outside 1e-100..1e100): both give None, and the caller takes the exact EMAs.
_ROUGH_ERROR = 1e-9
_LEAST_PRECISION, _SMALLEST, _LARGEST = 16, 1e-100, 1e100


def rough_emas(values: Sequence[Decimal], fast: int, slow: int) -> RoughEmas | None:
    """`ema(values, fast)` and `ema(values, slow)` in float with their error bound, or
    None when fewer values than either period or when the bound does not hold (see above).
    About half the exact EMAs' instructions (two thirds of it converting the values: a
    Decimal becomes a float through its string), and kept for the same values like them:
    the strategy's signal, then the entry's trend, pay it once."""
    if len(values) < max(fast, slow) or min(fast, slow) < 1:
        return None
    found = _ROUGH.find(values, (fast, slow))
    if found is _MISSING:
        found = _rough_emas(values, fast, slow)
        _ROUGH.keep(values, (fast, slow), found)
    return found


def _rough_emas(values: Sequence[Decimal], fast: int, slow: int) -> RoughEmas | None:
    if getcontext().prec < _LEAST_PRECISION:
        return None
    return rough_emas_of_floats(list(map(float, values)), fast, slow)


def rough_emas_of_floats(floats: list[float], fast: int, slow: int,
                         largest: float | None = None) -> RoughEmas | None:
    """`rough_emas` of Decimals whose floats (`float(value)` of each) are given: the very
    same answer without converting them (a history keeps its closes' floats:
    trader/market/history.py). Not kept (`_ROUGH`): the float steps are cheap. `largest`:
    `largest_magnitude(floats)`, when the caller has it already."""
    if not max(fast, slow) <= len(floats) <= _MOST_STEPS or min(fast, slow) < 1 \
            or getcontext().prec < _LEAST_PRECISION:
        return None
    if largest is None:
        largest = largest_magnitude(floats)
    if not _SMALLEST <= largest <= _LARGEST:    # (a NaN makes the EMAs NaN: below)
        return None
    fast_ema, slow_ema = _float_ema(floats, fast), _float_ema(floats, slow)
    if not (isfinite(fast_ema) and isfinite(slow_ema)):
        return None
    return RoughEmas(fast_ema, slow_ema, _ROUGH_ERROR * largest)


def largest_magnitude(floats: list[float]) -> float:
    """`max(map(abs, floats))` of a non-empty list, an equal float (a zero may come out as
    -0.0), from C's max and min over the list (a third of the instructions: no `abs` call
    and no float made per item). A NaN is passed over by both unless it comes first, and
    then both answer NaN."""
    return max(max(floats), -min(floats))


def _float_ema(values: list[float], period: int) -> float:
    """`_ema` in float: the same seed (the mean of the first `period`), the same steps
    value + alpha x (item - value) = (1 - alpha) x value + alpha x item, as their weighted
    sum (`_linear_steps`)."""
    alpha = 2 / (period + 1)
    return _linear_steps(sum(values[:period]) / period, values[period:], 1 - alpha, alpha)


# The float recursions value = keep x value + weight x item over n items from a seed s (an
# EMA's, Wilder's) are linear: their value is keep**n x s + sum(weight x keep**(n-1-k) x
# item_k), computed here as that weighted sum (C's map and sum over the items: a third of the
# instructions of a Python loop of the steps; the weights made once per keep, weight and n,
# by repeated products). Its error against the recursion in real numbers over the same float
# items and seed, in units of u x P (u = 2**-53; P the largest |item|, |s| <= P; the real
# weights sum to 1 with the seed's): keep and weight are within u of theirs (relative for
# weight, absolute for keep <= 1), the k-th power within k rounding steps more, which over
# the weights sums to under 2 (period + 3) (as weight x sum(k keep**k) <= 1 / (1 - keep)
# with 1 - keep = 2 / (period + 1) or 1 / period), the seed's weight as much again; the
# products add 1, the sum of n terms n. Under n + 5 x period + 15 in all: for n and the
# period up to _MOST_STEPS, under 7e-11 P, far inside the bounds the steps were proved to
# keep (above and below): the answers taken from them are the same.
_MOST_STEPS = 100_000
_STEP_WEIGHTS: dict[tuple[float, float, int], tuple[float, list[float]]] = {}


def _linear_steps(seed: float, items: Sequence[float], keep: float, weight: float) -> float:
    """`value = seed; for item in items: value = keep * value + weight * item`, as the
    weighted sum it equals (see above; its error bound needs len(items) <= _MOST_STEPS)."""
    count = len(items)
    key = (keep, weight, count)
    found = _STEP_WEIGHTS.get(key)
    if found is None:
        if len(_STEP_WEIGHTS) >= 64:        # a few (period, window) pairs are ever used
            _STEP_WEIGHTS.clear()
        weights, power = [], 1.0
        for _ in range(count):
            weights.append(weight * power)
            power *= keep
        weights.reverse()                   # the newest item weighs `weight`
        found = _STEP_WEIGHTS[key] = (power, weights)
    seed_weight, weights = found
    return seed_weight * seed + sum(map(mul, weights, items))


# Why 1e-9 of the largest |price| (P) bounds `rough_wilder`'s error against `atr` of the
# same candles, for any period up to ROUGH_WILDER_PERIODS (u = 2**-53, a float's relative
# rounding; e = 10**(1 - prec) <= 1e-15, the Decimal context's, prec >= 16 checked): each
# float price is within u x P of its Decimal; a float true range (a max of differences of
# two of them: max moves no candidate by more than it moves) within 4u x P of the exact
# one, which Decimal subtraction gives within 2e x P. Wilder's steps v = (v x (n-1) + r) / n
# weigh the old error by (n-1)/n and the range's by 1/n, and each adds rounding of at most
# 3 x 2P x (u or e) in v's units (the product, the sum and the quotient), so the error stays
# under the range error + n x that: with the seed's (a sum of n ranges, divided) both
# averages are within (10n + 10)(u + e) x P of the exact Wilder average: under 1.2e-11 P
# for n = 1,000, under 1e-9 P up to n = 80,000. A context of fewer than 16 digits, prices
# whose floats lose digits (|price| outside 1e-100..1e100) or a period above
# ROUGH_WILDER_PERIODS: no bound (None), the caller takes the exact ATR.
ROUGH_WILDER_ERROR = 1e-9
ROUGH_WILDER_PERIODS = 10_000


def rough_wilder(ranges: Sequence[float], period: int) -> float | None:
    """`wilder_average` in float of true ranges given as floats (the same seed, the same
    steps as their weighted sum: `_linear_steps`), within ROUGH_WILDER_ERROR x the largest |price| of their candles of the exact
    one (see above); None with fewer than `period` ranges or outside the bound's terms."""
    if not 1 <= period <= ROUGH_WILDER_PERIODS or not period <= len(ranges) <= _MOST_STEPS \
            or getcontext().prec < _LEAST_PRECISION:
        return None
    # (v x (n-1) + r) / n = (n-1)/n x v + r/n: the steps as their weighted sum
    seed = sum(ranges[:period]) / period
    return _linear_steps(seed, ranges[period:], (period - 1) / period, 1 / period)


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
