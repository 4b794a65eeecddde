"""The entry plan's regime without the exact reading (trader/entry.py
`EntryDesk.regime_adjustment`): for the engine's own candles whose float ranges tell NORMAL
or HIGH, or LOW clear of its ATR floor, it gives what `adjustment(read_regime(candles))`
gives in every field read while the entry is allowed, and a LOW refusal's very adjustment
(its reason's figures too); anything else (other candles, LOW near the floor or a figure's
rounding, EXTREME, too few candles) still takes the exact reading."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import trader.entry as entry_module
from trader.domain import Candle
from trader.entry import LOW_FREE, READING_FREE, EntryDesk, _shown
from trader.market.history import CandleHistory
from trader.strategy.regime import (
    DEFAULT_THRESHOLDS,
    Regime,
    RegimeReading,
    adjustment,
    read_regime,
)

SYMBOL = "XRPUSDT"
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


class Asks:
    warmup = 1

    def signal(self, candles):
        return None


def bursty_candles(count: int, seed: int) -> list[Candle]:
    """A walk whose volatility changes every 15 candles (calm, usual, wild, extreme), so
    that every regime comes up."""
    rng = random.Random(seed)
    price, candles = Decimal("100"), []
    for index in range(count):
        scale = (Decimal("0.02"), Decimal("0.3"), Decimal("1.5"), Decimal("6"))[
            (index // 15 + seed) % 4]
        move = Decimal(rng.randint(-100, 100)) / 100 * scale
        high = price + abs(move) + scale * Decimal(rng.randint(0, 50)) / 100
        low = price - abs(move) - scale * Decimal(rng.randint(0, 50)) / 100
        close = price + move
        candles.append(Candle(SYMBOL, START + index * STEP, STEP, price, high, low, close))
        price = close
    return candles


def desk_with(history: CandleHistory) -> EntryDesk:
    desk = EntryDesk(Asks())   # type: ignore[arg-type]
    desk.history = {SYMBOL: history}
    return desk


def counting_exact_readings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def counted(candles, *args):
        calls.append(1)
        return read_regime(candles, *args)
    monkeypatch.setattr(entry_module, "read_regime", counted)
    return calls


@pytest.mark.parametrize("seed", range(4))
def test_the_desks_regime_is_the_exact_readings_on_every_candle(seed: int) -> None:
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    desk = desk_with(history)
    seen: set[Regime | None] = set()
    for candle in bursty_candles(400, seed):
        history.append(candle)
        closed = history.closed()
        reading = read_regime(closed)
        got = desk.regime_adjustment(SYMBOL, closed)
        if reading is None:
            assert got is None
            seen.add(None)
            continue
        expected = adjustment(reading)
        seen.add(reading.regime)
        if got is READING_FREE.get(reading.regime) or got is LOW_FREE:
            assert expected.allow_entry, "the fast path is only for allowed entries"
            assert got == replace(expected, reason=got.reason)
        else:
            assert got == expected
    assert seen >= {None, Regime.LOW, Regime.NORMAL, Regime.HIGH, Regime.EXTREME}


def calm_candles(count: int) -> list[Candle]:
    """After `bursty_candles(400, 2)`: ranges of ~0.01 % of the price, under the ATR floor."""
    return [replace(candle, open=candle.open / 100 + 99, high=candle.high / 100 + 99,
                    low=candle.low / 100 + 99, close=candle.close / 100 + 99,
                    open_time=candle.open_time + 400 * STEP)
            for candle in bursty_candles(count, 0)]


def test_a_low_regime_is_the_exact_readings_allowed_or_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """LOW from the float ranges: allowed above the floor (LOW_FREE), refused below it with
    the exact reading's own adjustment, reason text and all, without reading it."""
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    desk = desk_with(history)
    calls = counting_exact_readings(monkeypatch)
    free = refused_without = 0
    for candle in bursty_candles(400, 2) + calm_candles(150):
        history.append(candle)
        calls.clear()
        got = desk.regime_adjustment(SYMBOL, history.closed())
        taken = not calls
        reading = read_regime(history.closed())
        if reading is None or reading.regime is not Regime.LOW:
            continue
        expected = adjustment(reading)
        if got is LOW_FREE:
            assert taken and expected.allow_entry
            assert got == replace(expected, reason=got.reason)
            free += 1
        else:
            assert got == expected
            refused_without += taken and not expected.allow_entry
    assert free > 0 and refused_without > 0


