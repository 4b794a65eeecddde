"""An algo stop-loss that ends FINISHED, "the triggered conditional order has been filled or
canceled in the matching engine" (https://developers.binance.com/docs/derivatives/
usds-margined-futures/user-data-streams/Event-Algo-Order-Update), is what its MARKET child
executed: nothing (the child expired unfilled, e.g. expiry reason 4 "knocked out by another
higher priority RO (market) order", .../user-data-streams/Event-Order-Update), part, or all.

Its events not heard, the agent reads it over REST: GET /fapi/v1/algoOrder answers FINISHED
and names the child ("actualOrderId", .../trade/rest-api/Query-Algo-Order) but no executed
quantity; GET /fapi/v1/order by that orderId (.../trade/rest-api/Query-Order) tells the
child's "executedQty". FINISHED was read as filled: the LONG had no stop for ~11 s, then
CRITICAL SL_MISSING said "stop-loss filled, yet the position is still open (it grew while
the stop filled)", neither true. Now it is replaced at once, as a stop gone CANCELED is.

Found from outside (review 7, item 6)."""

import asyncio
import time
from decimal import Decimal

import pytest

from tests.fakes import binance_wire as wire
from tests.fakes.binance_harness import market, started_exchange, stop_loss
from tests.fakes.binance_ledger import CHILD_ORDER_BASE
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented
from tests.test_binance_fake_shapes import shape_problems
from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_stop_fill_during_ban import long_open, ticks
from trader.domain import OrderStatus, OrderType, Side, to_ms
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange


def stops(fake: FakeBinance) -> list:
    return [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]


async def seconds_until_replaced(fake: FakeBinance, engine: Engine) -> float | None:
    started = time.monotonic()
    for _ in range(40):                              # up to 20 s of ticks
        await asyncio.sleep(0.5)
        await engine.tick()
        if stops(fake):
            return time.monotonic() - started
    return None


@pytest.mark.parametrize("ended", [OrderStatus.FILLED, OrderStatus.CANCELED],
                         ids=["finished-nothing-executed", "canceled"])
async def test_a_stop_gone_unfilled_seen_over_rest_is_replaced_at_once(tmp_path, ended):
    """FILLED with nothing filled is the fake's FINISHED whose child executed nothing
    (binance_endpoints.py `_child_of`: the child EXPIRED, executedQty 0). CANCELED (a
    cancel by hand) is the negative case: it was replaced within a second before."""
    async with streaming_agent(tmp_path, stream_verify_seconds=1) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        held = fake.sim.position(SYMBOL).quantity
        stop = fake.sim.order(SYMBOL, engine.positions[SYMBOL].stop.order.client_id)
        fake.sim._finish(stop, ended, fake.now())        # its events lost (not published)

        replaced_after = await seconds_until_replaced(fake, engine)

        texts = [f"{a.name}: {a.text}" for a in engine.store.recent_alerts(50)]
        assert fake.sim.position(SYMBOL).quantity == held
        assert engine.store.closed_positions() == []
        assert replaced_after is not None and replaced_after < 5, (
            f"LONG {held} without a stop for {replaced_after} s after its stop ended "
            f"{ended.value} with nothing executed")
        assert not any("stop-loss filled" in t for t in texts), texts
        [replacement] = stops(fake)
        assert replacement.quantity == held and replacement.client_id != stop.client_id
        if ended is OrderStatus.FILLED:
            asked = fake.requests("GET /fapi/v1/order")
            assert any(r.params.get("orderId") == str(CHILD_ORDER_BASE + int(stop.exchange_id))
                       for r in asked), "the FINISHED stop's child was not asked"
            assert any("ended on the exchange (EXPIRED), not by the agent: Binance said "
                       "\"FINISHED: triggered, its market order ended with nothing executed\""
                       in t for t in texts), texts


async def test_a_stop_finished_in_part_seen_over_rest_protects_the_rest(tmp_path):
    """The child executed half and expired; no event heard. The rest is protected by a stop
    of its size, the record follows Binance's position, and nothing says the stop filled."""
    async with streaming_agent(tmp_path, stream_verify_seconds=1) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        held = fake.sim.position(SYMBOL).quantity
        stop = fake.sim.order(SYMBOL, engine.positions[SYMBOL].stop.order.client_id)
        half = (held / 2).quantize(Decimal("0.001"))
        fake.sim.fill_partly(SYMBOL, stop.client_id, half, fake.now())     # not published
        fake.sim._finish(fake.sim.order(SYMBOL, stop.client_id), OrderStatus.FILLED,
                         fake.now())

        await ticks(engine, 12)

        left = fake.sim.position(SYMBOL).quantity
        texts = [f"{a.name}: {a.text}" for a in engine.store.recent_alerts(50)]
        assert left == held - half
        assert [o.quantity for o in stops(fake)] == [left], texts
        assert engine.positions[SYMBOL].quantity == left
        assert not any("stop-loss filled" in t for t in texts), texts


