"""The shortcuts of a trade's compute give what the plain definitions give, value for value:
the simulator's fills since a moment (bisected while its log is in time order), the
indicators reused for the very same input objects, the default strategy's early answers."""

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from decimal import localcontext
from pathlib import Path
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, make_world
from trader.domain import Balance, Candle, Fill, Side, Signal
from trader.exchange.sim import SimConfig, Simulator
from trader.market import indicators
from trader.market.indicators import atr, ema, highest_high, lowest_low, true_ranges, wilder_average
from trader.risk import risk_fraction
from trader.strategy.default import DefaultStrategy
from trader.strategy.regime import is_trending
from trader.trade_store import TradeStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def fill(number: int, symbol: str, minutes: int) -> Fill:
    return Fill(trade_id=str(number), symbol=symbol, client_id=f"c{number}", side=Side.BUY,
                quantity=D(1), price=D(100), fee=D(0), realized_pnl=D(0),
                time=T0 + timedelta(minutes=minutes))


def plain_fills(log: list[Fill], symbol: str, since: datetime | None) -> list[Fill]:
    """The definition: every kept fill of the symbol at or after `since`."""
    return [f for f in log if f.symbol == symbol and (since is None or f.time >= since)]


@settings(max_examples=200, deadline=None)
@given(kept=st.integers(1, 6),
       steps=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 20)), max_size=25),
       loaded=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 20)), max_size=6),
       since=st.one_of(st.none(), st.integers(-1, 21)))
def test_fills_since_a_moment_are_the_plain_filter(kept: int, steps: list[tuple[str, int]],
                                                   loaded: list[tuple[str, int]],
                                                   since: int | None) -> None:
    """Times in and out of order, a log loaded whole (a restart), fills dropped from a full
    log: the answer is always the plain filter's, in the same order."""
    sim = Simulator(SimConfig(max_fills_kept=kept))
    sim.fill_log = [fill(100 + i, symbol, minute) for i, (symbol, minute) in enumerate(loaded)]
    moment = None if since is None else T0 + timedelta(minutes=since)
    for number, (symbol, minute) in enumerate(steps):
        sim._keep_fill(fill(number, symbol, minute))
        for name in SYMBOLS:
            assert sim.fills(name, moment) == plain_fills(sim.fill_log, name, moment)


def test_fills_in_time_order_are_bisected_not_scanned() -> None:
    """The fast path is taken when the log is in time order (a backtest's, always)."""
    sim = Simulator(SimConfig(max_fills_kept=10))
    for minute in range(20):
        sim._keep_fill(fill(minute, SYMBOLS[minute % 2], minute))
    assert sim._disorder == 0
    assert [f.trade_id for f in sim.fills(SYMBOLS[0], T0 + timedelta(minutes=15))] \
        == ["16", "18"]
    sim._keep_fill(fill(99, SYMBOLS[0], 3))            # a time that went back
    assert sim._disorder == 1
    assert [f.trade_id for f in sim.fills(SYMBOLS[0], T0 + timedelta(minutes=15))] \
        == ["16", "18"]


# --- the default strategy ---------------------------------------------------------------

def reference_signal(strategy: DefaultStrategy, closed: list[Candle]) -> Signal | None:
    """The rule as first written: every indicator over the window, then the tests."""
    if len(closed) < strategy.window:
        return None
    window = closed[-strategy.window:]
    last, before = window[-1], window[-2]
    channel = window[-strategy.channel - 1:-1]
    channel_before = window[-strategy.channel - 2:-2]
    breaks_up = (last.close > highest_high(channel)
                 and before.close <= highest_high(channel_before))
    breaks_down = (last.close < lowest_low(channel)
                   and before.close >= lowest_low(channel_before))
    if not (breaks_up or breaks_down):
        return None
    average_range = atr(window, strategy.atr_period)
    closes = [candle.close for candle in window]
    fast, slow = ema(closes, strategy.ema_fast), ema(closes, strategy.ema_slow)
    if average_range is None or fast is None or slow is None or average_range <= 0:
        return None
    body = last.close - last.open
    if breaks_up and fast > slow and body >= strategy.min_body_atr * average_range:
        return strategy._signal(Side.BUY, last, body, average_range)
    if breaks_down and fast < slow and -body >= strategy.min_body_atr * average_range:
        return strategy._signal(Side.SELL, last, -body, average_range)
    return None


