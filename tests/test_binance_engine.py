"""The real engine driving the real python-binance client against the fake Binance server:
boot reconciliation with an empty database, protection through the Algo Order API,
re-attach of a hand-cancelled stop, finalize of a hand-closed position, error outcomes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import settings_for
from tests.fakes.binance_server import FakeBinance
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import SystemClock
from trader.domain import CloseReason, OrderType, Side
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
PRICE = Decimal("50000")


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


async def start_engine(fake: FakeBinance, tmp_path, clock=None, **env) -> Engine:
    values = {"db_path": tmp_path / "tradebot.db", "sentinel_debounce_seconds": 0,
              "sentinel_debounce_cycles": 2, **env}
    settings = settings_for(fake, **values)
    clock = clock or SystemClock()
    exchange = BinanceExchange(settings, clock, streams=False)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    return Engine(settings, exchange, store, clock, Alerter(store))


async def stop_engine(engine: Engine) -> None:
    await engine.exchange.close()
    engine.store.close()


@asynccontextmanager
async def booted_long(fake: FakeBinance, tmp_path, **env) -> AsyncIterator[Engine]:
    """A LONG 0.1 opened by hand, then an agent booted on an empty database."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    engine = await start_engine(fake, tmp_path, **env)
    try:
        await boot(engine)
        yield engine
    finally:
        await stop_engine(engine)


def algo_posts(fake: FakeBinance) -> list:
    return fake.requests("POST /fapi/v1/algoOrder")


