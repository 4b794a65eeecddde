"""Indicators and the dual-ATR regime engine: thresholds, adjustments, determinism."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trader.domain import Candle
from trader.market.indicators import atr, ema, returns, rolling_median, true_ranges
from trader.strategy.regime import (
    Regime,
    RegimeReading,
    RegimeThresholds,
    adjustment,
    classify,
    read_regime,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
D = Decimal


def candles_with_ranges(ranges: list[Decimal], mid: Decimal = Decimal(100)) -> list[Candle]:
    """Candles centred on `mid` (no gaps), so each true range is exactly the given range."""
    return [Candle("TESTUSDT", START + timedelta(minutes=i), timedelta(minutes=1),
                   mid, mid + span / 2, mid - span / 2, mid)
            for i, span in enumerate(ranges)]


def test_true_range_includes_the_gap_from_the_previous_close() -> None:
    first = Candle("X", START, timedelta(minutes=1), D(100), D(101), D(99), D(100))
    gapped = Candle("X", START + timedelta(minutes=1), timedelta(minutes=1),
                    D(105), D(106), D(104), D(105))
    assert true_ranges([first, gapped]) == [D(2), D(6)]


def test_atr_needs_period_plus_one_candles() -> None:
    assert atr(candles_with_ranges([D(1)] * 7), 7) is None
    assert atr(candles_with_ranges([D(1)] * 8), 7) == D(1)


def test_atr_uses_wilder_smoothing() -> None:
    # first ATR = mean(2, 2) = 2; then (2 x 1 + 6) / 2 = 4
    candles = candles_with_ranges([D(9), D(2), D(2), D(6)])
    assert atr(candles, 2) == D(4)


def test_ema_seeds_with_the_mean_then_smooths() -> None:
    assert ema([D(1), D(2)], 3) is None
    assert ema([D(1), D(2), D(3), D(7)], 3) == D(2) + D("0.5") * (D(7) - D(2))


def test_rolling_median_odd_even_and_empty() -> None:
    assert rolling_median([D(3), D(1), D(2)]) == D(2)
    assert rolling_median([D(4), D(1), D(2), D(3)]) == D("2.5")
    with pytest.raises(ValueError):
        rolling_median([])


def test_returns_are_relative_changes() -> None:
    assert returns([D(100), D(110), D(99)]) == [D("0.1"), D(99) / D(110) - 1]


@pytest.mark.parametrize(("vr", "expected"), [
    (D("1.8"), Regime.EXTREME), (D("5"), Regime.EXTREME),
    (D("1.7999"), Regime.HIGH), (D("1.2"), Regime.HIGH),
    (D("1.1999"), Regime.NORMAL), (D("0.8"), Regime.NORMAL), (D("1"), Regime.NORMAL),
    (D("0.7999"), Regime.LOW), (D("0"), Regime.LOW),
])
def test_each_threshold_belongs_to_the_regime_above_it(vr: Decimal, expected: Regime) -> None:
    assert classify(vr) is expected


ORDER = [Regime.LOW, Regime.NORMAL, Regime.HIGH, Regime.EXTREME]


@given(st.decimals(0, 10, places=4), st.decimals(0, 10, places=4))
def test_a_higher_volatility_ratio_never_gives_a_calmer_regime(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert ORDER.index(classify(low)) <= ORDER.index(classify(high))


def test_thresholds_are_configurable() -> None:
    strict = RegimeThresholds(extreme=D("1.5"), high=D("1.1"), normal=D("0.9"))
    assert classify(D("1.5"), strict) is Regime.EXTREME
    assert classify(D("0.85"), strict) is Regime.LOW


def test_inconsistent_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError):
        RegimeThresholds(extreme=D("1.0"), high=D("1.2"))
    with pytest.raises(ValueError):
        RegimeThresholds(fast=21, slow=7)


def test_no_reading_before_slow_atr_is_available() -> None:
    assert read_regime(candles_with_ranges([D(1)] * 21)) is None
    assert read_regime(candles_with_ranges([D(1)] * 22)) is not None


def test_steady_volatility_reads_normal() -> None:
    reading = read_regime(candles_with_ranges([D(1)] * 60))
    assert reading is not None
    assert reading.regime is Regime.NORMAL
    assert reading.vr == 1
    assert reading.atr_pct == D("0.01")


def test_a_volatility_burst_reads_extreme_and_a_lull_reads_low() -> None:
    burst = read_regime(candles_with_ranges([D(1)] * 50 + [D(10)] * 3))
    lull = read_regime(candles_with_ranges([D(1)] * 50 + [D("0.2")] * 10))
    assert burst is not None and burst.regime is Regime.EXTREME
    assert lull is not None and lull.regime is Regime.LOW


def test_reading_does_not_depend_on_history_beyond_the_lookback() -> None:
    recent = candles_with_ranges([D(1), D(2), D(3)] * 40)
    older = candles_with_ranges([D(7)] * 300)
    assert read_regime(older + recent) == read_regime(recent)


def _reading(regime: Regime, atr_pct: str = "0.005") -> RegimeReading:
    vr = {Regime.EXTREME: D(2), Regime.HIGH: D("1.5"), Regime.NORMAL: D(1), Regime.LOW: D("0.5")}
    return RegimeReading(regime, vr[regime], D(1), D(1), D(atr_pct))


@pytest.mark.parametrize(("regime", "allowed", "size", "sl", "tp"), [
    (Regime.EXTREME, False, D(1), D("1.5"), D("1.2")),
    (Regime.HIGH, True, D("0.75"), D("1.3"), D("1.15")),
    (Regime.NORMAL, True, D(1), D(1), D(1)),
    (Regime.LOW, True, D(1), D("0.8"), D("0.9")),
])
def test_regime_adjustments_follow_the_table(regime: Regime, allowed: bool, size: Decimal,
                                             sl: Decimal, tp: Decimal) -> None:
    adj = adjustment(_reading(regime))
    assert (adj.allow_entry, adj.size_mult, adj.sl_mult, adj.tp_mult) == (allowed, size, sl, tp)
    assert adj.regime is regime
    assert adj.reason


def test_low_regime_skips_entries_when_atr_is_under_two_tenths_of_a_percent() -> None:
    assert adjustment(_reading(Regime.LOW, "0.0019")).allow_entry is False
    assert adjustment(_reading(Regime.LOW, "0.002")).allow_entry is True
    assert "too quiet" in adjustment(_reading(Regime.LOW, "0.001")).reason
