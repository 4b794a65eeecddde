"""A protective placement answered with a refusal that means "it is covered already" is read
back by its client id ("verify", trader/exchange/errors.py), and what the order found covers
follows one rule (`Order.closes`): a closePosition order covers the whole position.

Binance's closePosition stop has no quantity of its own: "quantity: Cannot be sent with
closePosition=true (Close-All)", and "If triggered, close all current long position (if
SELL) or current short position (if BUY)" (New Algo Order, https://developers.binance.com/
docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order; the same for New Order
.../trade/rest-api/New-Order). The query pages (.../Query-Order "origQty", .../Query-Algo-Order
"quantity") show no closePosition example; the paper exchange and the fake Binance report
"0" (no quantity was sent). Whatever the value, the order closes the whole position. Read as covering 0, the leg was placed again:
a second stop beside one that covers the position (the revert c6d9e0b's finding).

Here the stop cancelled by hand is replaced, and the exchange answers the replacement with
-4130 ("An open stop or take profit order with GTE and closePosition in the direction is
existing") or -4116 ("ClientOrderId is duplicated", USD-M futures error codes:
https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code) because a
closePosition stop under that very client id rests already (placed by hand, or our own
earlier request that landed)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, World
from tests.positions import leg_id, make
from tests.test_move_stop_command import stops, world_with_a_long
from trader.domain import ExchangePosition, Order, OrderRole, OrderStatus, OrderType, Side
from trader.events import LegPlaced, PlaceLeg, Policy
from trader.evolve import evolve
from trader.exchange.base import ExchangeError
from trader.lifecycle import step
from trader.observe import SymbolView, observe
from trader.order_tracker import TrackedOrder
from trader.position import PositionState

QUANTITY = Decimal("0.010")
NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)

REFUSALS = {
    -4130: "An open stop or take profit order with GTE and closePosition in the direction "
           "is existing.",
    -4116: "ClientOrderId is duplicated.",
}


def a_close_position_stop_holds_the_id(world: World, code: int) -> list[str]:
    """The next stop placement finds a closePosition stop resting under its own client id
    (placed just before) and is refused with `code`; later ones go through. Returns the
    refused ids."""
    real_place, refused = world.paper.place, []

    async def place(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET and not refused:
            await real_place(evolve(request, close_position=True, reduce_only=False,
                                    quantity=request.quantity * 0))
            refused.append(request.client_id)
            raise ExchangeError(code, REFUSALS[code])
        return await real_place(request)
    world.paper.place = place  # type: ignore[method-assign]
    return refused


@pytest.mark.parametrize("code", sorted(REFUSALS))
async def test_a_close_position_stop_found_on_read_back_covers_the_position(tmp_path, code):
    """No second stop, no refusal alert, no retry: the closePosition stop is the leg."""
    world = await world_with_a_long(tmp_path)
    refused = a_close_position_stop_holds_the_id(world, code)
    stop_id = world.engine.positions[SYMBOL].stop.order.client_id
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, stop_id, world.clock.now()))

    for _ in range(4):
        await world.step()

    assert len(refused) == 1
    live = [(o.client_id, o.close_position) for o in await stops(world)]
    assert live == [(refused[0], True)], live
    position = world.engine.positions[SYMBOL]
    stop = position.stop
    assert stop.order is not None and stop.order.client_id == refused[0]
    assert stop.covers(position.quantity)
    assert (stop.pending, stop.superseded, stop.retry_at) == (None, (), None)
    assert position.state is PositionState.PROTECTED
    for name in ("PROTECTION", "POSITION_UNPROTECTED"):
        assert not world.alerts(name), world.alerts(name)


# --- the observation: a pending placement found live through the order tracker ---------------

def test_a_pending_stop_observed_live_as_a_close_position_order_covers_the_position():
    """The stream (or a snapshot) shows the placement the leg waits for as a closePosition
    stop, quantity 0 as Binance reports it: placed, covering the whole position; nothing is
    placed again."""
    position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", "49500",
                    "51000")
    position, pending = position.placing(evolve(position.stop, order=None))
    found = Order(SYMBOL, pending, Side.SELL, OrderType.STOP_MARKET, OrderStatus.NEW,
                  Decimal(0), trigger_price=Decimal("49500"), close_position=True,
                  updated_at=NOW)
    target = Order(SYMBOL, leg_id(SYMBOL, OrderRole.TAKE_PROFIT), Side.SELL,
                   OrderType.TAKE_PROFIT_MARKET, OrderStatus.NEW, QUANTITY,
                   trigger_price=Decimal("51000"), reduce_only=True, updated_at=NOW)
    live = [found, target]
    view = SymbolView(SYMBOL, NOW, ExchangePosition(SYMBOL, QUANTITY, Decimal("50000")),
                      {o.client_id: TrackedOrder(o, NOW) for o in live}, live,
                      Decimal("50100"))

    events = observe(position, view)

    assert LegPlaced(OrderRole.STOP_LOSS, pending, Decimal("49500"), QUANTITY) in events
    actions = []
    for event in events:
        result = step(position, event, NOW, Policy())
        position, actions = result.position, actions + result.actions
    assert not [a for a in actions if isinstance(a, PlaceLeg)], actions
    assert position.stop.covers(QUANTITY) and position.state is PositionState.PROTECTED
