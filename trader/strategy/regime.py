"""The dual-ATR volatility regime engine: classify the market and adjust entries to it.

A fast ATR (7) and a slow ATR (21) on closed candles give the volatility ratio
VR = fast / slow:

    EXTREME  VR >= 1.8          no new entries; stops widened 50 %, targets 20 %
                                (the stop/target multipliers also move the legs of open
                                positions when the regime changes: trader/regime_adjust.py)
    HIGH     1.2 <= VR < 1.8    size -25 %, stops +30 %, targets +15 %
    NORMAL   0.8 <= VR < 1.2    defaults
    LOW      VR < 0.8           tighter stops (x0.8) and targets (x0.9); no entry at all
                                when ATR% (fast ATR / last close) is below 0.2 %, because
                                the move would not pay the fees

Both ATRs are computed over the same fixed window of the most recent candles
(`lookback`), so a reading does not depend on how much history the caller happens to
hold (after a restart the engine may have less than before).

The breaker asks for the regime on every candle: `classify_ranges` gives `read_regime`'s
class from float true ranges kept as candles close (`RangeWindow`, in
trader/market/history.py), whose Wilder averages are kept up to date range by range, and
defers to the exact Decimal reading when the ratio is too close to a threshold for float
rounding to be ruled out.
"""

import operator
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from itertools import islice

from trader.domain import Candle
from trader.market.candle_window import CandleWindow
from trader.market.indicators import (
    atr,
    ema,
    rough_emas,
    true_ranges,
    wilder_average,
)

ONE = Decimal(1)


class Regime(StrEnum):
    EXTREME = "EXTREME"
    HIGH = "HIGH"
    NORMAL = "NORMAL"
    LOW = "LOW"


@dataclass(frozen=True, slots=True)
class RegimeThresholds:
    extreme: Decimal = Decimal("1.8")
    high: Decimal = Decimal("1.2")
    normal: Decimal = Decimal("0.8")
    min_atr_pct: Decimal = Decimal("0.002")
    fast: int = 7
    slow: int = 21
    lookback: int = 100          # candles both ATRs are computed over (>= slow + 1)

    def __post_init__(self) -> None:
        if not self.normal < self.high < self.extreme:
            raise ValueError("regime thresholds must satisfy normal < high < extreme")
        if not 1 <= self.fast < self.slow < self.lookback:
            raise ValueError("ATR periods must satisfy 1 <= fast < slow < lookback")


@dataclass(frozen=True, slots=True)
class RegimeReading:
    regime: Regime
    vr: Decimal
    atr_fast: Decimal
    atr_slow: Decimal
    atr_pct: Decimal             # fast ATR / last close


@dataclass(frozen=True, slots=True)
class RegimeAdjustment:
    allow_entry: bool
    size_mult: Decimal
    sl_mult: Decimal
    tp_mult: Decimal
    reason: str
    regime: Regime = Regime.NORMAL


DEFAULT_THRESHOLDS = RegimeThresholds()

# (stop-loss, take-profit) distance multipliers per regime: entries are planned with them
# (`adjustment`), and open positions' legs follow them when the regime changes
# (trader/regime_adjust.py).
LEG_MULTIPLIERS: dict[Regime, tuple[Decimal, Decimal]] = {
    Regime.EXTREME: (Decimal("1.5"), Decimal("1.2")),
    Regime.HIGH: (Decimal("1.3"), Decimal("1.15")),
    Regime.NORMAL: (ONE, ONE),
    Regime.LOW: (Decimal("0.8"), Decimal("0.9")),
}


def classify(vr: Decimal, t: RegimeThresholds = DEFAULT_THRESHOLDS) -> Regime:
    """The regime for a volatility ratio; each threshold belongs to the regime above it."""
    if vr >= t.extreme:
        return Regime.EXTREME
    if vr >= t.high:
        return Regime.HIGH
    if vr >= t.normal:
        return Regime.NORMAL
    return Regime.LOW


def read_regime(closed: Sequence[Candle],
                t: RegimeThresholds = DEFAULT_THRESHOLDS) -> RegimeReading | None:
    """Read the regime from closed candles; None until there are slow + 1 candles."""
    window = closed[-t.lookback:]
    # once for both periods (as atr() would compute them); a history's window: the exact
    # ranges the history kept (the strategy's ATR computed most of them)
    ranges = closed.true_ranges(t.lookback) if type(closed) is CandleWindow \
        else true_ranges(window)[1:]
    atr_fast = wilder_average(ranges, t.fast)
    atr_slow = wilder_average(ranges, t.slow)
    if atr_fast is None or atr_slow is None or atr_slow <= 0 or window[-1].close <= 0:
        return None
    vr = atr_fast / atr_slow
    return RegimeReading(classify(vr, t), vr, atr_fast, atr_slow, atr_fast / window[-1].close)