@pytest.mark.parametrize("regime", [Regime.NORMAL, Regime.HIGH])
def test_the_kept_adjustments_are_the_tables_but_for_the_reason(regime: Regime) -> None:
    for vr in ("0.81", "1.2", "1.49", "1.6", "2.4"):
        exact = adjustment(RegimeReading(regime, Decimal(vr), Decimal(1), Decimal(1),
                                         Decimal("0.01")))
        assert replace(READING_FREE[regime], reason=exact.reason) == exact


def test_the_exact_reading_is_taken_for_candles_that_are_not_the_historys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    desk = desk_with(history)
    calls = counting_exact_readings(monkeypatch)
    fast = 0
    for candle in bursty_candles(200, 1):
        history.append(candle)
        calls.clear()
        copy = list(history.closed())           # the same candles, not the history's window
        desk.regime_adjustment(SYMBOL, copy)
        assert calls == [1]
        calls.clear()
        got = desk.regime_adjustment(SYMBOL, history.closed())
        fast += not calls
        assert (got in READING_FREE.values() or got is LOW_FREE) == (not calls)
    assert fast > 0, "the fast path was taken on some candles"


def test_extreme_and_undecided_regimes_take_the_exact_reading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    desk = desk_with(history)
    calls = counting_exact_readings(monkeypatch)
    exact_regimes: set[Regime | None] = set()
    for candle in bursty_candles(400, 2):
        history.append(candle)
        calls.clear()
        got = desk.regime_adjustment(SYMBOL, history.closed())
        reading = read_regime(history.closed())
        if got is None or (got.regime not in READING_FREE and got.regime is not Regime.LOW):
            assert calls == [1], "EXTREME and too few candles read the exact regime"
            exact_regimes.add(reading.regime if reading is not None else None)
    assert exact_regimes >= {None, Regime.EXTREME}


