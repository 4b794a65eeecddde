"""The per-symbol breakers read what the closed candles give (the regime, the crash move) once
per candle (trader/breakers.py): every tick gets what the pure rules of trader/breaker_rules.py
give on the whole closed history, and a new candle, a backfill or a new configuration is
read afresh."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader import breaker_rules, guards
from trader.alerter import Alerter
from trader.breakers import GAUGES, Breakers, CandleReading, no_crash_possible
from trader.clock import ManualClock
from trader.domain import BookTicker, Candle
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig, GuardState
from trader.market.history import CandleHistory
from trader.strategy.regime import DEFAULT_THRESHOLDS, Regime, read_regime
from trader.telemetry import Counters
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
START = datetime(2024, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
TICK = Decimal("0.1")


def candle(index: int, price: Decimal, move: Decimal, spread: Decimal) -> Candle:
    close = max(price + move, Decimal("1"))
    return Candle(SYMBOL, START + MINUTE * index, MINUTE, price, max(price, close) + spread,
                  max(min(price, close) - spread, Decimal("0.5")), close)


@st.composite
def candle_runs(draw: st.DrawFn) -> list[Candle]:
    """Candles around 100 with calm stretches and violent ones (crashes and EXTREME)."""
    count = draw(st.integers(1, 160))
    moves = draw(st.lists(st.sampled_from(["0", "0.1", "-0.2", "0.3", "-4", "5", "-1"]),
                          min_size=count, max_size=count))
    spreads = draw(st.lists(st.sampled_from(["0", "0.1", "0.5", "3"]), min_size=count,
                            max_size=count))
    rows, price = [], Decimal(100)
    for index, (move, spread) in enumerate(zip(moves, spreads, strict=True)):
        rows.append(candle(index, price, Decimal(move), Decimal(spread)))
        price = rows[-1].close
    return rows


def falling(count: int, step: str) -> list[Candle]:
    """`count` candles from 100, each closing `step` lower than it opened."""
    rows, price = [], Decimal(100)
    for index in range(count):
        rows.append(candle(index, price, -Decimal(step), Decimal(0)))
        price = rows[-1].close
    return rows


def new_book(tmp_path, name: str = "t") -> GuardBook:
    store = TradeStore.open(tmp_path / f"{name}.db")
    clock = ManualClock(START)
    return GuardBook(store, Alerter(store, clock), clock, Counters(), GuardConfig())


def every_rule(state: GuardState, closed: list[Candle], now: datetime,
               cfg: GuardConfig) -> GuardState:
    """The breakers' rules on the whole closed history, as the tick applied them before."""
    state, _ = breaker_rules.check_crash(state, SYMBOL, closed, now, cfg)
    reading = read_regime(closed)
    if reading is not None:
        state, _ = breaker_rules.check_regime(state, SYMBOL, reading.regime, now, cfg)
    return guards.expire(state, now)[0]


@settings(max_examples=40, deadline=None)
@given(candle_runs(), st.integers(1, 3))
def test_breakers_read_once_per_candle_give_what_the_rules_give_every_tick(
        tmp_path_factory, rows: list[Candle], ticks_per_candle: int) -> None:
    book = new_book(tmp_path_factory.mktemp("b"))
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    expected = GuardState()
    now = START
    for row in rows:
        history.append(row)
        for _ in range(ticks_per_candle):   # live: several ticks between two candles
            now += timedelta(seconds=20)
            regime = breakers.check(SYMBOL, None, TICK, history, now)
            book.apply(guards.expire, now)
            expected = every_rule(expected, list(history), now, book.config)
            reading = read_regime(list(history))
            assert regime == (reading.regime.value if reading else None)
            assert book.state == expected


def test_a_new_candle_is_read_afresh(tmp_path) -> None:
    """A calm history, then the candle that completes a crash: the next tick trips it."""
    book = new_book(tmp_path)
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, 99)
    for index in range(10):
        history.append(candle(index, Decimal(100), Decimal(0), Decimal("0.1")))
    breakers.check(SYMBOL, None, TICK, history, START)
    assert book.state.breakers == {}
    history.append(candle(10, Decimal(100), Decimal(-5), Decimal(0)))
    breakers.check(SYMBOL, None, TICK, history, START + MINUTE)
    assert "crash:BTCUSDT" in book.state.breakers


def test_a_backfill_ending_on_the_same_candle_is_read_afresh(tmp_path) -> None:
    """The feed watchdog's backfill rebuilds the history (clear + extend): the last candle
    may be the same while the ones before it changed, so the reading follows the history's
    version, not the last candle's time."""
    book = new_book(tmp_path)
    breakers = Breakers(book)
    calm = [candle(index, Decimal(100), Decimal(0), Decimal("0.1")) for index in range(8)]
    history = CandleHistory(1000, 5, 99, calm)
    breakers.check(SYMBOL, None, TICK, history, START)
    assert book.state.breakers == {}
    violent = calm[:5] + [candle(5, Decimal(100), Decimal(-5), Decimal(0))] + calm[6:]
    history.clear()
    history.extend(violent)
    assert history[-1] == calm[-1]
    breakers.check(SYMBOL, None, TICK, history, START + MINUTE)
    assert "crash:BTCUSDT" in book.state.breakers