FLOAT_MARGIN = 1e-9     # relative distance to a threshold below which float is not trusted


@lru_cache(maxsize=64)
def wilder_weights(count: int, period: int) -> tuple[float, ...]:
    """Wilder's smoothing of `count` ranges as one weighted sum: the seed mean of the first
    `period` is decayed by k = (period-1)/period per later range, each later range enters
    with 1/period and decays the same way."""
    keep = (period - 1) / period
    later = [keep ** (count - 1 - index) / period for index in range(period, count)]
    seed = keep ** (count - period) / period
    return tuple([seed] * period + later)


def _wilder_float(ranges: Sequence[float], period: int) -> float:
    return sum(map(operator.mul, wilder_weights(len(ranges), period), ranges))


class RangeWindow(deque[float]):
    """The float true ranges of the last `size` candles (a bounded deque to read), with
    Wilder's average over the window for each of `periods` kept up to date as ranges are
    added: a few float operations a candle instead of a weighted sum over the window.

    Wilder over n ranges is (k^(n-p) x seed + later) / p, k = (p-1)/p: `seed` the sum of
    the first p ranges, `later` the sum of k^(n-1-i) x range i for the others. Each new
    range updates both with one or two additions (the oldest range leaves the seed, range
    p moves from `later` into it). Float rounding is relative to the sums' size: a sum is
    taken afresh from the ranges when it falls below half the largest it was since it was
    last taken (what a spike leaving the window, or volatility dying down, would otherwise
    leave behind), and every `size` ranges. So the averages stay within ~1e-13 relative of
    the weighted sum over the window (`_wilder_float`), far inside the FLOAT_MARGIN
    `classify_ranges` leaves to the exact reading.

        window = RangeWindow(99, (7, 21))
        window.append(true_range)
        window.ratio(7, 21)     # == _wilder_float(list(window), 7) / (..., 21) up to rounding
    """

    # slots: see trader/market/history.py (a deque subclass's dict attributes are slow)
    __slots__ = ("size", "_sums", "_each", "_left")

    def __init__(self, size: int, periods: Iterable[int]) -> None:
        super().__init__((), size)
        self.size = size
        self._sums = {period: _WilderSums(period, size) for period in periods}
        self._each = tuple(self._sums.values())
        self._left = size       # ranges until the sums are taken afresh (every `size`)

    def append(self, span: float) -> None:
        count = len(self)
        stale: list[Callable[[deque[float]], None]] | None = None   # sums to take afresh
        full = count == self.size
        oldest = self[0] if full else 0.0
        for sums in self._each:
            period = sums.period
            if full:                            # the oldest range leaves
                if period < count:              # range `period` moves into the seed
                    moving = self[period]
                    seed = sums.seed = sums.seed + (moving - oldest)
                    later = sums.later = \
                        sums.keep * (sums.later - sums.moving_weight * moving) + span
                else:                           # the whole window is the seed
                    seed = sums.seed = sums.seed + (span - oldest)
                    later = sums.later
            elif count < period:                # nothing leaves: the window grows
                seed = sums.seed = sums.seed + span
                later = sums.later
            else:
                seed = sums.seed
                later = sums.later = sums.keep * sums.later + span
            # `shrunk`, inline (every candle): a sum below half its peak is taken afresh,
            # that sum alone (the seed of the fast period, 7 ranges, does most often; the
            # weighted `later` sums cost ~80 products each). A sum above its peak is not
            # below half of it (peaks are >= 0: they start at 0.0 and only grow), and each
            # half is kept with its peak (0.5 x: exact).
            if seed > sums.seed_peak:
                sums.seed_peak, sums.seed_half = seed, 0.5 * seed
            elif seed < sums.seed_half:
                stale = [sums.take_seed] if stale is None else [*stale, sums.take_seed]
            if later > sums.later_peak:
                sums.later_peak, sums.later_half = later, 0.5 * later
            elif later < sums.later_half:
                stale = [sums.take_later] if stale is None else [*stale, sums.take_later]
        deque.append(self, span)
        left = self._left - 1                   # (size > 0: it holds the range)
        if left:
            self._left = left
            if stale is not None:
                for take in stale:
                    take(self)
        else:                                   # every `size` ranges appended: all of them
            self._left = self.size
            for sums in self._each:
                sums.take(self)

    def wilder(self, period: int) -> float | None:
        """Wilder's average of the window's ranges over `period`; None with fewer than
        `period` ranges."""
        count = len(self)
        if count < period:
            return None
        sums = self._sums.get(period)
        if sums is None:                        # not kept: the weighted sum
            return _wilder_float(self, period)
        return sums.average(count)

    def ratio(self, fast: int, slow: int) -> float | None:
        """Wilder over `fast` / Wilder over `slow`; None without enough ranges, or when
        the slow average is not positive (no volatility)."""
        count = len(self)
        if count < slow or count < fast:
            return None
        slow_sums, fast_sums = self._sums.get(slow), self._sums.get(fast)
        # `_WilderSums.average(count)` inline for each (every candle, from the breakers'
        # regime reading): the very same float operations, without two method calls
        if slow_sums is None:
            slow_average = _wilder_float(self, slow)
        else:
            weight = slow_sums.full_weight if count == slow_sums.size \
                else slow_sums.keep ** (count - slow_sums.period)
            slow_average = (weight * slow_sums.seed + slow_sums.later) / slow_sums.period
        if not slow_average > 0:
            return None
        if fast_sums is None:
            fast_average = _wilder_float(self, fast)
        else:
            weight = fast_sums.full_weight if count == fast_sums.size \
                else fast_sums.keep ** (count - fast_sums.period)
            fast_average = (weight * fast_sums.seed + fast_sums.later) / fast_sums.period
        return fast_average / slow_average


