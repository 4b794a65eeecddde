"""The dual-ATR volatility regime engine: classify the market and adjust entries to it.

A fast ATR (7) and a slow ATR (21) on closed candles give the volatility ratio
VR = fast / slow:

    EXTREME  VR >= 1.8          no new entries; stops widened 50 %, targets 20 %
    HIGH     1.2 <= VR < 1.8    size -25 %, stops +30 %, targets +15 %
    NORMAL   0.8 <= VR < 1.2    defaults
    LOW      VR < 0.8           tighter stops (x0.8) and targets (x0.9); no entry at all
                                when ATR% (fast ATR / last close) is below 0.2 %, because
                                the move would not pay the fees

Both ATRs are computed over the same fixed window of the most recent candles
(`lookback`), so a reading does not depend on how much history the caller happens to
hold (after a restart the engine may have less than before).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

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


def adjustment(reading: RegimeReading, t: RegimeThresholds = DEFAULT_THRESHOLDS) -> RegimeAdjustment:
    """How entries are changed in this regime (see the module docstring for the table)."""
    regime, vr = reading.regime, reading.vr
    if regime is Regime.EXTREME:
        return RegimeAdjustment(False, ONE, Decimal("1.5"), Decimal("1.2"),
                                f"EXTREME volatility (VR {vr:.2f} >= {t.extreme}): no new entries",
                                regime)
    if regime is Regime.HIGH:
        return RegimeAdjustment(True, Decimal("0.75"), Decimal("1.3"), Decimal("1.15"),
                                f"HIGH volatility (VR {vr:.2f}): size -25 %, SL +30 %, TP +15 %",
                                regime)
    if regime is Regime.NORMAL:
        return RegimeAdjustment(True, ONE, ONE, ONE, f"NORMAL volatility (VR {vr:.2f})", regime)
    if reading.atr_pct < t.min_atr_pct:
        return RegimeAdjustment(False, ONE, Decimal("0.8"), Decimal("0.9"),
                                f"LOW volatility (VR {vr:.2f}) and ATR {reading.atr_pct:.3%} "
                                f"< {t.min_atr_pct:.2%}: market too quiet to pay fees", regime)
    return RegimeAdjustment(True, ONE, Decimal("0.8"), Decimal("0.9"),
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