def test_a_low_atr_at_the_floor_takes_the_exact_reading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Within float rounding of the floor (here: on it, in float) the float ranges do not
    decide: the exact reading does, whichever side of the floor it falls."""
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    for candle in bursty_candles(120, 2):
        history.append(candle)
    fast = history.ranges.wilder(DEFAULT_THRESHOLDS.fast)
    assert fast is not None
    monkeypatch.setattr(history, "last_close", fast / float(DEFAULT_THRESHOLDS.min_atr_pct))
    monkeypatch.setattr(entry_module, "regime_of", lambda candles: Regime.LOW)
    calls = counting_exact_readings(monkeypatch)
    got = desk_with(history).regime_adjustment(SYMBOL, history.closed())
    assert calls == [1]
    assert got is not LOW_FREE


def test_a_figure_on_a_rounding_boundary_is_not_shown_from_a_float() -> None:
    """A refusal's figure within the margin of a rounding boundary (0.125 to 2 places, the
    exact figure may round either way): no text from the float; clear of one, the text."""
    assert _shown(0.125, ".2f") is None
    assert _shown(0.0012345, ".3%") == "0.123%"
    assert _shown(0.65, ".2f") == "0.65"
    assert _shown(0.001235, ".3%") is None    # 0.1235 %: 0.123 % or 0.124 %?


# --- says_close without a signal ---------------------------------------------------------
class Says:
    warmup = 1

    def __init__(self, answer) -> None:
        self.answer = answer

    def signal(self, candles):
        return self.answer


def test_says_close_holds_without_a_signal_and_closes_on_an_opposite_one() -> None:
    """`EntryDesk.says_close` returns before `decide` when the strategy says nothing: what
    `decide` answers then (HOLD) never closes; a signal still goes through it."""
    from trader.domain import OrderRole, Side, Signal
    from trader.position import Leg, Position, PositionState
    from trader.risk import SignalDecision, decide

    assert decide(Side.BUY, None)[0] is SignalDecision.HOLD
    position = Position(symbol=SYMBOL, key="k", side=Side.BUY, state=PositionState.PROTECTED,
                        quantity=Decimal(1), entry_price=Decimal(100), leverage=5,
                        opened_at=START, stop=Leg(OrderRole.STOP_LOSS, Decimal(99)),
                        take_profit=Leg(OrderRole.TAKE_PROFIT, Decimal(102)))
    candles = bursty_candles(3, 0)
    short = Signal(side=Side.SELL, confidence=1.0, tp_pct=Decimal("0.01"),
                   sl_pct=Decimal("0.005"), reason="r")
    long = replace(short, side=Side.BUY)
    assert EntryDesk(Says(None)).says_close(position, candles) is False   # type: ignore[arg-type]
    assert EntryDesk(Says(long)).says_close(position, candles) is False   # type: ignore[arg-type]
    assert EntryDesk(Says(short)).says_close(position, candles) is True   # type: ignore[arg-type]


# --- new_candle on the engine's history -------------------------------------------------
def test_new_candle_reads_the_candles_given_unless_they_are_the_historys_window() -> None:
    """The desk reads the history's deque for the history's current window only: a window
    handed out before a candle arrived, or a list, is read as given."""
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    desk = desk_with(history)
    candles = bursty_candles(5, 0)
    for candle in candles[:3]:
        history.append(candle)
    stale = history.closed()
    assert desk.new_candle(SYMBOL, stale) is True
    assert desk.new_candle(SYMBOL, history.closed()) is False     # the same candle
    history.append(candles[3])
    assert desk.new_candle(SYMBOL, stale) is False, "the stale window's last was asked"
    assert desk.would_ask(SYMBOL, history)
    assert desk.new_candle(SYMBOL, list(history)[:3]) is False    # a list, as given
    assert desk.new_candle(SYMBOL, history.closed()) is True      # the new candle
    history.clear()
    assert desk.new_candle(SYMBOL, history.closed()) is False     # no candles
    assert desk.new_candle(SYMBOL, candles[:4]) is False          # asked already
    assert desk.new_candle(SYMBOL, candles) is True


# --- the trend is read only for a regime that allows the entry -------------------------
@pytest.mark.parametrize("allowed", [True, False])
def test_the_trend_is_read_only_where_the_regime_allows_the_entry(
        monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    """A refusing regime is risk._precheck's first refusal: the plan does not read the
    trend then (and the refusal is the regime's); an allowed one reads it as before."""
    from trader.domain import Side, Signal
    from trader.entry import Account, EntryLimits
    from trader.risk import Skip
    from trader.symbol_rules import SymbolRules

    regime = LOW_FREE if allowed else replace(LOW_FREE, allow_entry=False, reason="quiet")
    trend_reads: list[int] = []
    sized = []
    monkeypatch.setattr(entry_module, "is_trending",
                        lambda candles: trend_reads.append(1) or True)
    monkeypatch.setattr(entry_module, "plan_entry",
                        lambda i: sized.append(i) or Skip("sized"))
    desk = desk_with(CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1))
    monkeypatch.setattr(desk, "regime_adjustment", lambda symbol, candles: regime)
    signal = Signal(side=Side.BUY, confidence=1.0, tp_pct=Decimal("0.01"),
                    sl_pct=Decimal("0.005"), reason="r")
    limits = EntryLimits(leverage=5, max_heat=Decimal("0.06"),
                         max_position_pct=Decimal("0.5"), time_in_trade=timedelta(minutes=40),
                         cooldown=timedelta(minutes=5))
    got = desk.plan(SYMBOL, signal, bursty_candles(120, 0), Decimal(100),
                    Account(Decimal(1000), Decimal(1000), Decimal("0.01"), Decimal(0)),
                    SymbolRules(SYMBOL, tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                                min_qty=Decimal("0.001"), min_notional=Decimal("5")),
                    limits, START)
    assert got == "sized"
    assert sized[0].trending is allowed
    assert trend_reads == ([1] if allowed else [])
