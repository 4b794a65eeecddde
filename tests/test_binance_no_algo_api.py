"""A server without Binance's Algo Order API (HTTP 404 on /fapi/v1/algoOrder,
/fapi/v1/openAlgoOrders, ...: a testnet, a proxy, a fake written before the 2025-12-09
migration): the agent learns it from the 404 and sends its conditional orders to the classic
/fapi/v1/order as the pre-migration New Order page documents; a -4120 from the classic
endpoint switches back (trader/exchange/binance_algo_presence.py). With the Algo API there,
nothing changes (tests/test_binance_engine.py and the other test_binance_* files).
"""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.binance_harness import (
    captured_logs,
    market,
    started_exchange,
    stop_loss,
    take_profit,
)
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_engine import PRICE, SYMBOL, start_engine, stop_engine
from trader.domain import Candle, ClientId, CloseReason, OrderStatus, OrderType, Side
from trader.exchange import binance_event_codec as event_codec
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.position import PositionState
from trader.startup import boot

ALGO_PATHS = ("/fapi/v1/algoOrder", "/fapi/v1/openAlgoOrders", "/fapi/v1/algoOpenOrders")
NO_ALGO_WARNING = "no Algo Order API"
FIXTURE = Path(__file__).parent / "fixtures" / "binance" / "event_order_trade_update.json"


@pytest.fixture
async def no_algo():
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=False) as server:
        yield server


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


def algo_requests(fake: FakeBinance) -> list:
    return [r for r in fake.request_log if r.path in ALGO_PATHS]


