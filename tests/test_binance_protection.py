"""Protection timings through the real python-binance client against the fake Binance, with
the engine's own loop running (ticks, stream events) and the debounce at its default 60 s:

- a stop cancelled by hand (the exchange says CANCELED for our client id) is back within a
  second with the user-data stream, within one tick when polling;
- a stop merely absent from the open orders (no final status) is probed and left alone
  until the debounce;
- a position grown by hand ends with exactly one stop and one take-profit for the new size;
- a restart with other leverage settings never changes an open position's leverage.
"""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from storage.db import AGENT_LOCK_WAIT_SECONDS
from tests.fakes.binance_harness import eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.domain import OrderType, Side
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_streams import StreamOptions
from trader.exchange.gate import RetryPolicy
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
PRICE = Decimal("50000")
FAST_RETRIES = RetryPolicy(attempts=3, initial=0.01, cap=0.05)
STREAMS = StreamOptions(heartbeat_seconds=5.0, backoff_initial=0.05, backoff_max=0.2)


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


@asynccontextmanager
async def running_agent(fake: FakeBinance, tmp_path, *, streams: bool, tick: float = 0.5,
                        live_database: bool = False, **env) -> AsyncIterator[Engine]:
    """A hand-opened LONG 0.1 adopted at boot, then the engine's loop running for real.
    `live_database`: opened as `tradebot run` opens it (rollback journal, the agent's short
    wait for another process's lock; trader/engine_setup.py)."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    settings = settings_for(fake, db_path=tmp_path / "tradebot.db", tick_seconds=tick, **env)
    exchange = BinanceExchange(settings, SystemClock(), streams=streams, stream_options=STREAMS,
                               retry_policy=FAST_RETRIES)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path, wal=False, lock_wait=AGENT_LOCK_WAIT_SECONDS) \
        if live_database else TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, SystemClock(), Alerter(store))
    await boot(engine)
    if streams:
        assert await eventually(lambda: exchange.streaming, timeout=5.0)
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await engine.tick()
            await engine.wait_next(stop, settings.tick_seconds)

    task = asyncio.create_task(loop())
    try:
        assert await eventually(lambda: engine.positions.get(SYMBOL) is not None and
                                engine.positions[SYMBOL].state is PositionState.PROTECTED, 5.0)
        yield engine
    finally:
        stop.set()
        await task
        await exchange.close()
        store.close()


async def live_stops(fake: FakeBinance) -> list:
    return [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]


@pytest.mark.parametrize(("streams", "bound"), [(True, 1.0), (False, 1.5)])
async def test_a_stop_cancelled_by_hand_is_back_within_a_second_or_one_tick(fake, tmp_path,
                                                                            streams, bound):
    async with running_agent(fake, tmp_path, streams=streams) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await fake.cancel_order_by_hand(SYMBOL, stop_id)
        cancelled = time.monotonic()
        assert await eventually(lambda: fake.sim.open_orders(SYMBOL) and any(
            o.type is OrderType.STOP_MARKET for o in fake.sim.open_orders(SYMBOL)), 5.0)
        naked = time.monotonic() - cancelled
        assert naked < bound, f"without a stop for {naked:.2f} s"
        assert [o.client_id[-3:] for o in await live_stops(fake)] == ["sl2"]


async def test_a_stop_cancelled_by_hand_while_another_process_locks_the_database_is_back_soon(
        fake, tmp_path):
    """Found by a reviewer: a `sqlite3` shell (or a database browser) holding the file in a
    transaction froze the agent, every statement waiting five seconds on the event loop: a
    stop cancelled by hand came back only when the lock ended (90 s), SIGTERM took 46 s.
    The agent now waits half a second, then, while writes fail, not at all: the stop is
    placed (entries blocked, SAVE_STATE_FAILURE), and the first write that works after the
    lock restores the wait."""
    async with running_agent(fake, tmp_path, streams=True, live_database=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        other = sqlite3.connect(tmp_path / "tradebot.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            await fake.cancel_order_by_hand(SYMBOL, stop_id)
            cancelled = time.monotonic()
            assert await eventually(lambda: any(o.type is OrderType.STOP_MARKET
                                                for o in fake.sim.open_orders(SYMBOL)), 15.0)
            naked = time.monotonic() - cancelled
            assert naked < 3.0, f"without a stop for {naked:.2f} s while the file was locked"
            assert engine.store.health.failing
        finally:
            other.execute("COMMIT")
            other.close()
        assert await eventually(lambda: not engine.store.health.failing, 5.0)
        wait = engine.store.db.execute("PRAGMA busy_timeout").fetchone()[0]
        assert wait == AGENT_LOCK_WAIT_SECONDS * 1000          # the wait is back


async def test_a_stop_only_missing_from_the_list_is_probed_and_left_until_the_debounce(
        fake, tmp_path):
    """Open orders that do not list our stop while a query still finds nothing to say:
    ambiguous, so no second stop before the 60 s debounce."""
    async with running_agent(fake, tmp_path, streams=False) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id

        def without_our_stop(answer):
            return [row for row in answer if row.get("clientAlgoId") != stop_id]
        fake.reshape_answers("GET /fapi/v1/openAlgoOrders", without_our_stop, times=100)
        fake.inject_fault("GET /fapi/v1/algoOrder", code=-2013, msg="Order does not exist.",
                          times=100)
        await asyncio.sleep(2.0)                       # several ticks
        assert [o.client_id for o in await live_stops(fake)] == [stop_id], \
            "a second stop was placed before the debounce"
        assert fake.requests("GET /fapi/v1/algoOrder"), "the absence was not probed"
        assert engine.positions[SYMBOL].stop.order.status.value == "MISSING"


async def test_a_position_grown_by_hand_ends_with_one_stop_and_one_target_for_the_new_size(
        fake, tmp_path):
    async with running_agent(fake, tmp_path, streams=True) as engine:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.050"))
        assert await eventually(lambda: sorted(
            (o.type.value, o.quantity) for o in fake.sim.open_orders(SYMBOL)) == [
            ("STOP_MARKET", Decimal("0.150")), ("TAKE_PROFIT_MARKET", Decimal("0.150"))], 5.0)
        assert engine.positions[SYMBOL].quantity == Decimal("0.150")


async def test_a_restart_with_other_leverage_leaves_the_open_position_alone(fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    fake.sim.set_leverage(SYMBOL, 5)
    settings = settings_for(fake, db_path=tmp_path / "tradebot.db", leverage=10)
    exchange = BinanceExchange(settings, SystemClock(), streams=False, retry_policy=FAST_RETRIES)
    await exchange.start([SYMBOL], settings.leverage)
    try:
        assert fake.requests("POST /fapi/v1/leverage") == []
        assert fake.sim.leverage(SYMBOL) == 5
    finally:
        await exchange.close()