async def test_a_stop_finished_in_part_heard_on_the_stream_protects_the_rest(tmp_path):
    """The same told by the stream: the child's ORDER_TRADE_UPDATE x=EXPIRED er 9 ("Market
    order could not be filled completely", Event-Order-Update) and ALGO_UPDATE FINISHED
    with "aq" half of "q" (review 7's passing probe, kept)."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        stop = fake.sim.order(SYMBOL, engine.positions[SYMBOL].stop.order.client_id)
        held = fake.sim.position(SYMBOL).quantity
        half = (held / 2).quantize(Decimal("0.001"))
        now = fake.now()
        await fake._publish(fake.sim.fill_partly(SYMBOL, stop.client_id, half, now))
        finished = fake.sim._finish(fake.sim.order(SYMBOL, stop.client_id),
                                    OrderStatus.FILLED, now)
        child, moment = CHILD_ORDER_BASE + int(finished.exchange_id), to_ms(now)
        expired_child = wire.order_trade_update(finished, None, child, moment, "MARKET")
        expired_child["o"].update({"x": "EXPIRED", "X": "EXPIRED", "er": "9"})
        finished_event = wire.algo_update(finished, fake.endpoints.ledger.algo_id(finished),
                                          "FINISHED", moment, str(child))
        finished_event["o"]["aq"] = wire.num(half)
        await fake.hub.send_user([expired_child, finished_event], fake.endpoints.listen_key)

        await ticks(engine, 6)

        left = fake.sim.position(SYMBOL).quantity
        assert left == held - half
        assert [o.quantity for o in stops(fake)] == [left]
        assert engine.positions[SYMBOL].quantity == left


async def finished_stop(fake: FakeBinance, exchange: BinanceExchange) -> str:
    """A LONG 0.01 whose stop ended FINISHED with nothing executed; the stop's client id."""
    await exchange.place(market(Side.BUY, "0.01"))
    placed = await exchange.place(stop_loss(Side.SELL, "49000", "0.01", close_position=False))
    fake.sim._finish(fake.sim.order(SYMBOL, placed.client_id), OrderStatus.FILLED, fake.now())
    return placed.client_id


async def test_the_fake_answers_a_finished_stop_and_its_child_as_documented():
    """GET /fapi/v1/algoOrder of the FINISHED stop has the fields of Query-Algo-Order's
    example and names its child; GET /fapi/v1/order of the child has Query-Order's and
    says what it executed (nothing: EXPIRED, executedQty 0). The adapter reads the stop
    as that: EXPIRED, nothing filled."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            started_exchange(fake) as exchange:
        stop_id = await finished_stop(fake, exchange)
        algo = await exchange.client.futures_get_algo_order(clientAlgoId=stop_id)
        child = await exchange.client.futures_get_order(symbol=SYMBOL,
                                                        orderId=algo["actualOrderId"])
        read = await exchange.order_by_client_id(SYMBOL, stop_id)
    query_algo, query = documented("algo_order_query"), documented("order_query")
    assert shape_problems(algo, query_algo.payload, query_algo.optional_fields) == []
    assert shape_problems(child, query.payload, query.optional_fields) == []
    assert algo["algoStatus"] == "FINISHED" and algo["actualOrderId"]
    assert (child["status"], child["executedQty"], child["type"]) == ("EXPIRED", "0", "MARKET")
    assert read is not None and (read.status, read.filled_qty) == (OrderStatus.EXPIRED, 0)


async def test_a_finished_stop_whose_child_binance_does_not_find_reads_as_before():
    """Negative case: the child unknown (-2013, "Order does not exist."), nothing says what
    it executed: FINISHED reads FILLED as before, and the position read decides."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            started_exchange(fake) as exchange:
        stop_id = await finished_stop(fake, exchange)
        fake.inject_fault("GET /fapi/v1/order", code=-2013, msg="Order does not exist.")
        read = await exchange.order_by_client_id(SYMBOL, stop_id)
    assert read is not None and read.status is OrderStatus.FILLED
