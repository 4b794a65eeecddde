"""`observe.steady`: the engine skips observing a settled position only when every event the
observation would give is a LegSeen that `protection.confirms` skips. Checked against
`observe` itself over many exchange views, and case by case where the observation must run:
a leg that vanished, filled, was cancelled or partly filled, a trigger moved by hand, the
position resized or gone, an order nobody's leg holds."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tests.positions import leg_id, make
from tests.test_step_fast_paths import LEVELS, positions, with_first_target
from trader import protection
from trader.domain import ExchangePosition, Order, OrderStatus, OrderType, Side
from trader.events import LegSeen, Policy
from trader.evolve import evolve
from trader.observe import LEG_TYPES, SymbolView, observe, steady
from trader.order_tracker import TrackedOrder
from trader.position import Leg, Position

D = Decimal
NOW = datetime(2024, 1, 1, 2, tzinfo=UTC)
SYMBOL = "BTCUSDT"


def exchange_order(position: Position, leg: Leg, how: str = "as placed") -> Order:
    """The exchange's order of the leg, as placed or as found in one of its other states."""
    assert leg.order is not None
    order = Order(SYMBOL, leg.order.client_id, position.side.opposite, LEG_TYPES[leg.role],
                  OrderStatus.NEW, leg.order.quantity, trigger_price=leg.order.trigger_price,
                  reduce_only=True)
    changes: dict = {
        "as placed": {}, "filled": {"status": OrderStatus.FILLED,
                                    "filled_qty": leg.order.quantity},
        "cancelled": {"status": OrderStatus.CANCELED},
        "partly filled": {"status": OrderStatus.PARTIALLY_FILLED,
                          "filled_qty": leg.order.quantity / 2},
        "moved": {"trigger_price": leg.order.trigger_price + D("10")},
        "no trigger": {"trigger_price": None},
        "close position": {"close_position": True, "quantity": D(0)},
        "bigger": {"quantity": leg.order.quantity * 2},
        # somebody's order under the leg's id, once the leg's order was cancelled
        "another side": {"side": position.side, "type": OrderType.LIMIT, "price":
                         leg.order.trigger_price, "trigger_price": None, "reduce_only": False},
        "a limit": {"type": OrderType.LIMIT, "price": leg.order.trigger_price,
                    "trigger_price": None, "reduce_only": False},
        # a triggered conditional order's child, should its report name the child's type
        "triggered": {"type": OrderType.MARKET, "trigger_price": None},
    }[how]
    return replace(order, **changes)


def view_of(position: Position, hows: dict[str, str] | None = None, size: Decimal | None = None,
            side: Side | None = None, extra: list[Order] = (), absent: str = "",  # type: ignore[assignment]
            untracked: str = "") -> SymbolView:
    hows = hows or {}
    orders = [exchange_order(position, leg, hows.get(leg.role.value, "as placed"))
              for leg in position.legs if leg.order is not None] + list(extra)
    side = side or position.side
    quantity = (position.quantity if size is None else size) * side.sign
    tracked = {o.client_id: TrackedOrder(o, NOW - timedelta(minutes=1),
                                         NOW if o.client_id == absent else None)
               for o in orders if o.client_id != untracked}
    live = [o for o in orders if o.status.live and o.client_id != absent]
    return SymbolView(SYMBOL, NOW, ExchangePosition(SYMBOL, quantity, D("50000")), tracked,
                      live, D("50000"))


def skipped_in_full(position: Position, view: SymbolView) -> bool:
    """The engine's full observation would skip every event (what `steady` stands for)."""
    settled = protection.settled(position)
    return all(type(event) is LegSeen and protection.confirms(position, event, settled)
               for event in observe(position, view))


def foreign_stop(position: Position) -> Order:
    return Order(SYMBOL, "by-hand-1", position.side.opposite, OrderType.STOP_MARKET,
                 OrderStatus.NEW, position.quantity, trigger_price=D("49000"), reduce_only=True)


hows = st.sampled_from(["as placed", "as placed", "as placed", "filled", "cancelled",
                        "partly filled", "moved", "no trigger", "close position", "bigger",
                        "another side", "a limit", "triggered"])


@given(position=positions(), stop=hows, take_profit=hows, first=hows,
       size=st.sampled_from([None, D("0.1"), D("0.3")]),
       side=st.sampled_from([None, Side.BUY, Side.SELL]),
       extra=st.sampled_from(["", "foreign", "newer"]),
       missing=st.sampled_from(["", "absent", "untracked"]))
def test_steady_is_what_the_full_observation_skips(position: Position, stop: str,
                                                   take_profit: str, first: str,
                                                   size: Decimal | None, side: Side | None,
                                                   extra: str, missing: str) -> None:
    if not protection.settled(position):
        return
    others = {"": [], "foreign": [foreign_stop(position)], "newer": [replace(
        exchange_order(position, position.stop),
        client_id=leg_id(SYMBOL, position.stop.role, 2))]}[extra]
    victim = position.stop.order.client_id if missing else ""  # type: ignore[union-attr]
    view = view_of(position, {"sl": stop, "tp": take_profit, "t1": first}, size, side, others,
                   absent=victim if missing == "absent" else "",
                   untracked=victim if missing == "untracked" else "")
    if steady(position, view):
        assert skipped_in_full(position, view)


def settled_long(two_targets: bool = False) -> Position:
    stop, take_profit, _ = LEVELS[Side.BUY]
    position = make(stop=stop, tp=take_profit, quantity="0.2")
    position = with_first_target(position, "0.1") if two_targets else position
    assert protection.settled(position)
    return position


