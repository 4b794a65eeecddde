"""A leg placement whose answer was lost (pending: probed, never resent) and that the stream
then reports FILLED (its ALGO_UPDATE FINISHED, https://developers.binance.com/docs/
derivatives/usds-margined-futures/user-data-streams/Event-Algo-Order-Update) is a fill, not a
refusal. The two-TP plan's TP1 fills without closing the position: read as "placement
refused: order FILLED", it raised a refusal alert and was placed again on the retry
schedule, a second TP1 closing a second part.

observe() is pure: the view is what the order tracker knows after the stream's events."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.positions import leg_id, make
from trader.domain import ExchangePosition, Order, OrderRole, OrderStatus, OrderType, Side
from trader.events import LegFilled, LegRejected, PlaceLeg, Policy
from trader.evolve import evolve
from trader.lifecycle import step
from trader.observe import SymbolView, observe
from trader.order_tracker import TrackedOrder
from trader.position import ExitPlan, Leg, PositionState

SYMBOL, T1 = "BTCUSDT", OrderRole.TAKE_PROFIT_1
QUANTITY, HALF = Decimal("0.010"), Decimal("0.005")
NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_a_pending_tp1_the_stream_reports_filled_is_a_fill_and_not_placed_again():
    position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", "49500",
                    "51000")
    pending = leg_id(SYMBOL, T1, 1)
    position = evolve(position, exit_plan=ExitPlan.TWO, tp1_quantity=HALF,
                      take_profit_1=Leg(T1, Decimal("50500"), pending=pending),
                      seq={**position.seq, T1.value: 1})
    filled = Order(SYMBOL, pending, Side.SELL, OrderType.TAKE_PROFIT_MARKET,
                   OrderStatus.FILLED, HALF, filled_qty=HALF, avg_price=Decimal("50500"),
                   trigger_price=Decimal("50500"), reduce_only=True, updated_at=NOW)
    legs = [Order(SYMBOL, leg_id(SYMBOL, role), Side.SELL, kind, OrderStatus.NEW, QUANTITY,
                  trigger_price=price, reduce_only=True, updated_at=NOW)
            for role, kind, price in ((OrderRole.STOP_LOSS, OrderType.STOP_MARKET,
                                       Decimal("49500")),
                                      (OrderRole.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET,
                                       Decimal("51000")))]
    known = {o.client_id: TrackedOrder(o, NOW - timedelta(minutes=1)) for o in legs}
    known[pending] = TrackedOrder(filled, NOW - timedelta(seconds=30))
    view = SymbolView(SYMBOL, NOW, ExchangePosition(SYMBOL, QUANTITY - HALF, Decimal("50000")),
                      known, legs, Decimal("50600"))

    events = observe(position, view)

    assert not [e for e in events if isinstance(e, LegRejected)], events
    assert LegFilled(T1, pending, HALF, complete=True) in events
    actions = []
    for event in events:
        result = step(position, event, NOW, Policy())
        position, actions = result.position, actions + result.actions
    assert not [a for a in actions if isinstance(a, PlaceLeg) and a.role is T1], actions