def test_a_new_configuration_is_read_afresh(tmp_path) -> None:
    book = new_book(tmp_path)
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, 99, falling(6, "0.5"))
    breakers.check(SYMBOL, None, TICK, history, START)
    assert book.state.breakers == {}                  # a 2.6 % move: under the 3 %
    book.config = replace(book.config, crash_move=Decimal("0.02"))
    breakers.check(SYMBOL, None, TICK, history, START + MINUTE)
    assert "crash:BTCUSDT" in book.state.breakers


def test_a_crash_keeps_its_breaker_tripped_every_tick_it_lasts(tmp_path) -> None:
    """The reading is kept; the trip is applied at each tick's time (extending it)."""
    book = new_book(tmp_path)
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, 99, falling(6, "1"))
    breakers.check(SYMBOL, None, TICK, history, START)
    first = book.state.breakers["crash:BTCUSDT"]
    breakers.check(SYMBOL, None, TICK, history, START + 3 * MINUTE)
    assert book.state.breakers["crash:BTCUSDT"] == first + 3 * MINUTE


def test_the_spread_breaker_still_reads_every_quote(tmp_path) -> None:
    book = new_book(tmp_path)
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, 99, [candle(0, Decimal(100), Decimal(0), Decimal(0))])
    for second in range(5):
        breakers.check(SYMBOL, BookTicker(SYMBOL, Decimal("99.9"), Decimal("100")), TICK,
                       history, START + timedelta(seconds=second))
    breakers.check(SYMBOL, BookTicker(SYMBOL, Decimal("99"), Decimal("100")), TICK, history,
                   START + timedelta(seconds=6))
    assert "spread:BTCUSDT" in book.state.breakers


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.decimals(min_value=-3, max_value=3, places=3),
                          st.decimals(min_value=0, max_value=1, places=3)),
                min_size=1, max_size=40),
       st.sampled_from([Decimal("0.03"), Decimal("0.01"), Decimal("0.001"), Decimal(0)]))
def test_the_float_test_rules_out_no_crash_the_exact_reading_finds(moves, threshold) -> None:
    """`no_crash_possible` (every candle, in float) is only a shortcut: whenever it says no
    crash, the exact reading of the last candles finds none either, the moves around the
    threshold (3 % of ~100) included."""
    config = replace(GuardConfig(), crash_move=threshold)
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    price = Decimal(100)
    for index, (move, spread) in enumerate(moves):
        history.append(candle(index, price, move, spread))
        price = history[-1].close
        if no_crash_possible(history, config):
            assert breaker_rules.crash_move(history.tail(config.crash_candles), config) is None


def test_a_calm_market_needs_no_exact_crash_reading() -> None:
    """Candles moving 0.1 % each: the float test tells there is no crash (the exact reading
    is skipped) once the history holds a true range for each of the last candles."""
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    price = Decimal(100)
    for index in range(7):
        history.append(candle(index, price, Decimal("0.1"), Decimal(0)))
        price = history[-1].close
    assert no_crash_possible(history, GuardConfig())
    assert not no_crash_possible(history, replace(GuardConfig(), crash_move=Decimal("0.001")))


def test_the_regime_gauge_is_the_regimes_value_and_empty_before_enough_candles() -> None:
    """The `regime_state` gauge each reading carries (looked up, not read off the enum's
    property every candle): every regime's value, "" with no regime yet."""
    for regime in [*Regime, None]:
        reading = CandleReading(1, GuardConfig(), regime, None)
        assert reading.gauge == (regime.value if regime is not None else "")
        assert type(reading.gauge) is str
    assert set(GAUGES) == {*Regime, None}


def test_a_book_read_again_trips_as_its_spread_says_and_a_new_tick_size_is_read_afresh(
        tmp_path) -> None:
    """The spread of the very same book object is made once (the paper exchange hands out
    one book per price); the same book at another tick size is measured again: 1 tick wide
    at 1, 10 ticks at 0.1 (over the floor: the wide spread trips)."""
    book = new_book(tmp_path)
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, 99, [candle(0, Decimal(100), Decimal(0), Decimal(0))])
    narrow = BookTicker(SYMBOL, Decimal("99.99"), Decimal("100"))
    for second in range(5):
        breakers.check(SYMBOL, narrow, TICK, history, START + timedelta(seconds=second))
    wide = BookTicker(SYMBOL, Decimal("99"), Decimal("100"))
    breakers.check(SYMBOL, wide, Decimal(1), history, START + timedelta(seconds=6))
    assert "spread:BTCUSDT" not in book.state.breakers      # 1 tick of 1: under the floor
    breakers.check(SYMBOL, wide, TICK, history, START + timedelta(seconds=7))
    assert "spread:BTCUSDT" in book.state.breakers          # 10 ticks of 0.1
