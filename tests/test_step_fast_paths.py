"""The shortcuts of the per-tick core give what the plain definitions give: a step that changes
nothing hands back the very record it got (no copy; the interpreter then has nothing to
save), and the one-pass helpers of trader/position.py agree with the per-leg definitions
they stand for (`leg_quantity`, `protected`, `next_client_id` then `with_leg`)."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.positions import OPENED, leg_id, make
from trader import regime_adjust
from trader.domain import CloseReason, IntentStatus, OrderRole, OrderStatus, OrderType, Side
from trader.events import FlattenResult, Policy, Tick
from trader.lifecycle import step
from trader.position import ExitPlan, Leg, LegOrder, LegStatus, Position, PositionState
from trader.strategy.regime import Regime
from trader.symbol_rules import SymbolRules

D = Decimal
POLICY = Policy()
RULES = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("5"))
SL, TP, T1 = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1
LEVELS = {Side.BUY: ("49500", "51000", "50500"), Side.SELL: ("50500", "49000", "49500")}


def with_first_target(position: Position, part: str, live: bool = True) -> Position:
    """`position` on the two-TP plan: TP1 for `part`, TP2 for the rest, both live if `live`."""
    first_part = D(part)
    level = D(LEVELS[position.side][2])
    first = Leg(T1, level, LegOrder(leg_id("BTCUSDT", T1), level, first_part) if live else None)
    take_profit = position.take_profit
    if take_profit.order is not None:
        take_profit = replace(take_profit, order=replace(
            take_profit.order, quantity=position.quantity - first_part))
    return replace(position, exit_plan=ExitPlan.TWO, take_profit_1=first,
                   tp1_quantity=first_part, take_profit=take_profit)


def tweak(leg: Leg, how: str) -> Leg:
    """One of the states a leg is found in between two ticks."""
    order = leg.order
    if how == "missing" and order is not None:
        return replace(leg, order=replace(order, status=LegStatus.MISSING,
                                          missing_since=OPENED, missing_cycles=1))
    if how == "gone":
        return replace(leg, order=None)
    if how == "pending":
        return replace(leg, pending=leg_id("BTCUSDT", leg.role, 2))
    if how == "retrying":
        return replace(leg, order=None, failures=1, retry_at=OPENED + timedelta(hours=2))
    if how == "moved":
        return replace(leg, trigger_price=leg.trigger_price + D("10"))
    return leg


leg_states = st.sampled_from(["as placed", "as placed", "missing", "gone", "pending",
                              "retrying", "moved"])


@st.composite
def positions(draw: st.DrawFn) -> Position:
    side = draw(st.sampled_from(list(Side)))
    stop, take_profit, _ = LEVELS[side]
    position = make(side=side, state=draw(st.sampled_from(
        [PositionState.PROTECTED, PositionState.ATTACHING, PositionState.CLOSING])),
        stop=stop, tp=take_profit, live_legs=True, quantity="0.2",
        best_price=draw(st.sampled_from([None, D("50000"), D("50300"), D("49700")])),
        trailing_active=draw(st.booleans()),
        # the stop's move to breakeven is re-aimed on every tick until it is done
        breakeven_done=True, partial_taken=draw(st.booleans()))
    if draw(st.booleans()):
        position = with_first_target(position, draw(st.sampled_from(["0.1", "0.05"])))
    for leg in position.legs:
        position = position.with_leg(tweak(leg, draw(leg_states)))
    if draw(st.booleans()):
        position = replace(position, regime=regime_adjust.anchor(
            Regime.NORMAL, position.stop.trigger_price, position.take_profit.trigger_price))
    return position


ticks = st.builds(
    Tick, st.integers(0, 90).map(lambda minutes: OPENED + timedelta(minutes=minutes)),
    st.none() | st.integers(-600, 1200).map(lambda offset: D(50000 + offset)),
    st.just(RULES), st.sampled_from([None, Regime.NORMAL, Regime.HIGH]))


@given(position=positions(), tick=ticks)
def test_a_tick_that_changes_nothing_returns_the_record_itself(position: Position,
                                                               tick: Tick) -> None:
    result = step(position, tick, tick.now, POLICY)
    if result.position == position:
        assert result.position is position, "an equal copy: the quiet tick allocated"


@given(side=st.sampled_from(list(Side)), two_targets=st.booleans(),
       minutes=st.integers(0, 39), loss=st.integers(0, 400),
       regime=st.sampled_from([None, Regime.NORMAL]))
def test_a_quiet_tick_on_a_protected_position_does_nothing_at_all(
        side: Side, two_targets: bool, minutes: int, loss: int, regime: Regime | None) -> None:
    """No profit yet (nothing to take or trail), before the time exit, both legs live and
    matching, the regime as anchored: the same record back and no action."""
    stop, take_profit, _ = LEVELS[side]
    position = make(side=side, stop=stop, tp=take_profit, quantity="0.2",
                    best_price=D("50000"), regime=regime_adjust.anchor(
                        Regime.NORMAL, D(stop), D(take_profit)))
    if two_targets:
        position = with_first_target(position, "0.1")
    mark = D(50000 - loss * side.sign)
    now = OPENED + timedelta(minutes=minutes)
    result = step(position, Tick(now, mark, RULES, regime), now, POLICY)
    assert result.position is position
    assert result.actions == []


def test_a_flat_answer_to_a_close_leaves_the_record_itself() -> None:
    position = make(state=PositionState.PROTECTED)
    assert step(position, FlattenResult(D(0)), OPENED, POLICY).position is position


@given(position=positions(), role=st.sampled_from([SL, TP, T1]))
def test_placing_a_leg_allocates_its_next_id_and_makes_it_pending(position: Position,
                                                                  role: OrderRole) -> None:
    assume(position.has_leg(role))
    leg = position.leg(role)
    allocated, client_id = position.next_client_id(role)
    placed, placed_id = position.placing(leg)
    assert placed_id == client_id
    assert placed == allocated.with_leg(replace(leg, pending=client_id,
                                                pending_trigger=leg.trigger_price))


@given(position=positions(), quantity=st.sampled_from(["0.2", "0.15", "0.1", "0.05", "0"]),
       initial=st.sampled_from(["0.2", "0.3"]))
def test_leg_quantities_and_protected_agree_with_the_per_leg_definitions(
        position: Position, quantity: str, initial: str) -> None:
    position = replace(position, quantity=D(quantity), initial_quantity=D(initial))
    assert position.leg_quantities() == tuple(
        (leg, position.leg_quantity(leg.role)) for leg in position.legs)
    assert position.protected == all(
        leg.covers(position.leg_quantity(leg.role)) for leg in position.legs
        if position.leg_quantity(leg.role) > 0)


def test_with_leg_of_its_own_leg_is_the_position_itself() -> None:
    position = with_first_target(make(), "0.05")
    for leg in position.legs:
        assert position.with_leg(leg) is position
        assert position.with_leg(replace(leg)) == position
        assert position.with_leg(replace(leg)) is not position


@pytest.mark.parametrize(("members", "member_property", "holders"), [
    (OrderStatus, "terminal", {"FILLED", "CANCELED", "EXPIRED", "REJECTED"}),
    (OrderStatus, "live", {"NEW", "PARTIALLY_FILLED"}),
    (IntentStatus, "resolved", {"FILLED", "FAILED", "EXPIRED"}),
    (OrderRole, "protective", {"STOP_LOSS", "TAKE_PROFIT", "TAKE_PROFIT_1"}),
    (OrderType, "conditional", {"STOP_MARKET", "TAKE_PROFIT_MARKET"}),
    (CloseReason, "exchange_initiated", {"LIQUIDATION", "ADL", "SETTLEMENT"}),
    (PositionState, "open", {"ATTACHING", "PROTECTED", "CLOSING"}),
])
def test_the_enum_predicates_hold_for_exactly_their_members(members, member_property,
                                                            holders) -> None:  # type: ignore[no-untyped-def]
    assert {member.name for member in members if getattr(member, member_property)} == holders


def test_the_side_helpers() -> None:
    assert (Side.BUY.opposite, Side.SELL.opposite) == (Side.SELL, Side.BUY)
    assert (Side.BUY.sign, Side.SELL.sign) == (1, -1)
    assert (Side.BUY.label, Side.SELL.label) == ("LONG", "SHORT")
