"""The strategy interface, timeframe combination and the default breakout strategy,
including how often it trades on the bundled real candles."""

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trader.domain import Candle, Side, Signal, utc
from trader.risk import SignalDecision, decide
from trader.strategy.base import Strategy, combine
from trader.strategy.default import DefaultStrategy
from trader.strategy.regime import is_trending

D = Decimal
START = datetime(2024, 1, 1, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def signal(side: Side, confidence: float = 0.8, reason: str = "") -> Signal:
    return Signal(side, confidence, D("0.01"), D("0.005"), reason=reason)


def test_combine_with_no_signals_is_none() -> None:
    assert combine([]) is None
    assert combine([None, None]) is None


def test_conflicting_timeframes_give_no_entry() -> None:
    assert combine([signal(Side.BUY), signal(Side.SELL)]) is None
    assert combine([signal(Side.BUY), None, signal(Side.SELL)]) is None


def test_agreeing_timeframes_keep_the_first_with_the_lowest_confidence() -> None:
    first = signal(Side.SELL, 0.9, "1m")
    combined = combine([None, first, signal(Side.SELL, 0.4, "5m")])
    assert combined is not None
    assert combined.side is Side.SELL
    assert combined.tp_pct == first.tp_pct
    assert combined.confidence == 0.4
    assert combined.reason == "1m + 5m"


@given(st.lists(st.one_of(st.none(), st.sampled_from([Side.BUY, Side.SELL])), max_size=5))
def test_combined_signal_always_agrees_with_every_timeframe(sides: list[Side | None]) -> None:
    combined = combine([signal(side) if side else None for side in sides])
    present = {side for side in sides if side is not None}
    if len(present) == 1:
        assert combined is not None and combined.side in present
    else:
        assert combined is None


def trending_candles(count: int, step: Decimal, body: Decimal = Decimal("0.2")) -> list[Candle]:
    """A steady trend: each candle opens at the previous close and moves by `step`."""
    candles, price = [], D(100)
    for i in range(count):
        close = price + step
        high, low = max(price, close) + body, min(price, close) - body
        candles.append(Candle("TESTUSDT", START + timedelta(minutes=5 * i), timedelta(minutes=5),
                              price, high, low, close))
        price = close
    return candles


def follow(candles: list[Candle], move: Decimal) -> Candle:
    last = candles[-1]
    close = last.close + move
    return Candle(last.symbol, last.close_time, last.interval, last.close,
                  max(last.close, close), min(last.close, close), close)


def test_default_strategy_implements_the_strategy_interface() -> None:
    strategy = DefaultStrategy()
    assert isinstance(strategy, Strategy)
    assert strategy.warmup == strategy.window


def test_no_signal_before_warmup() -> None:
    strategy = DefaultStrategy()
    short = trending_candles(strategy.warmup - 2, D("0.05"))
    assert strategy.signal(short + [follow(short, D(3))]) is None
    enough = trending_candles(strategy.warmup - 1, D("0.05"))
    assert strategy.signal(enough + [follow(enough, D(3))]) is not None


def test_a_strong_breakout_in_an_uptrend_signals_long_with_atr_stop() -> None:
    strategy = DefaultStrategy()
    # a mild pullback after an uptrend keeps the last closes under the channel high
    candles = trending_candles(110, D("0.05"))
    for _ in range(10):
        candles.append(follow(candles, D("-0.02")))
    breakout = candles + [follow(candles, D(2))]
    result = strategy.signal(breakout)
    assert result is not None
    assert result.side is Side.BUY
    assert D("0") < result.sl_pct < D("0.05")
    assert result.tp_pct == result.sl_pct * strategy.reward_risk
    assert 0 < result.confidence <= 1


def test_a_strong_breakdown_in_a_downtrend_signals_short() -> None:
    candles = trending_candles(110, D("-0.05"))
    for _ in range(10):
        candles.append(follow(candles, D("0.02")))
    result = DefaultStrategy().signal(candles + [follow(candles, D(-2))])
    assert result is not None and result.side is Side.SELL


def test_a_breakout_against_the_trend_does_not_signal() -> None:
    candles = trending_candles(110, D("-0.05"))
    for _ in range(10):
        candles.append(follow(candles, D("0.02")))
    assert DefaultStrategy().signal(candles + [follow(candles, D(8))]) is None


def test_only_the_breakout_candle_signals_not_the_run_after_it() -> None:
    strategy = DefaultStrategy()
    candles = trending_candles(110, D("0.05"))
    for _ in range(10):
        candles.append(follow(candles, D("-0.02")))
    candles.append(follow(candles, D(2)))
    assert strategy.signal(candles) is not None
    candles.append(follow(candles, D(2)))
    assert strategy.signal(candles) is None


def test_a_weak_breakout_candle_does_not_signal() -> None:
    candles = trending_candles(110, D("0.05"))
    for _ in range(10):
        candles.append(follow(candles, D("-0.02")))
    assert DefaultStrategy().signal(candles + [follow(candles, D("0.25"))]) is None


def test_is_trending_separates_trend_from_range() -> None:
    assert is_trending(trending_candles(130, D("0.1")))
    ranging = [follow(trending_candles(1, D(0)), D("0.1") * (1 if i % 2 else -1))
               for i in range(130)]
    assert not is_trending(ranging)


def read_candles(path: Path, interval: timedelta) -> list[Candle]:
    with path.open() as handle:
        return [Candle(path.stem.split("-")[0], utc(int(row["open_time"])), interval,
                       D(row["open"]), D(row["high"]), D(row["low"]), D(row["close"]))
                for row in csv.DictReader(handle)]


def simulated_entries(candles: list[Candle], strategy: DefaultStrategy) -> list[Signal]:
    """Entries taken when flat: a position lasts its time limit, then the cooldown runs."""
    entries: list[Signal] = []
    busy_until = START.replace(year=1970)
    for end in range(strategy.warmup, len(candles) + 1):
        closed = candles[:end]
        now = closed[-1].close_time
        held = None if now >= busy_until else entries[-1].side
        found = strategy.signal(closed)
        decision, _ = decide(held, found)
        if decision is SignalDecision.OPEN and found is not None:
            entries.append(found)
            busy_until = now + found.time_limit + found.cooldown
    return entries


@pytest.mark.parametrize(("name", "interval", "low", "high"), [
    ("BTCUSDT-15m.csv", timedelta(minutes=15), 3, 40),
    ("XRPUSDT-5m.csv", timedelta(minutes=5), 5, 60),
])
def test_default_strategy_trades_a_reasonable_number_of_times_on_real_candles(
        name: str, interval: timedelta, low: int, high: int) -> None:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    candles = read_candles(path, interval)
    entries = simulated_entries(candles, DefaultStrategy())
    assert low <= len(entries) <= high
    assert {entry.side for entry in entries} == {Side.BUY, Side.SELL}
    assert all(D(0) < entry.sl_pct < entry.tp_pct for entry in entries)
