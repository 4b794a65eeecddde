"""Paper realism: order latency on by default in `tradebot run --replay` (seeded, switched
off by TRADEBOT_PAPER_LATENCY_MS=0, no wall time on an instant clock), and a simulator that
refuses candles with a price <= 0 and never quotes a negative or crossed book."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import Store
from tests.engine_world import SYMBOL, long_signal, make_world
from tests.fakes.binance_harness import captured_logs
from trader.clock import ManualClock
from trader.config import load_settings
from trader.domain import Candle, OrderRequest, OrderRole, OrderType, Side
from trader.engine_setup import make_exchange
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig, Simulator
from trader.exchange.sim_path import book_at
from trader.position import PositionState

T0 = datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
BTC = "BTCUSDT"


def candle(o: str, h: str, low: str, c: str, at: datetime = T0) -> Candle:
    return Candle(BTC, at, timedelta(minutes=15), D(o), D(h), D(low), D(c))


def market_buy(n: int) -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.MARKET, D("0.002"), f"tb-BTCUSDT-k-en{n}",
                        OrderRole.ENTRY)


async def replay_paper(tmp_path: Path, name: str, **env: str) -> tuple[PaperExchange,
                                                                      ManualClock]:
    """The paper exchange `tradebot run --replay` builds (trader/engine_setup.py), on a replay clock."""
    settings = load_settings(_env_file=None, TRADEBOT_EXCHANGE="paper", **env)
    clock = ManualClock(T0)
    paper = make_exchange(settings, Store.open(tmp_path / f"{name}.db"), clock)
    assert isinstance(paper, PaperExchange)
    await paper.start([BTC], leverage=5)
    paper.feed_candle(candle("70000", "70100", "69900", "70000", at=T0 - timedelta(minutes=15)))
    return paper, clock


async def order_delays(paper: PaperExchange, clock: ManualClock, count: int) -> list[float]:
    delays = []
    for n in range(1, count + 1):
        before = clock.now()
        await paper.place(market_buy(n))
        delays.append((clock.now() - before).total_seconds())
    return delays


# --- latency ------------------------------------------------------------------------------
async def test_replay_orders_take_50_to_500_ms_by_default_the_same_for_the_same_seed(tmp_path):
    paper, clock = await replay_paper(tmp_path, "a")
    delays = await order_delays(paper, clock, 20)
    assert all(0.05 <= d <= 0.5 for d in delays), delays
    assert len(set(delays)) > 10, "drawn per order, not one fixed delay"

    again, again_clock = await replay_paper(tmp_path, "b")
    assert await order_delays(again, again_clock, 20) == delays
    other, other_clock = await replay_paper(tmp_path, "c", TRADEBOT_SEED="8")
    assert await order_delays(other, other_clock, 20) != delays


async def test_latency_follows_the_setting_and_zero_switches_it_off(tmp_path):
    paper, clock = await replay_paper(tmp_path, "a", TRADEBOT_PAPER_LATENCY_MS="200")
    assert await order_delays(paper, clock, 3) == [0.2, 0.2, 0.2]
    off, off_clock = await replay_paper(tmp_path, "b", TRADEBOT_PAPER_LATENCY_MS="0")
    assert await order_delays(off, off_clock, 3) == [0.0, 0.0, 0.0]


async def test_latency_on_an_instant_clock_moves_engine_time_but_costs_no_wall_time(tmp_path):
    """A backtest's ManualClock (speed 0): were latency on there, it would cost nothing."""
    clock = ManualClock(T0, speed=0)
    paper = PaperExchange(Store.open(tmp_path / "p.db"), clock,
                          SimConfig(latency_ms=(400, 500)), latency=True, persist_every=0,
                          save_state=False)
    await paper.start([BTC], leverage=5)
    paper.feed_candle(candle("70000", "70100", "69900", "70000", at=T0 - timedelta(minutes=15)))
    started = time.perf_counter()
    delays = await order_delays(paper, clock, 100)
    assert sum(delays) >= 40.0                       # 100 orders x >= 400 ms of engine time
    assert time.perf_counter() - started < 5.0       # ... in far less wall time


# --- candles with a price <= 0 ------------------------------------------------------------
BAD_CANDLES = [("open", "0"), ("high", "0"), ("low", "0"), ("close", "0"), ("low", "-1"),
               ("close", "-1"), ("open", "-0.0001")]


def with_price(field: str, value: str) -> Candle:
    prices = {"open": "70000", "high": "70100", "low": "69900", "close": "70050", field: value}
    return candle(prices["open"], prices["high"], prices["low"], prices["close"])


@pytest.mark.parametrize(("field", "value"), BAD_CANDLES)
async def test_a_candle_with_a_price_at_or_below_zero_is_skipped_with_a_warning(
        tmp_path, field, value):
    clock = ManualClock(T0)
    paper = PaperExchange(Store.open(tmp_path / "p.db"), clock, SimConfig())
    await paper.start([BTC], leverage=5)
    paper.feed_candle(candle("70000", "70100", "69900", "70000", at=T0 - timedelta(minutes=15)))
    await paper.place(market_buy(1))
    await paper.place(OrderRequest(BTC, Side.SELL, OrderType.STOP_MARKET, D(0),
                                   "tb-BTCUSDT-k-sl1", OrderRole.STOP_LOSS,
                                   trigger_price=D("69000"), close_position=True))
    with captured_logs("WARNING") as logs:
        events = paper.feed_candle(with_price(field, value))
    assert events == []
    assert any("candle refused" in line and BTC in line and "2024-01-01T07:00:00" in line
               and f"{field}={value}" in line for line in logs), logs
    assert paper.sim.mark_price(BTC) == D("70000"), "the market did not move"
    assert [o.client_id for o in await paper.open_orders(BTC)] == ["tb-BTCUSDT-k-sl1"]
    book = await paper.book_ticker(BTC)
    assert 0 < book.bid < book.ask
    assert all(c.open_time != T0 for c in await paper.klines(BTC, "15m")), "not served later"


async def test_a_bad_candle_in_a_running_engine_leaves_the_position_and_its_stop_alone(
        tmp_path):
    """A low of 0 would fire every long's stop: refused, the engine ticks on."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    position = world.engine.positions[SYMBOL]
    good = world.candle(world.last_close)
    bad = Candle(SYMBOL, good.open_time, good.interval, good.open, good.high, D(0), good.close)
    world.candles.append(bad)
    world.clock.set(bad.close_time)
    world.paper.feed_candle(bad)
    world.engine.on_candle(bad)
    await world.engine.tick()
    await world.step()
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert (await world.paper.position(SYMBOL)).quantity == position.quantity


@given(mid=st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8),
       spread=st.decimals(min_value=D(0), max_value=D("0.5"), places=6),
       tick=st.sampled_from([D("0.00001"), D("0.0001"), D("0.01"), D("0.1"), D(1), D(10)]))
def test_the_book_is_never_negative_or_crossed(mid: D, spread: D, tick: D) -> None:
    book = book_at(BTC, mid, spread, tick)
    assert 0 < book.bid < book.ask


def test_the_simulator_refuses_a_price_at_or_below_zero_set_directly() -> None:
    sim = Simulator(SimConfig())
    sim.set_price(BTC, D("70000"), T0)
    with captured_logs("WARNING") as logs:
        assert sim.set_price(BTC, D("-1"), T0 + timedelta(seconds=1)) == []
    assert sim.mark_price(BTC) == D("70000")
    assert any("price refused" in line and BTC in line for line in logs), logs