def walk(moves: list[tuple[int, int, int, int]]) -> list[Candle]:
    """Candles from (open step, close step, wick up, wick down) in ticks of 0.1 from 100."""
    candles, price = [], D(100)
    for number, (gap, move, up, down) in enumerate(moves):
        open_ = price + D(gap) / 10
        close = open_ + D(move) / 10
        candles.append(Candle("BTCUSDT", T0 + timedelta(minutes=5 * number),
                              timedelta(minutes=5), open_, max(open_, close) + D(up) / 10,
                              min(open_, close) - D(down) / 10, close, D(1)))
        price = close
    return candles


MOVES = st.lists(st.tuples(st.integers(-2, 2), st.integers(-20, 20), st.integers(0, 6),
                           st.integers(0, 6)), min_size=10, max_size=40)


@settings(max_examples=300, deadline=None)
@given(moves=MOVES, channel=st.integers(1, 5), fast=st.integers(1, 6), slow=st.integers(1, 8),
       period=st.integers(1, 6), body=st.sampled_from([D(0), D("0.3"), D("0.8"), D(2)]))
def test_the_default_strategy_answers_as_the_rule_was_first_written(
        moves: list[tuple[int, int, int, int]], channel: int, fast: int, slow: int,
        period: int, body: D) -> None:
    """Every candle of random walks, with small channels so that breakouts are common: the
    same signal (side, stop, target, confidence, reason) or the same None."""
    strategy = DefaultStrategy(channel=channel, ema_fast=fast, ema_slow=slow, atr_period=period,
                               min_body_atr=body, window=10)
    candles = walk(moves)
    for end in range(1, len(candles) + 1):
        assert strategy.signal(candles[:end]) == reference_signal(strategy, candles[:end])


# --- indicators reused for the very same inputs ------------------------------------------

def plain_atr(candles: list[Candle], period: int) -> D | None:
    return wilder_average(indicators._true_ranges(candles)[1:], period)


@settings(max_examples=200, deadline=None)
@given(moves=MOVES, asks=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 40),
                                            st.integers(1, 6), st.booleans()), max_size=12))
def test_indicators_answer_as_computed_afresh(moves: list[tuple[int, int, int, int]],
                                              asks: list[tuple[int, int, int, bool]]) -> None:
    """Windows that end together or not, longer and shorter (the regime's after the
    strategy's), asked again, at another Decimal precision: every answer is the one
    computed afresh, digit for digit (Decimal reprs)."""
    candles = walk(moves)
    for start, size, period, coarse in asks:
        window = candles[start:start + size]
        closes = [candle.close for candle in window]
        with localcontext() as context:
            if coarse:
                context.prec = 4
            assert repr(true_ranges(window)) == repr(indicators._true_ranges(window))
            assert repr(atr(window, period)) == repr(plain_atr(window, period))
            expected = indicators._ema(closes, period) if len(closes) >= period else None
            assert repr(ema(closes, period)) == repr(expected)


def test_an_answer_is_not_given_for_a_list_changed_since() -> None:
    """The caller's list may change after the call: the answer kept is for the objects it
    held then, and the ranges handed out are the caller's to change."""
    candles = walk([(0, move, 1, 1) for move in (5, -3, 8, -2, 4, 1, -6, 2)])
    closes = [candle.close for candle in candles]
    first = ema(closes, 3)
    closes[-1] = closes[-1] + 10
    assert ema(closes, 3) == indicators._ema(closes, 3) != first
    ranges = true_ranges(candles)
    ranges[1] = D(999)
    assert true_ranges(candles) == indicators._true_ranges(candles)
    window = list(candles)
    before = atr(window, 3)
    window[-1] = walk([(0, 50, 9, 9)])[0]
    assert atr(window, 3) == plain_atr(window, 3) != before


def test_the_planning_reuses_the_signals_indicators() -> None:
    """The trend test and the regime's ranges of an entry's planning (trader/entry.py) are
    the strategy's, on the same candles: not computed twice."""
    candles = walk([(0, (7 * n) % 11 - 5, n % 3, n % 4) for n in range(130)])
    window = candles[-120:]
    atr(window, 14)
    ema([c.close for c in window], 20)
    ema([c.close for c in window], 50)
    with patch.object(indicators, "_true_ranges", side_effect=AssertionError("again")), \
            patch.object(indicators, "_ema", side_effect=AssertionError("again")):
        is_trending(candles)
        true_ranges(candles[-100:])


