"""The very report the tracker keeps, fed again at the same moment (the paper exchange's
stream event of an order whose answer the executor fed first), changes nothing and is not
kept again (OrderTracker.on_order); a report at a later moment, or of an order marked
absent, is kept as before."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trader.domain import Order, OrderStatus, OrderType, Side
from trader.order_tracker import OrderTracker

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def stop(status: OrderStatus = OrderStatus.NEW) -> Order:
    return Order("BTCUSDT", "tb-BTCUSDT-k-sl1", Side.SELL, OrderType.STOP_MARKET, status,
                 Decimal("0.01"), trigger_price=Decimal("100"))


def test_the_same_report_at_the_same_moment_is_not_kept_again() -> None:
    tracker = OrderTracker()
    placed = stop()
    tracker.on_order(placed, T0)
    kept = tracker.get(placed.client_id)
    view = tracker.for_symbol("BTCUSDT")
    tracker.on_order(placed, T0)
    assert tracker.get(placed.client_id) is kept       # not replaced by an equal copy
    assert tracker.for_symbol("BTCUSDT") is view        # nothing changed: the same view
    assert tracker.live("BTCUSDT") == [placed]


def test_the_same_report_later_moves_learned_at() -> None:
    """Negative: a later moment is news (a snapshot requested between the two reports must
    not mark the order absent)."""
    tracker = OrderTracker()
    placed = stop()
    tracker.on_order(placed, T0)
    later = T0 + timedelta(seconds=5)
    tracker.on_order(placed, later)
    assert tracker.get(placed.client_id).learned_at == later
    tracker.on_snapshot("BTCUSDT", [], T0 + timedelta(seconds=2))
    assert tracker.live("BTCUSDT") == [placed]          # reported live after that snapshot


def test_the_same_report_of_an_order_marked_absent_clears_the_absence() -> None:
    """Negative: the fast path is not taken for an order a snapshot found missing."""
    tracker = OrderTracker()
    placed = stop()
    tracker.on_order(placed, T0)
    tracker.on_snapshot("BTCUSDT", [], T0)              # requested at T0: absent since T0
    assert tracker.get(placed.client_id).absent_since == T0
    assert tracker.live("BTCUSDT") == []
    tracker.on_order(placed, T0)
    assert tracker.get(placed.client_id).absent_since is None
    assert tracker.live("BTCUSDT") == [placed]


def test_an_equal_report_that_is_another_object_is_merged_as_before() -> None:
    tracker = OrderTracker()
    tracker.on_order(stop(), T0)
    view = tracker.for_symbol("BTCUSDT")
    again = stop()
    tracker.on_order(again, T0)
    assert tracker.get(again.client_id).order is again
    assert tracker.for_symbol("BTCUSDT") is not view    # kept (a copy of the dict)
