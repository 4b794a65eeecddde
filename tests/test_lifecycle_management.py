"""The exit rules inside the state machine, driven through `step` directly: time exit,
partial take-profit, breakeven (and giving it up, keeping the live stop), trailing stop
(moved new-first, or closed at market once the trail is already crossed)."""

from datetime import timedelta
from decimal import Decimal

from tests.positions import OPENED, make
from trader.alerts import Alert, AlertName
from trader.domain import CloseReason, OrderRole, Side
from trader.events import (
    CancelOrder,
    Flatten,
    FlattenResult,
    LegPlaced,
    LegRejected,
    PlaceLeg,
    Policy,
    Tick,
)
from trader.evolve import evolve
from trader.lifecycle import step
from trader.position import PositionState
from trader.symbol_rules import SymbolRules

RULES = SymbolRules("BTCUSDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal("5"))
POLICY = Policy()


def tick(position, minutes: float = 1, mark: str = "50000"):
    return step(position, Tick(OPENED + timedelta(minutes=minutes), Decimal(mark), RULES),
                OPENED + timedelta(minutes=minutes), POLICY)


def actions_of(result, kind):
    return [a for a in result.actions if isinstance(a, kind)]


def test_the_time_exit_closes_at_market_when_the_limit_is_reached():
    position = make(time_limit=timedelta(minutes=40))
    assert actions_of(tick(position, minutes=39), Flatten) == []
    result = tick(position, minutes=40)
    [flatten] = actions_of(result, Flatten)
    assert flatten.reason is CloseReason.TIME_EXIT and flatten.quantity == position.quantity
    assert result.position.state is PositionState.CLOSING


def test_the_partial_take_profit_closes_half_and_aims_the_stop_at_breakeven():
    position = make(quantity="0.100", entry="50000", stop="49500", tp="51500")
    result = tick(position, mark="50200")            # +0.4 % >= BTC's 0.35 % trigger
    [partial] = actions_of(result, Flatten)
    assert partial.role is OrderRole.PARTIAL_TP and partial.quantity == Decimal("0.050")
    assert result.position.partial_taken
    assert result.position.stop.trigger_price >= Decimal("50000")      # entry + fees, up
    assert result.position.state is PositionState.PROTECTED            # not a close


def test_the_partial_take_profit_is_told():
    """Half the position closed at market and the stop moved without a word in the chat
    (TP1 of the two-TP plan says so; found by a reviewer)."""
    position = make(quantity="0.100", entry="50000", stop="49500", tp="51500")
    result = tick(position, mark="50200")
    [told] = [a.told for a in actions_of(result, Flatten) if a.told is not None]   # once sent
    assert told.name is AlertName.FILL
    assert told.text == ("BTCUSDT: first profit taken: 0.05 of 0.1 closed at market (mark "
                         "50,200); the stop moves to breakeven for the remaining 0.05, TP "
                         "stays at 51,500"), told.text
    calm = tick(position, mark="50100")              # short of the trigger: nothing taken
    assert not [a for a in actions_of(calm, Alert) if a.name is AlertName.FILL]
    assert actions_of(calm, Flatten) == []


def test_a_stop_move_is_new_first_the_old_one_is_cancelled_only_once_the_new_is_live():
    position = make(quantity="0.100", entry="50000", stop="49500", tp="52000",
                    trail_activation=Decimal("0.006"), partial_taken=True,
                    breakeven_done=True)
    moved = tick(position, mark="50600")                # +1.2 %: trailing active
    [place] = actions_of(moved, PlaceLeg)
    assert place.role is OrderRole.STOP_LOSS and place.trigger_price > Decimal("49500")
    assert actions_of(moved, CancelOrder) == [], "the old stop goes only after the new is live"
    old = position.stop.order.client_id
    placed = step(moved.position, LegPlaced(OrderRole.STOP_LOSS, place.client_id,
                                            place.trigger_price, place.quantity),
                  OPENED + timedelta(minutes=1), POLICY)
    assert actions_of(placed, CancelOrder) == [CancelOrder(old, OrderRole.STOP_LOSS)]
    assert placed.position.stop.order.client_id == place.client_id
    assert placed.position.trailing_active


def test_a_trail_already_crossed_closes_at_market_instead_of_placing_a_stop_behind_the_price():
    position = make(quantity="0.100", entry="50000", stop="49500", tp="53000",
                    trailing_active=True, best_price=Decimal("51000"), partial_taken=True,
                    breakeven_done=True)
    result = tick(position, mark="50500")   # trail 51000 x (1 - 0.3 %) = 50847 > the mark
    [flatten] = actions_of(result, Flatten)
    assert flatten.reason is CloseReason.TRAILING_STOP
    assert actions_of(result, PlaceLeg) == []


def test_breakeven_is_given_up_after_its_attempts_and_the_live_stop_stays():
    position = make(quantity="0.050", entry="50000", stop="49500", tp="52000",
                    partial_taken=True)
    now = OPENED
    result = tick(position, mark="50100")
    for _ in range(POLICY.breakeven_attempts):
        [place] = [a for a in result.actions if isinstance(a, PlaceLeg)]
        result = step(result.position, LegRejected(OrderRole.STOP_LOSS, place.client_id,
                                                   "-2019 margin"), now, POLICY)
        now += timedelta(seconds=60)
        result = step(result.position, Tick(now, Decimal("50100"), RULES), now, POLICY)
        if result.position.breakeven_done:
            break
    final = result.position
    assert final.breakeven_done
    assert final.stop.trigger_price == Decimal("49500"), "the live stop is the plan again"
    assert any(isinstance(a, Alert) and a.name is AlertName.PROTECTION
               and "breakeven" in a.text for a in result.actions)


def test_a_short_position_rules_mirror_the_long_ones():
    position = make(side=Side.SELL, quantity="0.100", entry="50000", stop="50500",
                    tp="48500")
    result = tick(position, mark="49800")
    [partial] = actions_of(result, Flatten)
    assert partial.role is OrderRole.PARTIAL_TP
    assert result.position.stop.trigger_price <= Decimal("50000")
    assert result.position.partial_taken


def test_a_breakeven_already_crossed_after_the_partial_closes_the_rest_at_market():
    """One-TP plan: the market partial was taken, and before the stop could move to
    breakeven the price fell back through it. A stop there would fire at once (-2021, then
    refused attempts and the original stop kept): the rest closes at market instead, as
    that stop would have, and no stop is placed behind the price."""
    position = make(quantity="0.050", entry="50000", stop="49500", tp="52000",
                    partial_taken=True)
    result = tick(position, mark="49990")
    [flatten] = actions_of(result, Flatten)
    assert flatten.reason is CloseReason.BREAKEVEN_STOP
    assert flatten.quantity == Decimal("0.050")
    assert actions_of(result, PlaceLeg) == []
    assert result.position.state is PositionState.CLOSING


def test_the_stop_aimed_at_breakeven_with_the_partial_is_placed_once_for_the_rest():
    """The market partial and the stop's move to breakeven come on one tick: the live stop
    stays while the partial is in flight, and the step of its result places the new stop
    once, for what is left (not for the whole size first and again for the rest)."""
    position = make(quantity="0.100", entry="50000", stop="49500", tp="51500")
    result = tick(position, mark="50200")
    [partial] = actions_of(result, Flatten)
    assert actions_of(result, PlaceLeg) == [], "the live stop waits for the partial's result"
    aimed = result.position.stop.trigger_price
    assert aimed >= Decimal("50000")
    after = step(result.position, FlattenResult(Decimal("0.050")),
                 OPENED + timedelta(minutes=1), POLICY)
    places = {a.role: a for a in actions_of(after, PlaceLeg)}
    assert places[OrderRole.STOP_LOSS].trigger_price == aimed
    assert places[OrderRole.STOP_LOSS].quantity == Decimal("0.050")
    assert places[OrderRole.TAKE_PROFIT].quantity == Decimal("0.050")
    assert partial.quantity == Decimal("0.050")


def test_a_partial_whose_close_failed_still_moves_the_stop_for_the_whole_size():
    position = make(quantity="0.100", entry="50000", stop="49500", tp="51500")
    result = tick(position, mark="50200")
    after = step(result.position, FlattenResult(Decimal("0.100")),
                 OPENED + timedelta(minutes=1), POLICY)
    [place] = actions_of(after, PlaceLeg)
    assert place.role is OrderRole.STOP_LOSS and place.quantity == Decimal("0.100")
    assert place.trigger_price == result.position.stop.trigger_price


def test_a_stop_without_a_live_order_is_placed_at_once_even_with_a_partial_in_flight():
    """Only the replacement of a live order waits for the partial's result: a stop that is
    not on the exchange is placed in the same step."""
    position = make(quantity="0.100", entry="50000", stop="49500", tp="51500")
    position = position.with_leg(evolve(position.stop, order=None))
    result = tick(position, mark="50200")
    assert [a.role for a in actions_of(result, Flatten)] == [OrderRole.PARTIAL_TP]
    [place] = actions_of(result, PlaceLeg)
    assert place.role is OrderRole.STOP_LOSS and place.quantity == Decimal("0.100")
