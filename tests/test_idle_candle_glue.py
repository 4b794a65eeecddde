"""The idle candle's glue (issue 13, session 13) does what it did: each shortcut is taken
only where the work it skips could not have changed anything, and the general path still
runs where it could (the candle taken only once the guards allow an entry, the regime's
exact reading where the float ranges do not decide, the reserved margin summed with a
resting order, the waiting event set by every publish, the curve's equity of each new
balance, the run's tally of closes, the funding rule under a negative jump)."""

import asyncio
from decimal import Decimal as D

import pytest
from hypothesis import given, settings

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.test_breakers import candle_runs, new_book
from tests.test_idle_path_shortcuts import BTC, FIVE_MINUTES, T0
from trader.backtest_notes import CLOSE_SAMPLE, RunTally
from trader.breakers import Breakers, regime_of
from trader.domain import Candle, OrderRequest, OrderRole, OrderType, Side
from trader.exchange.base import Quote
from trader.exchange.sim import SimConfig, Simulator
from trader.guard_state import GuardConfig
from trader.market.history import CandleHistory
from trader.strategy.regime import DEFAULT_THRESHOLDS, read_regime


# --- the strategy asked once per candle, once the guards allow ---------------------------
async def test_the_strategy_is_asked_once_per_candle_and_only_when_an_entry_is_allowed(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    strategy, engine = world.strategy, world.engine
    asked = strategy.asked
    await world.step()
    assert strategy.asked == asked + 1, "a new candle: asked"
    await engine.tick()
    assert strategy.asked == asked + 1, "the same candle again: not asked"
    engine.guard_state = engine.guard_state.__class__(paused=True)
    await world.step()
    assert strategy.asked == asked + 1, "paused: the candle is not taken"
    engine.guard_state = engine.guard_state.__class__()
    await engine.tick()
    assert strategy.asked == asked + 2, "resumed on the same candle: it is asked now"
    await engine.tick()
    assert strategy.asked == asked + 2
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert SYMBOL in engine.positions, "a signal is still entered"


# --- the regime: the float reading, else the exact one -------------------------------------
@settings(max_examples=60, deadline=None)
@given(candle_runs())
def test_the_readings_regime_is_the_exact_regime(tmp_path_factory, rows: list[Candle]) -> None:
    """Near a threshold and before enough candles the float ranges do not decide: the
    reading is the exact one there too."""
    breakers = Breakers(new_book(tmp_path_factory.mktemp("r")))
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    for row in rows:
        history.append(row)
        exact = read_regime(list(history))
        assert breakers.reading(SYMBOL, history).regime == (exact.regime if exact else None)
        assert breakers.reading(SYMBOL, history).regime == regime_of(history)


def test_where_the_float_ranges_do_not_decide_the_reading_is_the_exact_one(
        tmp_path, monkeypatch) -> None:
    """The float reading undecided (as within FLOAT_MARGIN of a threshold): the exact
    reading of the candles, not None."""
    import trader.breakers as breakers_module
    monkeypatch.setattr(breakers_module, "classify_ranges", lambda ranges: None)
    breakers = Breakers(new_book(tmp_path))
    history = CandleHistory(1000, 5, DEFAULT_THRESHOLDS.lookback - 1)
    price = D(100)
    for n in range(DEFAULT_THRESHOLDS.lookback + 5):
        move = D(3) if n % 2 else D(-3)
        history.append(Candle(SYMBOL, T0 + n * FIVE_MINUTES, FIVE_MINUTES, price,
                              price + abs(move) + 1, price - abs(move) - 1, price + move))
        price += move
    exact = read_regime(list(history))
    assert exact is not None and exact.regime is not None
    assert breakers.reading(SYMBOL, history).regime == exact.regime


# --- the simulator's vouching: the reserved margin with a resting order --------------------
def test_a_resting_limit_order_is_summed_into_the_margin_a_flat_balance_is_checked_with() -> None:
    sim = Simulator(SimConfig(balance=D("2000")))
    sim.set_price(BTC, D("70000"), T0)
    held = sim.balance()
    assert sim.balance_current(held), "flat, no order: ZERO reserved, not summed"
    sim.place(OrderRequest(symbol=BTC, side=Side.BUY, type=OrderType.LIMIT,
                           quantity=D("0.01"), price=D("60000"), client_id="rest-1",
                           role=OrderRole.ENTRY), T0)
    assert not sim.balance_current(held), "a resting order holds margin: no longer current"
    assert sim.balance().available < held.available
    sim.cancel(BTC, "rest-1", T0)
    held = sim.balance()
    assert sim.balance_current(held), "no live order again: ZERO reserved"


# --- the paper exchange's waiting event ----------------------------------------------------
async def test_the_paper_exchanges_waiting_event_follows_its_events(tmp_path) -> None:
    world = await make_world(tmp_path)
    paper = world.paper
    assert paper.drain_events() == []
    assert not await paper.wait_for_event(0.01), "nothing published: no wake-up"
    paper.sim.set_price(SYMBOL, D("100000"), world.clock.now())
    paper.publish(paper.sim.place(OrderRequest(
        symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET, quantity=D("0.01"),
        client_id="by-hand-1", role=OrderRole.ENTRY), world.clock.now())[1])
    assert await asyncio.wait_for(paper.wait_for_event(5), 1)
    assert paper.drain_events() != []
    assert paper.drain_events() == []
    assert not await paper.wait_for_event(0.01), "drained: the event is clear again"


# --- the view: a pushed mark of 0 is no view -----------------------------------------------
async def test_a_pushed_quote_with_no_mark_gives_no_pushed_view(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up(3)
    view = world.engine.view
    now = world.clock.now()
    assert view.pushed_view(SYMBOL) is not None
    world.paper.quote = lambda symbol, max_age: Quote(SYMBOL, D(1), D(2), D(0), None, now)
    assert view.pushed_view(SYMBOL) is None
    world.paper.quote = lambda symbol, max_age: Quote(SYMBOL, D(1), D(2), D("-1"), None, now)
    assert view.pushed_view(SYMBOL) is None


# --- the funding rule under a negative jump ------------------------------------------------
async def test_an_unmoved_rate_still_trips_a_negative_funding_jump(tmp_path) -> None:
    """A negative `funding_jump` trips on any rate, moved or not: the unmoved shortcut is
    only for a jump of 0 or more."""
    world = await make_world(tmp_path)
    await world.warm_up(3)
    housekeeping = world.engine.housekeeping
    assert f"funding:{SYMBOL}" not in world.engine.guard_state.breakers
    housekeeping.guards.config = GuardConfig(funding_jump=D("-0.001"))
    assert housekeeping.check_pushed_funding() is None
    assert f"funding:{SYMBOL}" in world.engine.guard_state.breakers


# --- the backtest loop: the tally of closes, the curve's equity ----------------------------
def test_the_run_tally_keeps_the_closes_and_count_it_kept_before() -> None:
    """Every close until CLOSE_SAMPLE are kept, then every other one, then every 4th...:
    as the tally's own `add` kept them (the loop below, as it was)."""
    tally = RunTally()
    closes, stride, count = [], 1, 0
    for n in range(3 * CLOSE_SAMPLE + 7):
        close = D(n)
        tally.add(Candle(SYMBOL, T0 + n * FIVE_MINUTES, FIVE_MINUTES, close, close, close,
                         close))
        if count % stride == 0:
            closes.append(close)
            if len(closes) >= CLOSE_SAMPLE:
                closes, stride = closes[::2], stride * 2
        count += 1
        kept = tally.symbols[SYMBOL]
        assert (kept.candles, kept.closes, kept.stride) == (count, closes, stride)
    assert stride == 4


@pytest.mark.parametrize("signal", [False, True])
async def test_the_curve_takes_each_new_balances_equity(tmp_path, signal: bool,
                                                        monkeypatch) -> None:
    """Each curve point is the equity of the balance the engine holds after that candle:
    a new balance (a trade, funding) gives its own, an unchanged one the same."""
    from trader import backtest
    from trader.config import load_settings

    held: list[D] = []

    class Watched(backtest.Engine):
        def tick(self):  # type: ignore[no-untyped-def]
            ticked = super().tick()

            async def then_note() -> None:
                await ticked
                balance = self.balance_keeper.balance
                if balance is not None:
                    held.append(balance.wallet + balance.unrealized_pnl)
            return then_note()

    monkeypatch.setattr(backtest, "Engine", Watched)
    rows, price = [], D("100000")
    for n in range(140):
        price += D(400) if 60 <= n < 70 else D(-400) if 90 <= n < 100 else D(0)
        rows.append(Candle(SYMBOL, T0 + n * FIVE_MINUTES, FIVE_MINUTES, price, price + 50,
                           price - 50, price, D(10)))
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS=SYMBOL, TRADEBOT_EXCHANGE="paper")
    report = await backtest.run_backtest(settings, {SYMBOL: rows}, tmp_path / "out",
                                         progress=False,
                                         strategy=EveryFiftieth() if signal else Never())
    assert [point.equity for point in report.curve] == held
    if signal:
        assert report.trades and len(set(held)) > 1, "the trades moved the equity"
    else:
        assert set(held) == {settings.paper_balance}


class Never:
    name = "never"
    warmup = 30

    def signal(self, closed):  # type: ignore[no-untyped-def]
        return None


class EveryFiftieth:
    """A long on candle 50 and candle 100 (with a stop and a target close by)."""
    name = "every-fiftieth"
    warmup = 30

    def signal(self, closed):  # type: ignore[no-untyped-def]
        return long_signal("0.003", "0.003") if len(closed) % 50 == 0 else None
