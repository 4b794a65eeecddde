"""The real engine with its user-data stream on, against a fake Binance without the Algo
Order API (tests/test_binance_no_algo_api.py has the adapter and a polling engine): the
classic STOP_MARKET / TAKE_PROFIT_MARKET orders' ORDER_TRADE_UPDATE events (placed,
cancelled by hand, triggered, filled) drive the same protection as ALGO_UPDATE does.
"""

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes import binance_wire as wire
from tests.fakes.binance_harness import eventually, live_ids
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from trader.alerts import AlertName
from trader.domain import CloseReason, OrderStatus, OrderType
from trader.exchange import binance_event_codec as event_codec

FIXTURE = Path(__file__).parent / "fixtures" / "binance" / "event_order_trade_update.json"
ALGO_PATHS = ("/fapi/v1/algoOrder", "/fapi/v1/openAlgoOrders", "/fapi/v1/algoOpenOrders")


@pytest.fixture(params=["triggered-first", "expired-first"])
async def no_algo(request):
    """Binance's docs list expire reason 8, "The initial order has expired after the stop
    order is triggered", without saying when that EXPIRED comes: both ways."""
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=False,
                           trigger_events=request.param) as server:
        yield server


def classic_posts(fake: FakeBinance, order_type: str) -> list:
    return [r for r in fake.requests("POST /fapi/v1/order") if r.params.get("type") == order_type]



def stop_order_id(engine) -> str | None:
    position = engine.positions.get(SYMBOL)
    order = position.stop.order if position is not None else None
    return order.client_id if order is not None else None


async def test_streams_on_a_hand_cancelled_classic_stop_is_replaced_once_and_its_fill_closes(
        no_algo, tmp_path):
    async with running_agent(no_algo, tmp_path, streams=True) as engine:
        position = engine.positions[SYMBOL]
        stop_id = position.stop.order.client_id
        assert live_ids(no_algo, OrderType.STOP_MARKET) == [stop_id]
        assert len(live_ids(no_algo, OrderType.TAKE_PROFIT_MARKET)) == 1

        await no_algo.cancel_order_by_hand(SYMBOL, stop_id)
        assert await eventually(lambda: len(live_ids(no_algo, OrderType.STOP_MARKET)) == 1, 5.0)
        [new_stop] = live_ids(no_algo, OrderType.STOP_MARKET)
        assert new_stop != stop_id
        assert await eventually(lambda: stop_order_id(engine) == new_stop, 5.0)
        trigger = engine.positions[SYMBOL].stop.trigger_price
        assert trigger is not None

        await no_algo.move_price(SYMBOL, trigger - Decimal("10"))       # the stop fills
        assert await eventually(lambda: SYMBOL not in engine.positions, 5.0)

        def closed() -> list:     # the close is saved with the end of the engine's tick
            return [c for c in engine.store.closed_positions() if c.key == position.key]
        assert await eventually(lambda: len(closed()) == 1, 5.0)
        assert closed()[0].close_reason is CloseReason.STOP_LOSS
        assert await eventually(lambda: not no_algo.sim.open_orders(SYMBOL), 5.0)
        assert len(classic_posts(no_algo, "STOP_MARKET")) == 2           # never a third
        assert [r.path for r in no_algo.request_log if r.path in ALGO_PATHS][:1] == \
            ["/fapi/v1/openAlgoOrders"]


async def test_streams_on_a_classic_stop_expired_by_its_trigger_is_not_replaced(no_algo, tmp_path):
    """Event-Order-Update, "Expire Reason" 8: "The initial order has expired after the stop
    order is triggered". That EXPIRED (and the NEW of its market order) may be read before
    the fill: the stop is executing, not gone; a second stop and a CRITICAL SL_MISSING
    would be wrong."""
    async with running_agent(no_algo, tmp_path, streams=True, tick=0.2) as engine:
        [stop] = [o for o in no_algo.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        moment = no_algo.endpoints.now_ms()
        expired = wire.order_trade_update(replace(stop, status=OrderStatus.EXPIRED), None,
                                          int(stop.exchange_id), moment)
        expired["o"]["er"] = "8"
        market = wire.order_trade_update(stop, None, int(stop.exchange_id), moment, "MARKET")
        assert (expired["o"]["o"], market["o"]["o"], market["o"]["ot"]) == \
            ("STOP_MARKET", "MARKET", "STOP_MARKET")
        await no_algo.hub.send_user([expired, market], no_algo.endpoints.listen_key)
        await asyncio.sleep(1.0)                       # several ticks before the fill
        assert live_ids(no_algo, OrderType.STOP_MARKET) == [stop.client_id]
        assert not [a for a in engine.alerter.pending() if a.name is AlertName.SL_MISSING]

        trigger = engine.positions[SYMBOL].stop.trigger_price
        await no_algo.move_price(SYMBOL, trigger - Decimal("10"))       # now it fills
        assert await eventually(lambda: SYMBOL not in engine.positions, 5.0)
        assert await eventually(lambda: not no_algo.sim.open_orders(SYMBOL), 5.0)
        assert len(classic_posts(no_algo, "STOP_MARKET")) == 1


@pytest.mark.parametrize(("expire_reason", "status"), [("8", OrderStatus.NEW),
                                                      ("0", OrderStatus.EXPIRED),
                                                      ("6", OrderStatus.EXPIRED),
                                                      (None, OrderStatus.EXPIRED)])
def test_only_the_expiry_of_a_trigger_reads_as_still_working(expire_reason, status):
    """The documented example (Event-Order-Update) as a classic stop's EXPIRED: er 8 (the
    trigger) is NEW; any other reason (6: GTE condition unsatisfied, ...) or none is final."""
    example = json.loads(FIXTURE.read_text())["payload"]
    body = {**example["o"], "o": "STOP_MARKET", "ot": "STOP_MARKET", "x": "EXPIRED",
            "X": "EXPIRED", "c": "tb-BTCUSDT-lzx81c0-sl1", "l": "0", "z": "0"}
    body.pop("er", None)
    if expire_reason is not None:
        body["er"] = expire_reason
    update = event_codec.update_from_order_event({**example, "o": body})
    assert update.order.status is status and update.fill is None
