"""Per-symbol telemetry counters for /status and the log."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from loguru import logger

from trader.telemetry import COUNTER_NAMES, GAUGE_NAMES, Counters


def test_counters_count_per_symbol() -> None:
    counters = Counters()
    counters.incr("BTCUSDT", "sl_attached")
    assert counters.incr("BTCUSDT", "sl_attached") == 2
    counters.incr("ETHUSDT", "reattach_attempts", by=3)
    snapshot = counters.snapshot()
    assert snapshot["BTCUSDT"]["sl_attached"] == 2
    assert snapshot["ETHUSDT"]["reattach_attempts"] == 3
    assert snapshot["ETHUSDT"]["sl_attached"] == 0


def test_snapshot_has_every_name_for_each_symbol() -> None:
    counters = Counters()
    counters.set("BTCUSDT", "regime_state", "HIGH")
    assert set(counters.snapshot()["BTCUSDT"]) == set(COUNTER_NAMES) | set(GAUGE_NAMES)


def test_gauges_keep_decimals_exact_and_flags_as_ints() -> None:
    counters = Counters()
    counters.set("BTCUSDT", "risk_fraction_active", Decimal("0.015"))
    counters.set("BTCUSDT", "circuit_breaker_active", True)
    row = counters.snapshot()["BTCUSDT"]
    assert row["risk_fraction_active"] == "0.015"
    assert row["circuit_breaker_active"] == 1


def test_snapshot_is_a_copy() -> None:
    counters = Counters()
    counters.incr("BTCUSDT", "tp_attached")
    counters.snapshot()["BTCUSDT"]["tp_attached"] = 99
    assert counters.get("BTCUSDT", "tp_attached") == 1


def test_unknown_names_fail_loudly() -> None:
    counters = Counters()
    with pytest.raises(KeyError):
        counters.incr("BTCUSDT", "sl_atached")
    with pytest.raises(KeyError):
        counters.set("BTCUSDT", "regime", "LOW")


def test_the_log_line_names_every_counter_of_each_symbol() -> None:
    counters = Counters()
    counters.set("ETHUSDT", "regime_state", "LOW")
    counters.incr("BTCUSDT", "sl_attached")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    try:
        counters.log(datetime(2026, 1, 5, tzinfo=UTC))
    finally:
        logger.remove(sink)
    telemetry = [line for line in lines if line.startswith("telemetry")]
    assert len(telemetry) == 2
    assert telemetry[0].startswith("telemetry symbol=BTCUSDT tp_attached=0 sl_attached=1")
    assert "regime_state=LOW" in telemetry[1]