# --- the equity-linked risk fraction ------------------------------------------------------

def reference_risk(saved: dict[str, str], equity: D, base: D) -> dict[str, str]:
    """The risk state as first written: parsed from the saved text on every change."""
    peak = max(D(saved.get("peak", "0")), equity)
    current = D(saved.get("fraction", str(base)))
    fraction = risk_fraction(equity, peak, current, base=base)
    return {"peak": str(peak), "fraction": str(fraction)}


EQUITIES = ["10000", "10100", "10100.00", "9600", "9500", "9594.99", "10100.0", "10200",
            "9000", "9000", "9700", "11000", "10449.99", "10450", "10450.000"]


async def test_the_risk_state_follows_the_equity_as_first_written(tmp_path: Path) -> None:
    """New highs, drawdowns past 5 % and back, the same value in other digits: the saved
    state (its very text), the writes and the fraction reported are the ones of parsing
    the saved text anew on every change."""
    world = await make_world(tmp_path)
    risk, base = world.engine.risk, world.settings.risk_base
    expected: dict[str, str] = {}
    writes: list[dict[str, str]] = []
    put_later = risk.store.put_later

    def counted(key: str, value: Callable[[], dict[str, str]], at: datetime) -> None:
        if key == "risk":
            writes.append(dict(value()))
        put_later(key, value, at)

    risk.store.put_later = counted   # type: ignore[method-assign]
    expected_writes = []
    for text in EQUITIES:
        fresh = reference_risk(expected, D(text), base)
        if fresh != expected:
            expected, expected_writes = fresh, [*expected_writes, fresh]
        risk.update_fraction(Balance(D(text), D(0), D(text)), [SYMBOL])
        assert risk.store.get("risk") == expected and writes == expected_writes
        assert risk.counters.get(SYMBOL, "risk_fraction_active") == expected["fraction"]
    # A symbol asked for the first time gets the gauge even when the fraction is the same
    # (the gauge is set again only for a new fraction or other symbols).
    risk.update_fraction(Balance(D("10451"), D(0), D("10451")), [SYMBOL, "ETHUSDT"])
    assert risk.counters.get("ETHUSDT", "risk_fraction_active") == expected["fraction"]


async def test_new_peaks_in_one_replay_batch_write_the_risk_state_once(
        tmp_path: Path) -> None:
    """A rising equity makes a new peak nearly every in-position candle: inside replay
    batches the risk state is held and written once, as last saved, when the batches are
    committed (each new peak was one statement at once); a restart reads the last peak."""
    world = await make_world(tmp_path)
    risk, store = world.engine.risk, world.store
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    def risk_writes() -> list[str]:
        return [s for s in statements if "INTO [kv]" in s and "('risk'" in s]
    for equity in ("10100", "10200", "10300"):
        with store.batch("replay candle"):
            risk.update_fraction(Balance(D(equity), D(0), D(equity)), [SYMBOL])
    assert risk_writes() == [], "written before the batches' commit"
    store.close()                      # commits the batches: the held rows first
    assert len(risk_writes()) == 1 and "10300" in risk_writes()[0], statements
    store = TradeStore.open(world.db_path)      # a restart
    assert store.get("risk") == {"peak": "10300", "fraction": "0.025"}
    store.close()


def test_a_window_a_few_candles_on_computes_only_its_new_ranges() -> None:
    """The strategy's next breakout window shares all but its newest candles with the last
    one: only those are computed (each against the close before it)."""
    candles = walk([(0, (5 * n) % 9 - 4, n % 3, n % 2) for n in range(140)])
    true_ranges(candles[-130:-10])
    computed: list[int] = []
    fresh = indicators._true_ranges

    def counted(window: list[Candle]) -> list[D]:
        computed.append(len(window))
        return fresh(window)

    with patch.object(indicators, "_true_ranges", side_effect=counted):
        ranges = true_ranges(candles[-120:])
    assert computed == [11] and repr(ranges) == repr(fresh(candles[-120:]))


def test_the_ranges_of_any_sequence_of_candles_are_reused_too() -> None:
    """A deque (the engine's candle history) is a sequence like a list: no slicing."""
    candles = walk([(0, (3 * n) % 7 - 3, n % 2, n % 3) for n in range(30)])
    true_ranges(candles[:20])
    assert repr(true_ranges(deque(candles[5:]))) == repr(indicators._true_ranges(candles[5:]))
