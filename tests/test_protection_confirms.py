"""`protection.confirms`: the engine skips an observed LegSeen only when stepping it would
change nothing and do nothing (trader/engine.py `protect`; the replay's in-position ticks).
Checked against the state machine itself over many leg states."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tests.positions import leg_id, make, protected
from trader import protection
from trader.domain import OrderRole
from trader.events import LegSeen, Policy
from trader.lifecycle import step
from trader.position import LegStatus, Position, PositionState

NOW = datetime(2024, 1, 1, 1, tzinfo=UTC)
POLICY = Policy()


def seen_as_recorded(position: Position, role: OrderRole = OrderRole.STOP_LOSS) -> LegSeen:
    order = position.leg(role).order
    assert order is not None
    return LegSeen(role, order.client_id, order.trigger_price, order.quantity)


def test_a_steady_leg_seen_again_is_confirmed_and_its_step_is_a_no_op() -> None:
    position = protected()
    for role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
        event = seen_as_recorded(position, role)
        assert protection.confirms(position, event)
        result = step(position, event, NOW, POLICY)
        assert result.position == position and result.actions == []


def test_news_about_a_leg_is_never_skipped() -> None:
    position = protected()
    stop = seen_as_recorded(position)
    assert not protection.confirms(position, replace(stop, trigger_price=Decimal("49400")))
    assert not protection.confirms(position, replace(stop, quantity=Decimal("0.05")))
    assert not protection.confirms(position, replace(stop, client_id="by-hand-1"))
    assert not protection.confirms(position, replace(stop, replaces=stop.client_id))
    pending = position.with_leg(replace(position.take_profit,
                                        pending=leg_id("BTCUSDT", OrderRole.TAKE_PROFIT, 2)))
    assert not protection.confirms(pending, stop)
    retrying = position.with_leg(replace(position.take_profit, retry_at=NOW))
    assert not protection.confirms(retrying, stop)
    owed_all_clear = position.with_leg(replace(position.stop, alerted=True))
    assert not protection.confirms(owed_all_clear, stop)
    assert not protection.confirms(make(state=PositionState.CLOSING, live_legs=True), stop)


leg_changes = st.fixed_dictionaries({
    "status": st.sampled_from(list(LegStatus)),
    "missing_cycles": st.integers(0, 4),
    "order_quantity": st.sampled_from(["0.1", "0.05", "0.2"]),
    "order_trigger": st.sampled_from(["49500", "49400"]),
    "pending": st.booleans(),
    "retry": st.booleans(),
    "alerted": st.booleans(),
})


@given(stop=leg_changes, tp=leg_changes, quantity=st.sampled_from(["0.1", "0.2"]),
       state=st.sampled_from([PositionState.PROTECTED, PositionState.ATTACHING,
                              PositionState.CLOSING]),
       seen_quantity=st.sampled_from(["0.1", "0.05"]), role=st.sampled_from(
           [OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT]))
def test_whatever_the_legs_a_confirmed_event_steps_to_nothing(stop, tp, quantity, state,
                                                                seen_quantity, role) -> None:
    position = make(state=state, live_legs=True, quantity=quantity)
    for leg, change in ((position.stop, stop), (position.take_profit, tp)):
        order = leg.order
        assert order is not None
        order = replace(order, status=change["status"], quantity=Decimal(change["order_quantity"]),
                        trigger_price=Decimal(change["order_trigger"]) if leg.role is
                        OrderRole.STOP_LOSS else order.trigger_price,
                        missing_cycles=change["missing_cycles"],
                        missing_since=NOW - timedelta(minutes=5) if change["missing_cycles"]
                        else None)
        leg = replace(leg, order=order, alerted=change["alerted"],
                      retry_at=NOW + timedelta(seconds=30) if change["retry"] else None,
                      pending=leg_id("BTCUSDT", leg.role, 2) if change["pending"] else None)
        position = position.with_leg(leg)
    recorded = position.leg(role).order
    assert recorded is not None
    event = LegSeen(role, recorded.client_id, recorded.trigger_price, Decimal(seen_quantity))
    if protection.confirms(position, event):
        result = step(position, event, NOW, POLICY)
        assert result.position == position
        assert result.actions == []
