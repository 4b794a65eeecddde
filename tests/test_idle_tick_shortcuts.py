"""The idle tick's shortcuts (issue 13) say "nothing to do" exactly when the general path
would have done nothing: guard expiry before the state's earliest end, the spread and
regime rules skipped where they cannot act, an unmoved funding rate, the telemetry line
with no news; and the symbol's boundary caught in the tick still contains a failure (and
still ends a backtest: fail_fast)."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.log_capture import logged
from tests.test_breakers import TICK, candle_runs, every_rule, falling, new_book
from tests.test_guards import MOMENTS, NOW, guard_states
from trader import breaker_rules
from trader.breakers import Breakers, CandleReading, candles_key
from trader.domain import BookTicker
from trader.exchange.base import ExchangeError
from trader.guard_state import GuardConfig, GuardState
from trader.guards import earliest_end, expire
from trader.market.history import CandleHistory
from trader.strategy.regime import DEFAULT_THRESHOLDS, Regime
from trader.telemetry import HEARTBEAT, Counters

D = Decimal


# --- guard expiry ----------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(guard_states(), MOMENTS)
def test_nothing_expires_before_the_earliest_end_and_something_does_from_it(
        state: GuardState, now: datetime) -> None:
    end = earliest_end(state)
    unchanged = expire(state, now) == (state, [])
    assert unchanged == (end is None or now < end)


@settings(max_examples=100, deadline=None)
@given(st.lists(guard_states(), min_size=1, max_size=4), st.lists(MOMENTS, min_size=1))
def test_the_book_expires_what_the_rule_expires_whoever_set_the_state(
        tmp_path_factory, states: list[GuardState], moments: list[datetime]) -> None:
    book = new_book(tmp_path_factory.mktemp("g"))
    for state, now in zip(states * len(moments), moments, strict=False):
        book.state = state        # as trader/position_journal.py sets it: no `set`
        expected, events = expire(state, now)
        assert book.expire(now) == events
        assert book.state == expected


# --- the spread and regime rules ---------------------------------------------------------
QUOTES = st.tuples(st.sampled_from(["0.1", "0.2", "0.3", "0.5", "2"]),
                   st.sampled_from(["99.9", "99", "100"]))


@settings(max_examples=40, deadline=None)
@given(candle_runs(), st.lists(QUOTES, min_size=1, max_size=160))
def test_the_breakers_with_the_ticks_reading_give_what_every_rule_gives(
        tmp_path_factory, rows, quotes) -> None:
    """The engine's way (the tick's reading, rules skipped where they cannot act, the
    book's expiry) against every rule applied on every tick."""
    book = new_book(tmp_path_factory.mktemp("b"))
    breakers = Breakers(book)
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    expected, spreads = GuardState(), []
    now = datetime(2024, 3, 1, tzinfo=UTC)
    for row, (spread, mid) in zip(rows, quotes * len(rows), strict=False):
        history.append(row)
        now += timedelta(seconds=20)
        quote = BookTicker(SYMBOL, D(mid) - D(spread) / 2, D(mid) + D(spread) / 2)
        reading = breakers.reading(SYMBOL, history)
        breakers.check(SYMBOL, quote, TICK, history, now, reading)
        book.expire(now)
        if spreads:
            expected, _ = breaker_rules.check_spread(expected, SYMBOL, quote.spread_pct,
                                              (quote.ask - quote.bid) / TICK, spreads, now,
                                              book.config)
        spreads = (spreads + [quote.spread_pct])[-100:]
        expected = every_rule(expected, list(history), now, book.config)
        assert book.state == expected


@pytest.mark.parametrize("regime", list(Regime))
def test_only_an_extreme_regime_trips_and_a_stale_reading_is_read_again(tmp_path,
                                                                       regime) -> None:
    book = new_book(tmp_path)
    breakers = Breakers(book)
    history = falling(3, "0")
    reading = CandleReading(candles_key(history), book.config, regime, None)
    assert breakers.check(SYMBOL, None, TICK, history, NOW, reading) == regime.value
    assert ("regime:BTCUSDT" in book.state.breakers) == (regime is Regime.EXTREME)
    stale = CandleReading(object(), book.config, Regime.EXTREME, "crash: made up")
    fresh = new_book(tmp_path, "fresh")
    assert Breakers(fresh).check(SYMBOL, None, TICK, history, NOW, stale) is None
    assert fresh.state.breakers == {}, "a reading of other candles is not used"


# --- funding -------------------------------------------------------------------------------
RATES = st.decimals(min_value=D("-0.01"), max_value=D("0.01"), places=6)


@settings(max_examples=300, deadline=None)
@given(RATES, st.decimals(min_value=D("0"), max_value=D("0.01"), places=6))
def test_an_unmoved_funding_rate_never_trips_the_funding_rule(rate: Decimal,
                                                              jump: Decimal) -> None:
    """Housekeeping skips the rule when the rate equals the one an hour ago (and the
    configured jump is not negative): the rule would change nothing."""
    config = GuardConfig(funding_jump=jump)
    state = GuardState()
    assert breaker_rules.check_funding(state, SYMBOL, rate, rate, NOW, config) == (state, [])


async def test_a_funding_jump_still_trips_after_unmoved_checks(tmp_path) -> None:
    world = await make_world(tmp_path)
    housekeeping = world.engine.housekeeping
    rates = iter([D("0.0001")] * 3 + [D("0.0030")])

    async def rate(symbol: str) -> Decimal:
        return next(rates)

    world.paper.quote = lambda symbol, max_age: None      # no pushed rate: read over REST
    world.paper.funding_rate = rate
    for minutes in range(4):
        world.clock.set(world.clock.now() + timedelta(minutes=5 * (minutes > 0)))
        await housekeeping.check_funding()
    assert f"funding:{SYMBOL}" in world.engine.guard_state.breakers