def classic_conditional_posts(fake: FakeBinance) -> list:
    return [r for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") in ("STOP_MARKET", "TAKE_PROFIT_MARKET")]


def warnings_about_the_algo_api(messages: list[str]) -> list[str]:
    return [m for m in messages if NO_ALGO_WARNING in m]


# --- the adapter ------------------------------------------------------------------------------

async def test_a_stop_refused_with_404_is_sent_once_more_on_the_classic_endpoint_same_id(no_algo):
    await no_algo.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    request = stop_loss(Side.SELL, "49000")
    async with started_exchange(no_algo) as exchange:
        with captured_logs("WARNING") as messages:
            order = await exchange.place(request)
            target = await exchange.place(take_profit(Side.SELL, "51000", "0.100"))

        assert [r.method + " " + r.path for r in algo_requests(no_algo)] == \
            ["POST /fapi/v1/algoOrder"]                       # the 404, then never again
        [warning] = warnings_about_the_algo_api(messages)
        assert "POST /fapi/v1/algoOrder" in warning
        sent_stop, sent_target = (r.params for r in classic_conditional_posts(no_algo))
        assert sent_stop == {**sent_stop, "symbol": SYMBOL, "side": "SELL", "type": "STOP_MARKET",
                             "stopPrice": "49000", "closePosition": "true",
                             "workingType": "MARK_PRICE", "newClientOrderId": request.client_id}
        assert "quantity" not in sent_stop and "reduceOnly" not in sent_stop
        assert "clientAlgoId" not in sent_stop and "triggerPrice" not in sent_stop
        assert sent_target == {**sent_target, "type": "TAKE_PROFIT_MARKET", "stopPrice": "51000",
                               "quantity": "0.1", "reduceOnly": "true"}
        assert no_algo.accepted_orders.count(request.client_id) == 1   # no duplicate possible
        assert (order.client_id, order.type, order.trigger_price, order.close_position) == \
            (request.client_id, OrderType.STOP_MARKET, Decimal("49000"), True)
        assert target.type is OrderType.TAKE_PROFIT_MARKET and target.reduce_only

        live = {o.client_id: o.type for o in await exchange.open_orders(SYMBOL)}
        assert live == {request.client_id: OrderType.STOP_MARKET,
                        target.client_id: OrderType.TAKE_PROFIT_MARKET}
        queried = await exchange.order_by_client_id(SYMBOL, request.client_id)
        assert queried is not None and queried.status is OrderStatus.NEW
        await exchange.cancel(SYMBOL, request.client_id)
        assert [o.client_id for o in await exchange.open_orders(SYMBOL)] == [target.client_id]
        assert len(algo_requests(no_algo)) == 1       # query and cancel asked the classic one


async def test_the_first_read_of_open_orders_learns_there_is_no_algo_api_and_does_not_fail(
        no_algo):
    async with started_exchange(no_algo) as exchange:
        with captured_logs("WARNING") as messages:
            assert await exchange.open_orders(SYMBOL) == []
            assert await exchange.open_orders(SYMBOL) == []
            await exchange.place(stop_loss(Side.SELL, "49000"))
        assert [r.path for r in algo_requests(no_algo)] == ["/fapi/v1/openAlgoOrders"]
        assert len(warnings_about_the_algo_api(messages)) == 1
        assert len(classic_conditional_posts(no_algo)) == 1


async def test_a_4120_from_the_classic_endpoint_switches_back_to_the_algo_api_and_sends_there(
        fake):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    request = stop_loss(Side.SELL, "49000")
    async with started_exchange(fake) as exchange:
        fake.inject_fault("GET /fapi/v1/openAlgoOrders", http_status=404)   # a proxy's hiccup
        await exchange.open_orders(SYMBOL)
        with captured_logs("WARNING") as messages:
            order = await exchange.place(request)
        [classic] = classic_conditional_posts(fake)              # answered -4120
        assert classic.params["newClientOrderId"] == request.client_id
        [algo] = fake.requests("POST /fapi/v1/algoOrder")
        assert algo.params["clientAlgoId"] == request.client_id
        assert any("-4120" in m for m in messages)
        assert fake.accepted_orders.count(request.client_id) == 1
        assert order.exchange_id.startswith("algo:")
        assert [o.client_id for o in await exchange.open_orders(SYMBOL)] == [request.client_id]


async def test_after_a_passing_404_our_algo_stop_is_still_found_by_its_id_and_the_api_is_back(
        fake):
    """A 404 from a proxy's hiccup on a real post-migration Binance: the open-orders list
    then lacks the algo stop, but asking for it by id finds it (classic first, then the Algo
    API), so the sentinel's probe does not take it for gone and place a second one."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    request = stop_loss(Side.SELL, "49000")
    async with started_exchange(fake) as exchange:
        await exchange.place(request)
        fake.inject_fault("GET /fapi/v1/openAlgoOrders", http_status=404)
        assert await exchange.open_orders(SYMBOL) == []         # the stop hidden by the 404
        found = await exchange.order_by_client_id(SYMBOL, request.client_id)
        assert found is not None and found.status is OrderStatus.NEW
        assert [o.client_id for o in await exchange.open_orders(SYMBOL)] == [request.client_id]
        await exchange.place(take_profit(Side.SELL, "51000", "0.100"))
        assert classic_conditional_posts(fake) == []             # back on the Algo API


async def test_a_404_on_a_plain_endpoint_is_not_taken_for_a_missing_algo_api(fake):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    async with started_exchange(fake) as exchange:
        fake.inject_fault("GET /fapi/v1/openOrders", http_status=404)
        with pytest.raises(ExchangeError):
            await exchange.open_orders(SYMBOL)
        fake.inject_fault("POST /fapi/v1/order", http_status=404)
        with pytest.raises(ExchangeError):
            await exchange.place(market(Side.BUY, "0.010"))
        await exchange.place(stop_loss(Side.SELL, "49000"))
        assert classic_conditional_posts(fake) == []
        assert len(fake.requests("POST /fapi/v1/algoOrder")) == 1


@pytest.mark.parametrize(("code", "status"), [(-2019, 400), (-1000, 503)])
async def test_other_refusals_of_the_algo_api_are_not_sent_again_on_the_classic_endpoint(
        fake, code, status):
    """Only a 404 says "no Algo API": a 503 may have reached the matching engine (sent again
    on the other endpoint it could make a second stop), a 400 is a refusal to report."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    async with started_exchange(fake) as exchange:
        fake.inject_fault("POST /fapi/v1/algoOrder", code=code, http_status=status)
        with pytest.raises((ExchangeError, UnknownOutcome)):
            await exchange.place(stop_loss(Side.SELL, "49000"))
        assert classic_conditional_posts(fake) == []


def test_a_classic_stop_market_on_the_stream_reads_as_our_stop():
    """The documented ORDER_TRADE_UPDATE example (.../user-data-streams/Event-Order-Update,
    whose order types list STOP_MARKET and TAKE_PROFIT_MARKET) as a classic closePosition
    stop: placed ("o" STOP_MARKET), then triggered ("o" MARKET, "ot" the original type)."""
    example = json.loads(FIXTURE.read_text())["payload"]
    placed = {**example, "o": {**example["o"], "o": "STOP_MARKET", "ot": "STOP_MARKET",
                               "c": "tb-BTCUSDT-lzx81c0-sl1", "cp": True, "R": False}}
    update = event_codec.update_from_order_event(placed)
    assert (update.order.type, update.order.trigger_price, update.order.close_position) == \
        (OrderType.STOP_MARKET, Decimal("7103.04"), True)
    assert update.order.status is OrderStatus.NEW and update.fill is None
    assert update.order.exchange_id == "8886774"            # a classic orderId, not "algo:"
    triggered = {**placed, "o": {**placed["o"], "o": "MARKET", "x": "TRADE", "X": "FILLED",
                                 "l": "0.001", "z": "0.001", "L": "7103.04", "t": 42}}
    update = event_codec.update_from_order_event(triggered)
    assert update.order.type is OrderType.STOP_MARKET and update.order.status is OrderStatus.FILLED
    assert update.fill is not None and update.fill.client_id == "tb-BTCUSDT-lzx81c0-sl1"


# --- the real engine --------------------------------------------------------------------------

def feed_candles(engine, count: int = 300) -> None:
    """Closed 1m candles around PRICE, as the kline stream would bring them."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=count)
    for i in range(count):
        open_ = PRICE + Decimal((i * 37) % 50 - 25)
        engine.on_candle(Candle(SYMBOL, start + timedelta(minutes=i), timedelta(minutes=1),
                                open_, open_ + 40, open_ - 40, open_ + 5, Decimal(10)))


async def ours_on_the_exchange(engine) -> dict[str, OrderType]:
    return {o.client_id: o.type for o in await engine.exchange.open_orders(SYMBOL)
            if ClientId.parse(o.client_id) is not None}


async def test_without_the_algo_api_the_engine_trades_protects_and_closes_on_its_stop(
        no_algo, tmp_path):
    engine = await start_engine(no_algo, tmp_path)
    try:
        await boot(engine)                              # the boot read meets the 404
        feed_candles(engine)
        await engine.tick()
        position = await engine.enter_by_hand(SYMBOL, Side.BUY, "test: manual /long")
        assert not isinstance(position, str), position
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.PROTECTED
        stop_id = position.stop.order.client_id
        assert (await ours_on_the_exchange(engine)).get(stop_id) is OrderType.STOP_MARKET
        assert sorted((await ours_on_the_exchange(engine)).values()) == \
            [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]
        assert [r.path for r in algo_requests(no_algo)] == ["/fapi/v1/openAlgoOrders"]

        await no_algo.cancel_order_by_hand(SYMBOL, stop_id)          # a hand-cancel
        for _ in range(3):
            await engine.tick()
        new_stop = engine.positions[SYMBOL].stop
        assert new_stop.order.client_id != stop_id
        live = await ours_on_the_exchange(engine)
        assert live.get(new_stop.order.client_id) is OrderType.STOP_MARKET and stop_id not in live

        assert new_stop.trigger_price is not None
        await no_algo.move_price(SYMBOL, new_stop.trigger_price - Decimal("10"))  # it fills
        assert no_algo.sim.position(SYMBOL).quantity == 0
        for _ in range(3):
            await engine.tick()
        assert SYMBOL not in engine.positions
        [closed] = [c for c in engine.store.closed_positions() if c.key == position.key]
        assert closed.close_reason is CloseReason.STOP_LOSS
        assert await ours_on_the_exchange(engine) == {}
        assert [r.path for r in algo_requests(no_algo)] == ["/fapi/v1/openAlgoOrders"]
    finally:
        await stop_engine(engine)
