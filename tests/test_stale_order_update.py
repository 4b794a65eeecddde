"""A late ORDER_TRADE_UPDATE (or a REST read older than what the stream said) never lowers
what the order tracker knows of an order: its cumulative filled quantity `z` never goes
down, and a finished order (FILLED, CANCELED, EXPIRED, REJECTED) is never made live again.

Binance promises order only "for the same user on a single Websocket connection" and per
event type ("Message Ordering Guarantee", https://developers.binance.com/docs/derivatives/
usds-margined-futures/user-data-streams): across a reconnect, a second connection, or
against a REST answer taken before the event, an older state can arrive after a newer one.
The event is the documented example of https://developers.binance.com/docs/derivatives/
usds-margined-futures/user-data-streams/Event-Order-Update (tests/fixtures/binance/
event_order_trade_update.json), decoded by the real codec, its fields set for each state.

Before the fix the tracker kept whatever came last: a quote's first NEW (z 0) delivered
after its PARTIALLY_FILLED read "nothing filled", a REST read older than the stream undid a
partial fill (the unit cases below failed). The maker entry still bought only the rest,
because it reads the quote back after its cancel; the engine case guards that path."""

import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, make_world
from tests.fakes import binance_wire as wire
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.test_binance_protection import running_agent
from tests.test_maker_engine import MAKER, assert_protected_for, fill_part, later, quoting_long
from tests.test_stale_account_update import fed_then_ticked, marker
from trader.domain import ZERO, Order, OrderStatus, OrderType, Side
from trader.exchange.base import OrderUpdate
from trader.exchange.binance_event_codec import update_from_order_event
from trader.order_tracker import OrderTracker

D = Decimal
T0 = 1568879465650          # the example's T


def order_event(status: str, filled: str, moment: int, execution: str = "TRADE") -> Order:
    """The documented example as a plain STOP_MARKET of ours in state `status`, with the
    cumulative filled quantity z = `filled` (q 0.010) and transaction time `moment`."""
    event = payload("event_order_trade_update")
    event["T"], event["E"] = moment, moment + 1
    o = event["o"]
    o.update({"c": "tb-BTCUSDT-k1-sl1", "o": "STOP_MARKET", "ot": "STOP_MARKET", "q": "0.010",
              "X": status, "x": execution, "z": filled, "T": moment, "ps": "BOTH",
              "l": filled if execution == "TRADE" else "0", "ap": "7100" if D(filled) else "0",
              "L": "7100", "t": 7})
    return update_from_order_event(event).order


def tracked_after(*orders: Order) -> Order:
    tracker = OrderTracker()
    for order in orders:
        assert order.updated_at is not None
        tracker.on_order(order, order.updated_at)
    known = tracker.get("tb-BTCUSDT-k1-sl1")
    assert known is not None
    return known.order


NEW = order_event("NEW", "0", T0, execution="NEW")
PART = order_event("PARTIALLY_FILLED", "0.004", T0 + 10)
MORE = order_event("PARTIALLY_FILLED", "0.007", T0 + 20)
FILLED = order_event("FILLED", "0.010", T0 + 30)
CANCELED = order_event("CANCELED", "0.007", T0 + 30, execution="CANCELED")
CANCELED_EMPTY = order_event("CANCELED", "0", T0 + 40, execution="CANCELED")


@pytest.mark.parametrize(("delivered", "status", "filled"), [
    ((PART, NEW), OrderStatus.PARTIALLY_FILLED, "0.004"),
    ((MORE, PART), OrderStatus.PARTIALLY_FILLED, "0.007"),
    ((MORE, NEW, PART), OrderStatus.PARTIALLY_FILLED, "0.007"),
    ((FILLED, MORE), OrderStatus.FILLED, "0.010"),
    ((CANCELED, NEW), OrderStatus.CANCELED, "0.007"),
    ((NEW, PART, MORE, FILLED), OrderStatus.FILLED, "0.010"),
    ((MORE, CANCELED_EMPTY), OrderStatus.CANCELED, "0.007"),
    ((FILLED, CANCELED_EMPTY), OrderStatus.FILLED, "0.010"),
    # a cancel's answer written before the fill that preceded it (DELETE /fapi/v1/order
    # "executedQty": "0", tests/test_cancel_answer_after_the_stream.py), the stream's
    # PARTIALLY_FILLED delivered after: still CANCELED, with the fill it had
    ((CANCELED_EMPTY, MORE), OrderStatus.CANCELED, "0.007"),
    ((CANCELED_EMPTY, MORE, PART), OrderStatus.CANCELED, "0.007"),
], ids=["new-after-partial", "older-z", "new-and-older-z", "partial-after-filled",
        "new-after-canceled", "in-order", "finished-without-z-after-partial",
        "finished-again-with-less", "partial-after-finished-without-z",
        "partials-after-finished-without-z"])
