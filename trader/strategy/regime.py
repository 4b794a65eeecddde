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
class from float true ranges kept as candles close (trader/market/history.py), one dot
product per ATR, and defers to the exact Decimal reading when the ratio is too close to
a threshold for float rounding to be ruled out.
"""

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from trader.domain import Candle
from trader.market.indicators import atr, ema, true_ranges, wilder_average

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
    ranges = true_ranges(window)[1:]   # once for both periods (as atr() would compute them)
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


def classify_ranges(ranges: Sequence[float],
                    t: RegimeThresholds = DEFAULT_THRESHOLDS) -> Regime | None:
    """`read_regime(candles).regime` from the float true ranges of the candles' window (the
    last lookback - 1 candles, each against its previous close), or None when that cannot
    be told in float: too few ranges, no volatility, or a volatility ratio within
    FLOAT_MARGIN of a threshold (the exact reading decides those). Away from a threshold,
    comparing the float ratio with the float threshold decides as `classify` would."""
    if len(ranges) < t.slow or len(ranges) > t.lookback - 1:
        return None
    slow = _wilder_float(ranges, t.slow)
    if not slow > 0:
        return None
    vr = _wilder_float(ranges, t.fast) / slow
    bands = _float_bands(t)
    for threshold, _ in bands:
        if abs(vr - threshold) <= FLOAT_MARGIN * threshold:
            return None
    for threshold, regime in bands:
        if vr >= threshold:
            return regime
    return Regime.LOW


@lru_cache(maxsize=16)
def _float_bands(t: RegimeThresholds) -> tuple[tuple[float, Regime], ...]:
    """The thresholds of `classify`, highest first, as floats."""
    return ((float(t.extreme), Regime.EXTREME), (float(t.high), Regime.HIGH),
            (float(t.normal), Regime.NORMAL))


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
    closes = [candle.close for candle in recent]
    fast_ema, slow_ema = ema(closes, fast), ema(closes, slow)
    average_range = atr(recent, atr_period)
    if fast_ema is None or slow_ema is None or not average_range:
        return False
    return abs(fast_ema - slow_ema) >= min_gap_atr * average_range