# --- telemetry -------------------------------------------------------------------------
class EveryTimeCounters(Counters):
    """`log` as it was: every symbol's row compared on every run."""

    def log(self, now: datetime) -> None:
        for symbol, row in sorted(self._by_symbol.items()):
            last = self._logged.get(symbol)
            if last is not None and now - last[0] < HEARTBEAT and last[1] == row:
                continue
            self._logged[symbol] = (now, dict(row))
            logger.info("telemetry symbol={} {}", symbol,
                               " ".join(f"{name}={value}" for name, value in row.items()))


OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from(["BTCUSDT", "ETHUSDT"]),
              st.sampled_from(["", "LOW", "NORMAL", "EXTREME"])),
    st.tuples(st.just("incr"), st.sampled_from(["BTCUSDT", "ETHUSDT"]), st.integers(-1, 2)),
    st.tuples(st.just("log"), st.just(""), st.integers(0, 40))), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPERATIONS)
def test_the_telemetry_line_speaks_when_it_did_before(operations) -> None:
    """Changes, changes undone, new symbols, heartbeats: the same lines as comparing every
    row on every run (minutes may go backwards: a test clock)."""
    start = datetime(2026, 1, 5, tzinfo=UTC)

    def lines_of(counters: Counters) -> list[str]:
        with logged("INFO", "telemetry ") as lines:
            for kind, symbol, value in operations:
                if kind == "set":
                    counters.set(symbol, "regime_state", value)
                elif kind == "incr":
                    counters.incr(symbol, "sl_attached", value)
                else:
                    counters.log(start + timedelta(minutes=5 * value))
        return list(lines)

    assert lines_of(Counters()) == lines_of(EveryTimeCounters())


# --- the symbol's boundary in the tick -------------------------------------------------
async def test_a_backtest_still_ends_on_an_unexpected_error_in_a_symbols_tick(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    world.engine.fail_fast = True

    def broken(symbol: str):
        raise KeyError("orderType")

    world.engine.view.pushed_quote = broken
    with pytest.raises(KeyError):
        await world.step()


async def test_exchange_trouble_in_a_symbols_tick_is_contained_even_in_a_backtest(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    world.engine.fail_fast = True

    def refused(symbol: str):
        raise ExchangeError(-1003, "Too many requests", http_status=429)

    world.engine.view.pushed_quote = refused
    await world.step()
    assert "tick BTCUSDT" in (world.engine.last_error or "")
    assert world.alerts("ERROR") == []
    assert world.engine.guard_state.api_failures == 1


# --- the view and the book without a REST read -------------------------------------------
async def test_the_pushed_view_is_the_view_whenever_it_is_given(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    view = world.engine.view
    assert view.pushed_view(SYMBOL) == await view.view(SYMBOL), "flat, streaming"
    assert view.pushed_book(SYMBOL) == await view.book(SYMBOL)
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert SYMBOL in world.engine.positions
    # the entry's fill was told by its answer before the stream's ACCOUNT_UPDATE: until the
    # next tick has read that, the position is read over REST (OrderTracker.position_behind)
    assert view.pushed_view(SYMBOL) is None
    await world.step()
    pushed = view.pushed_view(SYMBOL)
    assert pushed is not None and pushed.live and pushed == await view.view(SYMBOL)
    world.paper.stream_live = False          # polling: every view reads over REST first
    assert view.pushed_view(SYMBOL) is None
    world.paper.stream_live = True
    world.engine.tracker.invalidate()        # the stream came back: snapshot first
    assert view.pushed_view(SYMBOL) is None
    await view.view(SYMBOL)
    assert view.pushed_view(SYMBOL) is not None
    world.paper.quote = lambda symbol, max_age: None     # no fresh mark pushed
    assert view.pushed_view(SYMBOL) is None and view.pushed_book(SYMBOL) is None


# --- the replay at full speed --------------------------------------------------------------
async def test_a_full_speed_replay_still_lets_other_tasks_run_every_few_batches() -> None:
    """Speed 0 gives the event loop a turn every YIELD_EVERY batches (not every batch):
    another task never waits longer than that, and the batches and the clock are the same."""
    from trader.clock import ManualClock
    from trader.domain import Candle
    from trader.market.replay import YIELD_EVERY, ReplayFeed

    start, step = datetime(2024, 1, 1, tzinfo=UTC), timedelta(minutes=1)
    rows = [Candle(SYMBOL, start + i * step, step, D(100), D(101), D(99), D(100))
            for i in range(5 * YIELD_EVERY)]
    clock = ManualClock(start)
    turns: list[int] = []
    seen: list[int] = []

    async def other_task() -> None:
        while True:
            turns.append(len(seen))
            await asyncio.sleep(0)

    waiting = asyncio.ensure_future(other_task())
    try:
        async for batch in ReplayFeed({SYMBOL: rows}, clock):
            assert clock.now() == batch[0].close_time
            seen.append(len(batch))
    finally:
        waiting.cancel()
    assert len(seen) == len(rows)
    gaps = [later - earlier for earlier, later in zip(turns, turns[1:], strict=False)]
    assert len(turns) >= 5 and max(gaps) <= YIELD_EVERY