@lru_cache(maxsize=64)
def _later_weights(count: int, period: int) -> tuple[float, ...]:
    """k^(count-1-i) for the ranges i = period .. count-1 (k = (period-1)/period)."""
    keep = (period - 1) / period
    return tuple(keep ** (count - 1 - index) for index in range(period, count))


class _WilderSums:
    """One period's `seed` and `later` of a RangeWindow (see there), and the largest each
    was since it was last summed from the ranges."""
    __slots__ = ("period", "size", "keep", "moving_weight", "full_weight", "seed", "later",
                 "seed_peak", "later_peak", "seed_half", "later_half")

    def __init__(self, period: int, size: int) -> None:
        self.period = period
        self.size = size
        self.keep = (period - 1) / period
        self.moving_weight = self.keep ** max(size - 1 - period, 0)  # of range `period`, full
        self.full_weight = self.keep ** max(size - period, 0)        # of the seed, full
        self.seed = self.later = self.seed_peak = self.later_peak = 0.0
        self.seed_half = self.later_half = 0.0      # half of each peak

    def take(self, ranges: deque[float]) -> None:
        """Both sums afresh from the window's ranges."""
        self.take_seed(ranges)
        self.take_later(ranges)

    def take_seed(self, ranges: deque[float]) -> None:
        self.seed = self.seed_peak = sum(islice(ranges, self.period))
        self.seed_half = 0.5 * self.seed

    def take_later(self, ranges: deque[float]) -> None:
        period = self.period
        self.later = self.later_peak = sum(map(operator.mul, _later_weights(len(ranges), period),
                                               islice(ranges, period, None)))
        self.later_half = 0.5 * self.later

    def average(self, count: int) -> float:
        """Wilder's average over a window of `count` >= period ranges."""
        weight = self.full_weight if count == self.size else self.keep ** (count - self.period)
        return (weight * self.seed + self.later) / self.period


def classify_ranges(ranges: Sequence[float],
                    t: RegimeThresholds = DEFAULT_THRESHOLDS) -> Regime | None:
    """`read_regime(candles).regime` from the float true ranges of the candles' window (the
    last lookback - 1 candles, each against its previous close), or None when that cannot
    be told in float: too few ranges, no volatility, or a volatility ratio within
    FLOAT_MARGIN of a threshold (the exact reading decides those). Away from a threshold,
    comparing the float ratio with the float threshold decides as `classify` would."""
    count = len(ranges)
    if count < t.slow or count > t.lookback - 1:
        return None
    if isinstance(ranges, RangeWindow):
        vr = ranges.ratio(t.fast, t.slow)
    else:
        slow = _wilder_float(ranges, t.slow)
        vr = _wilder_float(ranges, t.fast) / slow if slow > 0 else None
    if vr is None:
        return None
    # Highest band first: above a band is its regime (above its threshold, not within the
    # margin, and above every lower band); within it, the exact reading decides.
    for low, _, high, regime in _DEFAULT_BANDS if t is DEFAULT_THRESHOLDS else _float_bands(t):
        if vr > high:
            return regime
        if vr >= low:                   # within FLOAT_MARGIN of the threshold
            return None
    return _LOW


