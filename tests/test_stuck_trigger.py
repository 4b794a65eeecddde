"""A protective order Binance triggered that never executed (trader/stuck_trigger.py), driven
through `step`: the mark past a live stop for longer than the grace, the position still open,
means the stop fired without closing (ALGO_UPDATE TRIGGERING: "met the triggering condition
and ... forwarded to the matching engine",
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Algo-Order-Update;
stuck so on Binance's demo venue: github.com/nautechsystems/nautilus_trader/discussions/5378).
The position is closed at market; a take-profit stuck so is only no longer counted."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.positions import OPENED, make
from trader import stuck_trigger
from trader.alerts import Alert, AlertName
from trader.domain import CloseReason, Side
from trader.events import Flatten, Policy, Tick
from trader.evolve import evolve
from trader.lifecycle import step
from trader.lifecycle_tick import quiet
from trader.position import PositionState
from trader.symbol_rules import SymbolRules

RULES = SymbolRules("BTCUSDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal("5"))
POLICY = Policy(trigger_grace_seconds=10.0)


def at(seconds: float):  # type: ignore[no-untyped-def]
    return OPENED + timedelta(minutes=1, seconds=seconds)


def tick(position, seconds: float, mark: str):  # type: ignore[no-untyped-def]
    return step(position, Tick(at(seconds), Decimal(mark), RULES), at(seconds), POLICY)


def alerts(result, name: AlertName) -> list[Alert]:  # type: ignore[no-untyped-def]
    return [a for a in result.actions if isinstance(a, Alert) and a.name is name]


def flattens(result) -> list[Flatten]:  # type: ignore[no-untyped-def]
    return [a for a in result.actions if isinstance(a, Flatten)]


def long_position():  # type: ignore[no-untyped-def]
    return make(side=Side.BUY, quantity="0.5", entry="50000", stop="49000", tp="52000")


def test_a_stop_the_mark_passed_longer_than_the_grace_is_failed_and_the_position_closed():
    first = tick(long_position(), 0, "48000")
    assert first.position.state is PositionState.PROTECTED and not first.actions
    assert first.position.stop.order.passed_since == at(0)
    later = tick(first.position, 10, "47950")
    [alert] = alerts(later, AlertName.POSITION_UNPROTECTED)
    assert alert.level.value == "CRITICAL"
    assert "stop-loss 49,000 was triggered on Binance but did not execute" in alert.text
    assert "TRIGGERING" in alert.text and "mark 47,950" in alert.text
    assert "closing the LONG 0.5 at market (reduce-only)" in alert.text, alert.text
    [flatten] = flattens(later)
    assert flatten.reason is CloseReason.STOP_LOSS and flatten.quantity == Decimal("0.5")
    assert later.position.state is PositionState.CLOSING
    assert later.position.stop.order.stuck


def test_a_short_stop_passed_upwards_is_failed_too():
    position = make(side=Side.SELL, quantity="0.5", entry="50000", stop="51000", tp="48000")
    later = tick(tick(position, 0, "51000").position, 12, "51200")     # at the level counts
    assert alerts(later, AlertName.POSITION_UNPROTECTED)
    assert later.position.state is PositionState.CLOSING


def test_a_mark_past_the_stop_for_less_than_the_grace_does_nothing():
    first = tick(long_position(), 0, "48000")
    almost = tick(first.position, 9.9, "48000")
    assert not almost.actions and almost.position.state is PositionState.PROTECTED


def test_a_mark_that_comes_back_ends_the_watch_and_the_grace_starts_over():
    first = tick(long_position(), 0, "48000")
    back = tick(first.position, 5, "49500")
    assert back.position.stop.order.passed_since is None and not back.actions
    again = tick(back.position, 11, "48000")        # past again: a new watch, not a failure
    assert not again.actions and again.position.stop.order.passed_since == at(11)


def test_the_quiet_tick_leaves_a_passed_stop_to_the_full_step():
    position = long_position()
    assert quiet(position, Tick(at(0), Decimal("50100"), RULES), at(0), POLICY) is not None
    assert quiet(position, Tick(at(0), Decimal("48000"), RULES), at(0), POLICY) is None
    watched = tick(position, 0, "48000").position
    assert quiet(watched, Tick(at(1), Decimal("50100"), RULES), at(1), POLICY) is None


def test_a_stop_placed_by_hand_is_not_judged_by_the_mark():
    """Its working type is unknown (CONTRACT_PRICE triggers on the last price)."""
    position = long_position()
    by_hand = evolve(position.stop.order, client_id="my-own-stop")
    position = position.with_leg(evolve(position.stop, order=by_hand))
    later = tick(tick(position, 0, "48000").position, 30, "48000")
    assert not alerts(later, AlertName.POSITION_UNPROTECTED)
    assert later.position.state is PositionState.PROTECTED


def test_a_stuck_take_profit_is_said_once_and_not_closed():
    """A profit: nothing to close, but it is no working take-profit any more."""
    calm = evolve(long_position(), partial_taken=True, breakeven_done=True,
                  trail_activation=Decimal("1"))     # no partial close, no trailing: only this
    first = tick(calm, 0, "52100")
    later = tick(first.position, 10, "52150")
    [alert] = alerts(later, AlertName.PROTECTION)
    assert "take-profit 52,000 was triggered on Binance but did not execute" in alert.text
    assert "the stop-loss 49,000 still protects" in alert.text, alert.text
    assert not flattens(later) and later.position.state is PositionState.PROTECTED
    assert later.position.take_profit.order.stuck
    again = tick(later.position, 60, "52150")
    assert not again.actions, "said once"


def test_a_failed_close_handing_the_position_back_closes_again():
    first = tick(long_position(), 0, "48000")
    closing = tick(first.position, 10, "48000").position
    reopened = evolve(closing, state=PositionState.PROTECTED, closing_reason=None)
    again = tick(reopened, 11, "48000")
    assert flattens(again) and alerts(again, AlertName.POSITION_UNPROTECTED)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("mark", ["48000", "49000", "49500", "50000", "51000", "52000"])
@pytest.mark.parametrize("stuck_target", [False, True])
@pytest.mark.parametrize("later", [1, 15])
def test_the_quiet_tick_shortcut_misses_nothing_the_watch_would_do(side, mark, stuck_target,
                                                                    later):
    """Whenever `watch` would change the record or act, `due` says so (the quiet tick then
    steps in full); with the mark between the legs and nothing watched, it says no."""
    stop, target = ("49000", "51000") if side is Side.BUY else ("51000", "49000")
    position = make(side=side, quantity="0.5", entry="50000", stop=stop, tp=target)
    order = evolve(position.take_profit.order, stuck=stuck_target)
    position = position.with_leg(evolve(position.take_profit, order=order))
    watched, _, _ = stuck_trigger.watch(position, Decimal(mark), at(0), POLICY)
    for record in (position, watched):
        changed, actions, _ = stuck_trigger.watch(record, Decimal(mark), at(later), POLICY)
        if changed is not record or actions:
            assert stuck_trigger.due(record, Decimal(mark))
    assert not stuck_trigger.due(position, Decimal("50000"))
