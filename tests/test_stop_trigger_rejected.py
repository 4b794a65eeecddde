"""A stop-loss whose trigger the exchange rejected is replaced, and the SL_MISSING alert the
phone gets says why in Binance's own words: the operator must fix that (margin? a
reduce-only conflict?) before the replacement meets the same end.

Binance tells the reason as ALGO_UPDATE with algo status REJECTED and "rm" (https://
developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Algo-Order-Update), and as CONDITIONAL_ORDER_TRIGGER_REJECT "or": {s, i, r}, "when a
triggered TP/SL order got rejected" (.../user-data-streams/Event-Conditional-Order-Trigger-
Reject). A stop cancelled by hand says nothing of the kind (the negative case).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest

from tests.fakes.binance_harness import eventually, live_ids
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented, payload
from tests.positions import protected as protected_position
from tests.test_binance_fake_shapes import shape_problems
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from trader.alerts import Alert, AlertName
from trader.domain import Order, OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.events import LegGone, Policy
from trader.exchange import binance_event_codec as event_codec
from trader.exchange.base import TriggerRejected
from trader.lifecycle import step
from trader.order_tracker import OrderTracker

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
REASON = "Margin is insufficient."


# --- reading what Binance sends ------------------------------------------------------------

def test_the_documented_trigger_reject_reads_as_the_order_and_its_reason():
    event = event_codec.trigger_reject_from_event(payload("event_conditional_order_trigger_reject"))
    assert event == TriggerRejected(
        "ETHUSDT", "155618472834", documented("event_conditional_order_trigger_reject")
        .payload["or"]["r"], datetime.fromtimestamp(1685517224.955, UTC))


def test_the_documented_algo_update_keeps_its_reject_reason_on_the_order():
    update = event_codec.update_from_algo_event(payload("event_algo_update"))
    assert update.order.reason == "Reduce Only reject"


# --- the tracker -----------------------------------------------------------------------------

def stop(status: OrderStatus = OrderStatus.NEW, exchange_id: str = "77",
         reason: str = "") -> Order:
    return Order(SYMBOL, "tb-BTCUSDT-k-sl1", Side.SELL, OrderType.STOP_MARKET, status,
                 Decimal("0.1"), trigger_price=Decimal("49000"), reduce_only=True,
                 exchange_id=exchange_id, updated_at=NOW, reason=reason)


@pytest.mark.parametrize("exchange_id", ["77", "algo:77"])
def test_a_trigger_reject_ends_the_tracked_order_with_its_reason(exchange_id):
    tracker = OrderTracker()
    tracker.on_order(stop(exchange_id=exchange_id), NOW)
    tracker.on_trigger_rejected(SYMBOL, "77", REASON, NOW + timedelta(seconds=1))
    order = tracker.for_symbol(SYMBOL)["tb-BTCUSDT-k-sl1"].order
    assert (order.status, order.reason) == (OrderStatus.REJECTED, REASON)


def test_a_trigger_reject_of_another_order_changes_nothing():
    tracker = OrderTracker()
    tracker.on_order(stop(), NOW)
    quote = Order(SYMBOL, "tb-BTCUSDT-k-en1", Side.BUY, OrderType.LIMIT, OrderStatus.NEW,
                  Decimal("0.1"), price=Decimal("50000"), exchange_id="79", updated_at=NOW)
    tracker.on_order(quote, NOW)
    tracker.on_trigger_rejected(SYMBOL, "78", REASON, NOW)
    tracker.on_trigger_rejected("ETHUSDT", "77", REASON, NOW)
    tracker.on_trigger_rejected(SYMBOL, "79", REASON, NOW)   # not a conditional order
    orders = tracker.for_symbol(SYMBOL)
    assert orders["tb-BTCUSDT-k-sl1"].order.status is OrderStatus.NEW
    assert orders["tb-BTCUSDT-k-en1"].order.status is OrderStatus.NEW


def test_a_later_read_that_does_not_say_why_keeps_the_reason_the_stream_gave():
    tracker = OrderTracker()
    tracker.on_order(stop(OrderStatus.REJECTED, reason=REASON), NOW)
    tracker.on_order(stop(OrderStatus.REJECTED), NOW + timedelta(seconds=2))
    assert tracker.for_symbol(SYMBOL)["tb-BTCUSDT-k-sl1"].order.reason == REASON


# --- the alert --------------------------------------------------------------------------------

def sl_missing(event: LegGone) -> Alert:
    result = step(protected_position(), event, NOW, Policy())
    [alert] = [a for a in result.actions if isinstance(a, Alert)]
    assert alert.name is AlertName.SL_MISSING
    return alert


def test_sl_missing_of_a_rejected_stop_quotes_the_exchanges_reason():
    stop_id = protected_position().stop.order.client_id
    alert = sl_missing(LegGone(OrderRole.STOP_LOSS, stop_id, True, "REJECTED", REASON))
    assert f'Binance said "{REASON}"' in alert.text and "REJECTED" in alert.text
    assert "replacing it now" in alert.text and stop_id in alert.text


def test_sl_missing_of_a_hand_cancel_reads_as_before():
    stop_id = protected_position().stop.order.client_id
    alert = sl_missing(LegGone(OrderRole.STOP_LOSS, stop_id, True, "CANCELED"))
    assert "cancelled outside the agent (by hand?)" in alert.text
    assert "Binance said" not in alert.text


# --- the real agent against the fake Binance ----------------------------------------------

@pytest.fixture(params=["algo-api", "classic"])
async def exchange(request):
    async with FakeBinance(prices={SYMBOL: PRICE},
                           algo_api=request.param == "algo-api") as server:
        yield server


def sl_missing_texts(engine) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(50) if a.name == AlertName.SL_MISSING]


async def test_a_rejected_trigger_is_replaced_and_the_alert_says_why(exchange, tmp_path):
    async with running_agent(exchange, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await exchange.reject_trigger(SYMBOL, stop_id, REASON)

        assert await eventually(lambda: len(sl_missing_texts(engine)) == 1, 5.0)
        assert f'Binance said "{REASON}"' in sl_missing_texts(engine)[0]
        assert await eventually(
            lambda: [i for i in live_ids(exchange, OrderType.STOP_MARKET) if i != stop_id], 5.0)


async def test_a_stop_cancelled_by_hand_still_says_only_that(exchange, tmp_path):
    async with running_agent(exchange, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await exchange.cancel_order_by_hand(SYMBOL, stop_id)

        assert await eventually(lambda: len(sl_missing_texts(engine)) == 1, 5.0)
        assert "Binance said" not in sl_missing_texts(engine)[0]


async def test_the_fakes_trigger_reject_has_the_documented_fields():
    """Without the Algo Order API the fake tells a rejected trigger as the page does."""
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=False) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        client_id = "tb-BTCUSDT-k-sl1"
        fake.sim.place(OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, Decimal("0.1"),
                                    client_id, OrderRole.STOP_LOSS,
                                    trigger_price=PRICE - 1000, reduce_only=True), fake.now())
        fake.endpoints.take_stream_events()
        fake.endpoints.ledger.reject_reasons[client_id] = REASON
        fake.endpoints.publish(fake.sim.reject_by_exchange(SYMBOL, client_id, fake.now()))
        [event] = fake.endpoints.take_stream_events()
    doc = documented("event_conditional_order_trigger_reject")
    assert shape_problems(event, doc.payload, doc.optional_fields) == []
    assert event["or"]["r"] == REASON


async def test_the_control_api_plays_a_rejected_trigger_for_a_server_in_another_process():
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, aiohttp.ClientSession() as http:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        client_id = "tb-BTCUSDT-k-sl1"
        fake.sim.place(OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, Decimal("0.1"),
                                    client_id, OrderRole.STOP_LOSS,
                                    trigger_price=PRICE - 1000, reduce_only=True), fake.now())
        url = f"{fake.url}/_control/reject_trigger"
        async with http.post(url, json={"symbol": SYMBOL, "client_id": "nope"}) as answer:
            assert answer.status == 400 and "-2011" in (await answer.json())["error"]
        async with http.post(url, json={"symbol": SYMBOL, "client_id": client_id,
                                        "reason": REASON}) as answer:
            assert answer.status == 200
        assert fake.sim.order(SYMBOL, client_id).status is OrderStatus.REJECTED
