"""The `telemetry symbol=...` line speaks when it has news: a symbol's counters or gauges
changed since its last line, or an hour of engine time passed (a heartbeat), live and in a
replay alike. Housekeeping asks every 5 minutes of engine time; a replay at speed 3000 runs
those minutes in a blink, and one line per candle buried its progress lines and trades.
"""

from datetime import UTC, datetime, timedelta

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.log_capture import logged
from trader.telemetry import HEARTBEAT, Counters

START = datetime(2026, 1, 5, tzinfo=UTC)
EVERY = timedelta(minutes=5)          # housekeeping's TELEMETRY_EVERY


def test_nothing_changing_is_logged_once_an_hour_of_engine_time() -> None:
    counters = Counters()
    counters.set("BTCUSDT", "regime_state", "NORMAL")
    counters.set("ETHUSDT", "regime_state", "LOW")
    with logged("INFO", "telemetry ") as lines:
        for run in range(36):                     # 3 hours of telemetry runs
            counters.set("BTCUSDT", "regime_state", "NORMAL")   # set every tick, unchanged
            counters.log(START + run * EVERY)
    assert HEARTBEAT == timedelta(hours=1)
    assert len(lines) == 6                        # 0:00, 1:00, 2:00 for each symbol
    assert sum(line.startswith("telemetry symbol=BTCUSDT ") for line in lines) == 3


def test_a_change_is_logged_at_the_next_run_and_the_hour_counts_from_it() -> None:
    counters = Counters()
    counters.incr("BTCUSDT", "sl_attached")
    with logged("INFO", "telemetry ") as lines:
        counters.log(START)
        counters.log(START + EVERY)
        counters.incr("BTCUSDT", "tp_attached")
        counters.log(START + 2 * EVERY)
        counters.log(START + 3 * EVERY)
        counters.set("BTCUSDT", "regime_state", "HIGH")
        counters.log(START + 4 * EVERY)
        for run in range(5, 16):                  # up to 0:75: under an hour since 0:20
            counters.log(START + run * EVERY)
        counters.log(START + 16 * EVERY)          # 1:20: the heartbeat
    assert [line.split(" ", 2)[2] for line in lines] == [
        "tp_attached=0 sl_attached=1 reattach_attempts=0 reattach_success=0 "
        "partial_fills_count=0 regime_state= risk_fraction_active= circuit_breaker_active=0",
        "tp_attached=1 sl_attached=1 reattach_attempts=0 reattach_success=0 "
        "partial_fills_count=0 regime_state= risk_fraction_active= circuit_breaker_active=0",
        "tp_attached=1 sl_attached=1 reattach_attempts=0 reattach_success=0 "
        "partial_fills_count=0 regime_state=HIGH risk_fraction_active= circuit_breaker_active=0",
        "tp_attached=1 sl_attached=1 reattach_attempts=0 reattach_success=0 "
        "partial_fills_count=0 regime_state=HIGH risk_fraction_active= circuit_breaker_active=0",
    ]


def test_one_symbol_changing_does_not_relog_the_others() -> None:
    counters = Counters()
    counters.incr("BTCUSDT", "sl_attached")
    counters.incr("ETHUSDT", "sl_attached")
    with logged("INFO", "telemetry ") as lines:
        counters.log(START)
        counters.incr("ETHUSDT", "tp_attached")
        counters.log(START + EVERY)
    assert [line.split(" ", 2)[1] for line in lines] == [
        "symbol=BTCUSDT", "symbol=ETHUSDT", "symbol=ETHUSDT"]


async def test_the_engine_logs_a_quiet_symbol_hourly_and_a_trade_at_once(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    with logged("INFO", "telemetry ") as quiet:
        for _ in range(36):                       # 3 hours of 5-minute candles, no trade
            await world.step()
    assert len(quiet) == 3
    with logged("INFO", "telemetry ") as lines:
        world.strategy.next = long_signal()
        await world.step()                        # the entry, its stop and take-profit
        await world.step()
    [line] = lines
    assert line.startswith(f"telemetry symbol={SYMBOL} tp_attached=1 sl_attached=1 ")