def test_a_late_event_never_lowers_the_fill_nor_revives_a_finished_order(delivered, status,
                                                                        filled):
    known = tracked_after(*delivered)
    assert (known.status, known.filled_qty) == (status, D(filled))


def test_a_rest_read_older_than_the_stream_does_not_undo_it():
    """GET /fapi/v1/order answered from before the partial fill the stream told: same z."""
    read = NEW                  # what GET /fapi/v1/order said, updateTime before PART
    tracker = OrderTracker()
    assert PART.updated_at is not None
    tracker.on_order(PART, PART.updated_at)
    tracker.on_order(read, PART.updated_at + timedelta(seconds=1))   # learned later, older
    known = tracker.get(PART.client_id)
    assert known is not None and known.order.filled_qty == D("0.004")
    assert known.order.status is OrderStatus.PARTIALLY_FILLED


def test_a_newer_state_is_still_taken():
    """The guard drops only older states: an amendment (same z, newer T) is taken."""
    amended = order_event("NEW", "0", T0 + 5, execution="AMENDMENT")
    amended = replace(amended, quantity=D("0.020"))
    assert tracked_after(NEW, amended).quantity == D("0.020")
    assert tracked_after(NEW, PART).filled_qty == D("0.004")


async def test_a_late_new_of_a_part_filled_quote_does_not_make_the_agent_buy_the_plan_again(
        tmp_path):
    """Through the real engine on the paper exchange: the quote part-fills, its first NEW
    (z 0, older T) arrives after; at the timeout only the rest goes at market, and the legs
    cover exactly the planned size."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    planned = position.quantity
    part = world.paper.rules(SYMBOL).round_qty(planned * D("0.4"))
    first_new = world.paper.sim.order(SYMBOL, quote.client_id)
    assert first_new is not None and first_new.filled_qty == ZERO
    fill_part(world, quote.client_id, part)
    stale_time = first_new.updated_at or world.clock.now() - timedelta(seconds=1)
    world.paper.publish([OrderUpdate(first_new, None, stale_time)])
    await later(world, 5)
    assert world.engine.positions[SYMBOL].quantity == part
    await later(world, 26)                        # 31 s: the time is up, the rest at market
    for _ in range(2):
        await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == planned
    await assert_protected_for(world, planned)


async def test_a_late_order_update_on_the_socket_does_not_lower_what_the_agent_knows(tmp_path):
    """Through the user-data socket, python-binance's client and the real codec and engine
    (the fake Binance sends the page's event shape, tests/fakes/binance_wire.py): an order
    on the traded symbol (somebody's LIMIT sell) reported PARTIALLY_FILLED, then its NEW
    from a second earlier, delivered last."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            running_agent(fake, tmp_path, streams=True) as engine:
        order = Order(symbol=SYMBOL, client_id="web_sell_1", side=Side.SELL,
                      type=OrderType.LIMIT, status=OrderStatus.NEW, quantity=D("0.050"),
                      price=D("51000"))
        part = replace(order, status=OrderStatus.PARTIALLY_FILLED, filled_qty=D("0.020"),
                       avg_price=D("51000"))
        now = int(time.time() * 1000)
        await fake.hub.send_user([wire.order_trade_update(part, None, 77, now),
                                  wire.order_trade_update(order, None, 77, now - 1000),
                                  marker(now)])
        await fed_then_ticked(engine)
        known = engine.tracker.get("web_sell_1")
        assert known is not None
        assert (known.order.status, known.order.filled_qty) == (OrderStatus.PARTIALLY_FILLED,
                                                                D("0.020"))