async def test_boot_with_an_empty_database_adopts_and_protects_an_existing_position(fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    engine = await start_engine(fake, tmp_path)
    try:
        lines = await boot(engine)
        assert any("adopted" in line for line in lines)
        position = engine.positions[SYMBOL]
        assert position.side is Side.BUY and position.quantity == Decimal("0.100")
        posts = algo_posts(fake)
        assert {p.params["type"] for p in posts} == {"STOP_MARKET", "TAKE_PROFIT_MARKET"}
        for post in posts:
            assert post.params["clientAlgoId"].startswith(f"tb-{SYMBOL}-")
            assert post.params["algoType"] == "CONDITIONAL"
            assert post.params["reduceOnly"] == "true" and post.params["side"] == "SELL"
        # conditional orders never go to the plain order endpoint (it answers -4120)
        assert not [r for r in fake.requests("POST /fapi/v1/order")
                    if r.params.get("type") in ("STOP_MARKET", "TAKE_PROFIT_MARKET")]
        open_orders = await engine.exchange.open_orders(SYMBOL)
        assert sorted(o.type for o in open_orders) == [OrderType.STOP_MARKET,
                                                       OrderType.TAKE_PROFIT_MARKET]
    finally:
        await stop_engine(engine)


async def test_an_adopted_position_cools_down_for_the_configured_minutes_and_is_reported(
        fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    engine = await start_engine(fake, tmp_path, cooldown_minutes=45)
    try:
        engine.alerter.publish(Alert(AlertName.STARTUP, "tradebot started"), engine.clock.now())
        await boot(engine)
        assert engine.positions[SYMBOL].cooldown == timedelta(minutes=45)
        texts = [a.text for a in engine.alerter.pending()]
        assert any("did not open" in t for t in texts), texts  # not throttled
    finally:
        await stop_engine(engine)


async def test_restart_on_a_fresh_disk_adopts_its_own_orders_instead_of_resending(fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.SELL, Decimal("0.050"))
    first = await start_engine(fake, tmp_path / "a")
    await boot(first)
    await stop_engine(first)
    posts_before = len(algo_posts(fake))

    second = await start_engine(fake, tmp_path / "b")      # wiped disk: empty database
    try:
        lines = await boot(second)
        await second.tick()
        assert len(algo_posts(fake)) == posts_before        # nothing sent twice
        assert not any("untracked" in line for line in lines), lines   # its own, not a stranger's
        assert second.positions[SYMBOL].key == first.positions[SYMBOL].key
    finally:
        await stop_engine(second)


async def test_hand_cancelled_stop_is_reattached_by_the_sentinel(fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await fake.cancel_order_by_hand(SYMBOL, stop_id)
        for _ in range(3):
            await engine.tick()
        position = engine.positions[SYMBOL]
        assert position.stop.order.client_id != stop_id and position.stop.order.client_id.endswith("sl2")
        stops = [o for o in await engine.exchange.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert [o.client_id for o in stops] == [position.stop.order.client_id]


async def test_hand_closed_position_is_finalized_with_siblings_cancelled(fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        await fake.close_position_by_hand(SYMBOL)
        await engine.tick()
        assert SYMBOL not in engine.positions
        closed = engine.store.closed_positions()[-1]
        assert closed.close_reason is CloseReason.MANUAL
        assert await engine.exchange.open_orders(SYMBOL) == []


async def test_margin_insufficient_on_reattach_is_retried_on_a_capped_schedule_not_a_storm(
        fake, tmp_path):
    """-2019 on both legs: one alert, retries after 2, 4, 8 ... s (never every tick), and
    protected within one retry once margin is back."""
    from trader.clock import ManualClock
    fake.inject_fault("POST /fapi/v1/algoOrder", code=-2019, times=6)
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    clock = ManualClock(datetime.now(UTC))
    engine = await start_engine(fake, tmp_path, clock=clock)
    try:
        await boot(engine)                         # one attempt per leg: both refused
        assert len(algo_posts(fake)) == 2
        for _ in range(5):
            await engine.tick()                    # no time has passed: no retry
        assert len(algo_posts(fake)) == 2
        clock.advance(2.0)
        await engine.tick()                        # 2 s: one retry per leg, refused again
        assert len(algo_posts(fake)) == 4
        clock.advance(2.0)
        await engine.tick()                        # the next retry waits 4 s
        assert len(algo_posts(fake)) == 4
        clock.advance(2.0)
        await engine.tick()                        # 4 s: retried; margin is back now
        assert len(algo_posts(fake)) == 6
        clock.advance(4.0)
        await engine.tick()                        # 8 s after the third refusal: placed
        assert engine.positions[SYMBOL].state.value == "ATTACHING"
        clock.advance(4.0)
        await engine.tick()
        assert len(algo_posts(fake)) == 8
        assert engine.positions[SYMBOL].state.value == "PROTECTED"
        texts = [a.text for a in engine.store.recent_alerts(50)]
        assert sum("could not place the stop-loss" in t for t in texts) == 1
        assert any("protected again" in t for t in texts)
    finally:
        await stop_engine(engine)


async def test_server_error_on_a_stop_is_an_unknown_outcome_probed_not_resent(fake, tmp_path):
    # The stop reaches the matching engine but the answer is lost (503 after executing).
    fake.inject_fault("POST /fapi/v1/algoOrder", http_status=503, times=1, execute=True)
    async with booted_long(fake, tmp_path) as engine:
        await engine.tick()
        stops = [o for o in await engine.exchange.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert len(stops) == 1, "the unknown outcome must not lead to a second stop"


async def test_transient_read_errors_back_off_and_the_tick_still_completes(fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        fake.clear_request_log()
        fake.inject_fault("GET /fapi/v1/openOrders", code=-1001, times=2)
        await engine.tick()
        assert len(fake.requests("GET /fapi/v1/openOrders")) == 3   # 2 failures + 1 success
        assert engine.last_error is None


async def test_a_read_that_keeps_failing_gives_up_after_a_bounded_number_of_tries(fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        fake.clear_request_log()
        fake.inject_fault("GET /fapi/v1/openOrders", code=-1001, times=50)
        await engine.tick()
        assert len(fake.requests("GET /fapi/v1/openOrders")) == 4   # capped, no storm
        assert engine.last_error is not None


async def test_the_intent_is_journaled_as_sent_before_the_request_reaches_binance(fake, tmp_path):
    """Write-ahead, observed on the wire: while the order request is in flight, the
    database already holds its intent, so a crash right now leaves a record to probe."""
    import asyncio

    from tests.positions import make
    from trader.domain import IntentStatus, OrderRole, OrderType
    from trader.intents import entry_intent
    engine = await start_engine(fake, tmp_path)
    try:
        fake.inject_fault("POST /fapi/v1/order", delay=0.5, times=1)
        position = make(symbol=SYMBOL, key="wal1", state=PositionState.ENTERING,
                         quantity="0.010", entry=PRICE, live_legs=False)
        intent = entry_intent(position, "tb-BTCUSDT-wal1-en1", engine.clock.now())
        sending = asyncio.ensure_future(engine.executor.submit(intent))
        while not fake.requests("POST /fapi/v1/order"):
            await asyncio.sleep(0.01)
        in_flight = engine.store.intent(intent.client_id)
        assert in_flight is not None and in_flight.status is IntentStatus.SENT
        assert in_flight.role is OrderRole.ENTRY and in_flight.type is OrderType.MARKET
        result = await sending
        assert result.ok
        assert engine.store.intent(intent.client_id).status is IntentStatus.FILLED
    finally:
        await stop_engine(engine)