def test_the_exchange_as_recorded_is_steady() -> None:
    for two_targets in (False, True):
        position = settled_long(two_targets)
        view = view_of(position)
        assert steady(position, view) and skipped_in_full(position, view)
        # what such an order reads back as; one sent rounded up covers its leg's part only
        for how in ("no trigger", "close position", "bigger"):
            view = view_of(position, {"sl": how})
            assert steady(position, view) and skipped_in_full(position, view)


def observed_in_full(position: Position, view: SymbolView) -> None:
    """Not steady, and rightly: the observation has something to step."""
    assert not steady(position, view)
    assert not skipped_in_full(position, view)


def test_a_leg_that_changed_on_the_exchange_is_observed() -> None:
    position = settled_long(two_targets=True)
    for role in ("sl", "tp", "t1"):
        for how in ("filled", "cancelled", "partly filled", "moved"):
            observed_in_full(position, view_of(position, {role: how}))
    # TP2 closing the whole position where it should close the rest only
    observed_in_full(position, view_of(position, {"tp": "close position"}))
    stop_id = position.stop.order.client_id  # type: ignore[union-attr]
    observed_in_full(position, view_of(position, absent=stop_id))
    observed_in_full(position, view_of(position, untracked=stop_id))


def test_a_resized_or_gone_position_or_an_unheld_order_is_observed() -> None:
    position = settled_long()
    observed_in_full(position, view_of(position, size=D("0.1")))
    observed_in_full(position, view_of(position, side=Side.SELL))
    observed_in_full(position, view_of(position, size=D(0)))
    newer = replace(exchange_order(position, position.stop),
                    client_id=leg_id(SYMBOL, position.stop.role, 2))
    observed_in_full(position, view_of(position, extra=[newer]))
    # somebody else's order: nothing to step, but looked at in full all the same
    assert not steady(position, view_of(position, extra=[foreign_stop(position)]))


def test_an_order_of_another_side_or_type_under_a_legs_id_is_no_leg() -> None:
    """The leg's order was cancelled and somebody placed an order under its client id
    (Binance checks a newClientOrderId against open orders only): a BUY LIMIT under a long's
    stop id protects nothing. Before, it was seen as the stop (the observation looked at
    the id and the status alone: the long believed protected); now the leg is gone, for
    sure (the id's holder is not ours), and replaced with SL_MISSING."""
    from trader.events import LegGone
    position = settled_long(two_targets=True)
    for role, leg in (("sl", position.stop), ("tp", position.take_profit)):
        for how in ("another side", "a limit"):
            view = view_of(position, {role: how})
            assert not steady(position, view)
            held = view.orders[leg.order.client_id].order  # type: ignore[union-attr]
            gone = [e for e in observe(position, view) if isinstance(e, LegGone)]
            assert gone == [LegGone(leg.role, held.client_id, confirmed=True,
                                    status=f"held by a {held.side.value} {held.type.value}")]
    stepped, actions = protection.gone(position, position.stop.role,
                                       position.stop.order.client_id,  # type: ignore[union-attr]
                                       True, NOW, Policy(), "held by a BUY LIMIT")
    assert stepped.stop.order is None
    assert "held by a BUY LIMIT" in actions[0].text


def test_a_triggered_stops_child_order_is_still_the_leg() -> None:
    """The negative: a report of the stop's own order once triggered, should it name the
    child's MARKET type, is the leg (a fill on its way), not an order holding its id."""
    from trader.events import LegGone
    position = settled_long()
    events = observe(position, view_of(position, {"sl": "triggered"}))
    assert not [e for e in events if isinstance(e, LegGone)], events


def test_a_fill_of_an_order_of_another_side_under_a_legs_id_is_not_the_legs() -> None:
    """A BUY LIMIT under a long's TP1 or stop id that filled (the long grew) is no fill of
    the leg: TP1 was counted as filled (the stop moved to breakeven) and the stop as filled
    until the 10 s FILL_REPORT_LAG said otherwise. Found by a reviewer."""
    from trader.events import LegFilled, LegGone
    position = settled_long(two_targets=True)
    for role, leg in (("t1", position.take_profit_1), ("sl", position.stop)):
        assert leg is not None and leg.order is not None
        view = view_of(position, {role: "another side"})
        held = view.orders[leg.order.client_id]
        filled = replace(held.order, status=OrderStatus.FILLED, filled_qty=held.order.quantity)
        view.orders[leg.order.client_id] = replace(held, order=filled, learned_at=NOW)  # type: ignore[index]
        view.live[:] = [o for o in view.live if o.client_id != leg.order.client_id]
        events = observe(position, view)
        assert not [e for e in events if isinstance(e, LegFilled)], events
        assert LegGone(leg.role, leg.order.client_id, confirmed=True,
                       status="held by a BUY LIMIT") in events


def test_a_pending_placement_whose_id_another_order_holds_is_refused() -> None:
    """A placement awaiting its answer, its id found held by a BUY LIMIT: not LegPlaced
    (the long believed protected by it) but refused, so the leg is placed again under its
    next id."""
    from trader.events import LegPlaced, LegRejected
    position = settled_long()
    stop = position.stop
    assert stop.order is not None
    pending_id = leg_id(SYMBOL, stop.role, 2)
    waiting = position.with_leg(evolve(stop, pending=pending_id))
    placed = replace(exchange_order(position, stop), client_id=pending_id)
    for how, expected in (("as placed", LegPlaced), ("another side", LegRejected)):
        order = placed if how == "as placed" else replace(
            placed, side=Side.BUY, type=OrderType.LIMIT, trigger_price=None,
            price=D("40000"), reduce_only=False)
        view = view_of(waiting, extra=[order])
        events = [e for e in observe(waiting, view) if getattr(e, "client_id", "") == pending_id]
        assert [type(e) for e in events] == [expected], events