@lru_cache(maxsize=16)
def _float_bands(t: RegimeThresholds) -> tuple[tuple[float, float, float, Regime], ...]:
    """The thresholds of `classify`, highest first, as floats, each with the band
    threshold +- FLOAT_MARGIN x threshold within which float does not decide:
    (low, threshold, high, regime)."""
    return tuple((threshold - FLOAT_MARGIN * threshold, threshold,
                  threshold + FLOAT_MARGIN * threshold, regime)
                 for threshold, regime in ((float(t.extreme), Regime.EXTREME),
                                           (float(t.high), Regime.HIGH),
                                           (float(t.normal), Regime.NORMAL)))


_DEFAULT_BANDS = _float_bands(DEFAULT_THRESHOLDS)   # read every candle: not hashed each time
# Read once: `Regime.LOW` goes through 3.11's `EnumType.__getattr__` (~900 instructions),
# and a quiet market's breakers classify their ranges LOW every candle.
_LOW = Regime.LOW


def adjustment(reading: RegimeReading, t: RegimeThresholds = DEFAULT_THRESHOLDS) -> RegimeAdjustment:
    """How entries are changed in this regime (see the module docstring for the table)."""
    regime, vr = reading.regime, reading.vr
    sl_mult, tp_mult = LEG_MULTIPLIERS[regime]
    if regime is Regime.EXTREME:
        return RegimeAdjustment(False, ONE, sl_mult, tp_mult,
                                f"EXTREME volatility (VR {vr:.2f} >= {t.extreme}): no new entries",
                                regime)
    if regime is Regime.HIGH:
        return RegimeAdjustment(True, Decimal("0.75"), sl_mult, tp_mult,
                                f"HIGH volatility (VR {vr:.2f}): size -25 %, SL +30 %, TP +15 %",
                                regime)
    if regime is Regime.NORMAL:
        return RegimeAdjustment(True, ONE, sl_mult, tp_mult, f"NORMAL volatility (VR {vr:.2f})",
                                regime)
    if reading.atr_pct < t.min_atr_pct:
        return RegimeAdjustment(False, ONE, sl_mult, tp_mult,
                                f"LOW volatility (VR {vr:.2f}) and ATR {reading.atr_pct:.3%} "
                                f"< {t.min_atr_pct:.2%}: market too quiet to pay fees", regime)
    return RegimeAdjustment(True, ONE, sl_mult, tp_mult,
                            f"LOW volatility (VR {vr:.2f}): tighter SL x0.8, TP x0.9", regime)


def is_trending(closed: Sequence[Candle], fast: int = 20, slow: int = 50, atr_period: int = 14,
                min_gap_atr: Decimal = Decimal("0.5"), window: int = 120) -> bool:
    """True when the fast and slow EMAs are at least `min_gap_atr` ATRs apart (a trend).

    Entries pass it to risk sizing (`SizingInput.trending`): the adaptive reward/risk gives
    trends a wider target than ranges (trader/risk.py `reward_risk`).
    """
    recent = closed[-window:]
    # (a history's window: the strategy's ATR of the same candles, kept on the window)
    average_range = closed.atr(window, atr_period) if type(closed) is CandleWindow \
        else atr(recent, atr_period)
    # A history's window carries its closes' floats (trader/market/candle_window.py): the
    # float EMAs without converting the closes, the same as `rough_emas` of them
    rough = closed.rough_emas(len(recent), fast, slow) if type(closed) is CandleWindow \
        else False
    closes = None
    if rough is False:
        closes = [candle.close for candle in recent]
        rough = rough_emas(closes, fast, slow)   # the strategy's, kept: decides most entries
    if rough is not None and average_range:
        # candle_window's rough_emas returns False, never True (its hint says bool; to fix
        # once trader/market is free to edit: this ignore then reports itself as unused)
        reached = rough.gap_reaches(min_gap_atr * average_range)  # type: ignore[union-attr]
        if reached is not None:
            return reached
    if closes is None:
        closes = [candle.close for candle in recent]
    fast_ema, slow_ema = ema(closes, fast), ema(closes, slow)
    if fast_ema is None or slow_ema is None or not average_range:
        return False
    return abs(fast_ema - slow_ema) >= min_gap_atr * average_range
