"""The position record and its two protective legs (trader/position.py): when a leg covers or
matches the position, when a position counts as protected, its deterministic client ids,
which orders it owns, the money at risk, and replacing one leg."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.positions import leg_id, make
from trader.domain import ClientId, OrderRole, Side, position_key
from trader.position import Leg, LegOrder, LegStatus, Position, PositionState

D = Decimal
OPENED_AT = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
KEY = position_key(OPENED_AT)


def long_position(**changes: object) -> Position:
    """Long 2 at 100, stop 95, take-profit 110, both legs live for the whole quantity."""
    fields: dict[str, object] = dict(key=KEY, quantity="2", entry="100", stop="95", tp="110")
    fields.update(changes)
    return make(**fields)  # type: ignore[arg-type]


def stop_leg(order_qty: str | None = "2", order_price: str = "95", trigger: str = "95",
             status: LegStatus = LegStatus.LIVE) -> Leg:
    order = None if order_qty is None else LegOrder(
        leg_id("BTCUSDT", OrderRole.STOP_LOSS, key=KEY), D(order_price), D(order_qty), status)
    return Leg(OrderRole.STOP_LOSS, D(trigger), order)


# --- Leg.covers / Leg.matches -----------------------------------------------------------

def test_a_leg_without_an_order_covers_nothing() -> None:
    assert not stop_leg(order_qty=None).covers(D("2"))
    assert not stop_leg(order_qty=None).matches(D("2"))


def test_a_live_order_covers_its_quantity_and_less_but_not_more() -> None:
    leg = stop_leg(order_qty="2")
    assert leg.covers(D("2")) and leg.covers(D("1.5"))
    assert not leg.covers(D("2.001"))        # the position grew: the order closes too little


def test_a_missing_order_covers_nothing_whatever_its_quantity() -> None:
    assert not stop_leg(status=LegStatus.MISSING).covers(D("2"))
    assert not stop_leg(status=LegStatus.MISSING).matches(D("2"))


def test_matches_needs_exactly_the_quantity_and_the_planned_trigger_price() -> None:
    assert stop_leg().matches(D("2"))
    oversized = stop_leg(order_qty="3")      # covers after a partial, but must be resized
    assert oversized.covers(D("2")) and not oversized.matches(D("2"))
    moved = stop_leg(trigger="100.2")        # breakeven planned, the old stop still live
    assert moved.covers(D("2")) and not moved.matches(D("2"))


@given(order_qty=st.one_of(st.none(), st.decimals(D("0.001"), D("5"), places=3)),
       quantity=st.decimals(D("0.001"), D("5"), places=3),
       order_price=st.sampled_from([D("95"), D("96")]),
       status=st.sampled_from(list(LegStatus)))
def test_a_matching_leg_always_covers(order_qty: Decimal | None, quantity: Decimal,
                                      order_price: Decimal, status: LegStatus) -> None:
    leg = stop_leg(None if order_qty is None else str(order_qty), str(order_price), "95", status)
    if leg.matches(quantity):
        assert leg.covers(quantity)
    assert leg.covers(quantity) == (order_qty is not None and status is LegStatus.LIVE
                                    and order_qty >= quantity)


def test_only_an_order_with_one_of_our_client_ids_is_ours() -> None:
    assert stop_leg().order is not None and stop_leg().order.ours  # type: ignore[union-attr]
    by_hand = LegOrder("android_Xk2Pq", D("95"), D("2"))
    assert not by_hand.ours


# --- Position.protected -------------------------------------------------------------------

def test_a_position_is_protected_only_when_both_legs_cover_its_quantity() -> None:
    position = long_position()
    assert position.protected
    assert not position.with_leg(stop_leg(order_qty=None)).protected
    assert not position.with_leg(replace(position.take_profit, order=None)).protected
    assert not position.with_leg(stop_leg(status=LegStatus.MISSING)).protected


def test_a_position_that_grew_past_its_legs_is_not_protected() -> None:
    assert not replace(long_position(), quantity=D("2.5")).protected
    assert replace(long_position(), quantity=D("1")).protected      # after a partial close


def test_protected_does_not_care_where_the_stop_is_planned() -> None:
    """A planned move (breakeven, trail) keeps the live old stop: still protected meanwhile."""
    position = long_position()
    moving = position.with_leg(replace(position.stop, trigger_price=D("100.2")))
    assert moving.protected and not moving.stop.matches(moving.quantity)


# --- client ids ---------------------------------------------------------------------------

def test_next_client_id_counts_each_role_separately() -> None:
    position = long_position(seq={})
    position, first_sl = position.next_client_id(OrderRole.STOP_LOSS)
    position, second_sl = position.next_client_id(OrderRole.STOP_LOSS)
    position, first_tp = position.next_client_id(OrderRole.TAKE_PROFIT)
    assert (first_sl, second_sl, first_tp) == (
        f"tb-BTCUSDT-{KEY}-sl1", f"tb-BTCUSDT-{KEY}-sl2", f"tb-BTCUSDT-{KEY}-tp1")
    assert position.seq == {"sl": 2, "tp": 1}


def test_next_client_id_continues_after_the_ids_already_used() -> None:
    position = long_position()                       # en1, sl1, tp1 already sent
    _, client_id = position.next_client_id(OrderRole.STOP_LOSS)
    assert client_id == f"tb-BTCUSDT-{KEY}-sl2"


def test_next_client_id_leaves_the_original_position_unchanged() -> None:
    original = long_position(seq={})
    advanced, client_id = original.next_client_id(OrderRole.ENTRY)
    assert original.seq == {}
    assert advanced.seq == {"en": 1}
    assert ClientId.parse(client_id) == ClientId("BTCUSDT", KEY, OrderRole.ENTRY, 1)


@pytest.mark.parametrize("role", list(OrderRole))
def test_a_position_owns_every_id_it_allocates(role: OrderRole) -> None:
    position = long_position()
    for _ in range(3):
        position, client_id = position.next_client_id(role)
        assert position.owns(client_id)


@pytest.mark.parametrize("client_id", [
    f"tb-ETHUSDT-{KEY}-sl1",          # same key, another symbol
    "tb-BTCUSDT-zzzzzz-sl1",          # same symbol, another position
    "android_Xk2Pq",                  # placed by hand in the Binance app
    "autoclose-1700000000000",        # the exchange's liquidation order
    f"tb-BTCUSDT-{KEY}-sl01",         # not exactly what this agent would have produced
    "",
])
def test_a_position_owns_no_other_id(client_id: str) -> None:
    assert not long_position().owns(client_id)


# --- money ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "stop", "expected"), [
    (Side.BUY, "95", D("10")),       # 2 x (100 - 95)
    (Side.SELL, "105", D("10")),     # 2 x (105 - 100)
    (Side.BUY, "100", D("0")),       # stop at breakeven
    (Side.BUY, "102", D("0")),       # stop locks in profit
    (Side.SELL, "97", D("0")),
])
def test_risk_amount_is_the_loss_if_the_stop_fills_now(side: Side, stop: str,
                                                       expected: Decimal) -> None:
    assert long_position(side=side, stop=stop, tp="90" if side is Side.SELL else "110"
                         ).risk_amount() == expected


def test_risk_amount_uses_the_planned_stop_not_the_live_order() -> None:
    """While a breakeven move is in flight, the plan is what the agent is converging on."""
    position = long_position()
    moving = position.with_leg(replace(position.stop, trigger_price=D("100")))
    assert moving.stop.order is not None and moving.stop.order.trigger_price == D("95")
    assert moving.risk_amount() == 0


def test_unrealized_pnl_and_signed_quantity_follow_the_side() -> None:
    assert long_position().unrealized_pnl(D("110")) == D("20")
    short = long_position(side=Side.SELL, stop="105", tp="90")
    assert short.unrealized_pnl(D("110")) == D("-20")
    assert (long_position().signed_quantity, short.signed_quantity) == (D("2"), D("-2"))


# --- legs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT])
def test_with_leg_replaces_only_the_leg_of_its_role(role: OrderRole) -> None:
    original = long_position()
    changed = replace(original.leg(role), trigger_price=D("101"), failures=2)
    position = original.with_leg(changed)
    assert position.leg(role) == changed
    other = OrderRole.TAKE_PROFIT if role is OrderRole.STOP_LOSS else OrderRole.STOP_LOSS
    assert position.leg(other) == original.leg(other)
    assert replace(position, stop=original.stop, take_profit=original.take_profit) == original
    assert original.leg(role).trigger_price != D("101")        # frozen values: no aliasing


def test_legs_are_stop_then_take_profit() -> None:
    position = long_position()
    assert position.legs == (position.stop, position.take_profit)
    assert [leg.role for leg in position.legs] == [OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT]


@pytest.mark.parametrize(("state", "is_open"), [
    (PositionState.ENTERING, False), (PositionState.ATTACHING, True),
    (PositionState.PROTECTED, True), (PositionState.CLOSING, True),
    (PositionState.CLOSED, False),
])
def test_only_a_filled_and_not_yet_closed_position_is_open(state: PositionState,
                                                           is_open: bool) -> None:
    assert state.open is is_open
