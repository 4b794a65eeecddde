"""What the leg events and a size change do to a position (trader/lifecycle.py's handlers
of LegPlaced, LegPlacementUnknown, LegRejected, LegSeen, LegGone, LegFilled and
PositionSizeChanged), pure.

A leg's answer goes to protection (trader/protection.py): placed, seen, gone, filled in part;
an answer about a stop that was superseded or backed up goes to trader/stop_backup.py, and a
refusal to trader/placement_refusals.py. A level the price passed before the order reached
Binance closes the position at market (a CloseRequested follow-up), TP1's takes its part;
TP1's fill moves the plan on (trader/management.py). A size changed outside the agent is
taken, and told. Nothing here reads the clock: `now` is given.
"""

from datetime import datetime

from trader import display, management, placement_refusals, protection, stop_backup
from trader.alerts import Alert, AlertName, Severity
from trader.domain import CloseReason, OrderRole
from trader.events import (
    Action,
    CloseRequested,
    Event,
    Flatten,
    LegFilled,
    LegGone,
    LegPlaced,
    LegPlacementUnknown,
    LegRejected,
    LegSeen,
    Policy,
    PositionSizeChanged,
)
from trader.evolve import evolve
from trader.position import ExitPlan, Leg, Position, PositionState
from trader.reduction_news import reduced_alert

CLOSING = PositionState.CLOSING

# The handlers' result, as in trader.lifecycle (which imports this module)
Outcome = tuple[Position, list[Action], list[Event]]   # position, actions, follow-up events


def on_leg_placed(position: Position, event: LegPlaced, now: datetime, policy: Policy) -> Outcome:
    if stop_backup.is_superseded(position, event.role, event.client_id):
        position, actions = stop_backup.superseded_live(position, event.role, event.client_id,
                                                        event.trigger_price, event.quantity)
        return position, actions, []
    position, actions = protection.placed(position, event.role, event.client_id,
                                          event.trigger_price, event.quantity)
    return position, actions, []


def on_leg_unknown(position: Position, event: LegPlacementUnknown, now: datetime,
                   policy: Policy) -> Outcome:
    # Stays pending: probed on the next ticks, never re-sent; a stop that nothing else
    # covers gets a backup at once (past the bound: the operator is told, once a round).
    position, actions = stop_backup.lost(position, event.role, event.client_id, now, policy)
    return position, actions, []


def on_leg_rejected(position: Position, event: LegRejected, now: datetime,
                    policy: Policy) -> Outcome:
    if stop_backup.is_superseded(position, event.role, event.client_id):
        position, actions = stop_backup.superseded_over(position, event.role, event.client_id)
        return position, actions, []
    if event.covered_already:
        backed = stop_backup.covered_already(position, event.role, event.client_id)
        if backed is not None:
            return *backed, []
    matched = stop_backup.already_matched(position, event.role, event.client_id)
    if matched is not None:
        return matched, [], []
    if event.client_id != position.leg(event.role).pending:
        # Not the placement the leg waits for (an older one, already replaced or given up):
        # its refusal, 'level passed' too, says nothing of the leg's current order.
        return position, [], []
    if event.never_placed:
        again = stop_backup.never_placed(position, event.role, event.client_id, event.reason)
        if again is not None:
            return *again, []
    first = position.take_profit_1
    if event.role is OrderRole.TAKE_PROFIT_1 and event.level_passed and first is not None \
            and event.client_id == first.pending and position.state is not CLOSING \
            and position.leg_quantity(OrderRole.TAKE_PROFIT_1) > 0:
        return _first_target_passed(position, first)
    if event.filter_refused:
        position, actions = placement_refusals.move_refused(
            position, event.role, event.client_id, event.reason, now, policy,
            event.allowed_trigger, event.min_qty)
    else:
        position, actions = placement_refusals.refused(position, event.role, event.client_id,
                                                       event.reason, now, policy,
                                                       event.retry_after, event.level_passed)
    if not event.level_passed:
        return position, actions, []
    return position, [*actions, _level_passed_alert(position, event)], \
        [CloseRequested(CloseReason.STOP_LOSS if event.role is OrderRole.STOP_LOSS
                        else CloseReason.TAKE_PROFIT)]


def _level_passed_alert(position: Position, event: LegRejected) -> Alert:
    """The price went past the leg's level before its order reached Binance (-2021 "Order
    would immediately trigger"): the position is closed at market, as the order would have
    done. A stop-loss's is CRITICAL (the position is without its stop until the close
    fills); a take-profit's is the profit taken, told quietly like the CLOSE that follows."""
    what = protection.name(event.role)
    text = (f"{position.symbol}: Binance refused the {what} at "
            f"{display.number(position.leg(event.role).trigger_price)}: the price is already "
            f"past it ({event.reason}); closing the {position.side.label} "
            f"{display.number(position.quantity)} at market, as the {what} would have")
    if event.role is OrderRole.STOP_LOSS:
        return Alert(AlertName.POSITION_UNPROTECTED, text, position.symbol)
    return Alert(AlertName.PROTECTION, text, position.symbol, severity=Severity.INFO)


def _first_target_passed(position: Position, first: Leg) -> Outcome:
    """TP1's level is already behind the market (-2021: the price jumped past it): its part
    is taken at market, the plan's only market order, and the plan goes on as after TP1's
    fill (the stop to breakeven, TP2 for the rest)."""
    part = position.leg_quantity(OrderRole.TAKE_PROFIT_1)
    position, client_id = management.first_target_filled(position).next_client_id(
        OrderRole.PARTIAL_TP)
    text = (f"{position.symbol}: the price is already past TP1 "
            f"{display.number(first.trigger_price)}; its part {display.number(part)} is "
            f"closed at market, the stop moves to breakeven for the rest, TP2 stays at "
            f"{display.number(position.take_profit.trigger_price)}")
    return position, [Flatten(CloseReason.TAKE_PROFIT, part, client_id, OrderRole.PARTIAL_TP,
                              told=Alert(AlertName.PROTECTION, text, position.symbol))], []


def on_leg_seen(position: Position, event: LegSeen, now: datetime, policy: Policy) -> Outcome:
    if stop_backup.is_superseded(position, event.role, event.client_id):
        position, actions = stop_backup.superseded_live(position, event.role, event.client_id,
                                                        event.trigger_price, event.quantity)
        return position, actions, []
    position, actions = protection.seen(position, event.role, event.client_id,
                                        event.trigger_price, event.quantity, event.replaces)
    return position, actions, []


def on_leg_gone(position: Position, event: LegGone, now: datetime, policy: Policy) -> Outcome:
    if stop_backup.is_superseded(position, event.role, event.client_id):
        position, actions = stop_backup.superseded_over(position, event.role, event.client_id)
        return position, actions, []
    position, actions = protection.gone(position, event.role, event.client_id,
                                        event.confirmed, now, policy, event.status,
                                        event.reason)
    return position, actions, []


def on_leg_filled(position: Position, event: LegFilled, now: datetime, policy: Policy) -> Outcome:
    if event.role is OrderRole.TAKE_PROFIT_1 and event.complete:
        return _first_target_filled(position, event)
    if event.complete and event.role is OrderRole.TAKE_PROFIT \
            and position.exit_plan is ExitPlan.TWO:
        # TP2 took its part before TP1 (TP1 was not live, or moved): what is left needs a
        # take-profit again (placed now; at once at market if the price is past TP2).
        position, actions = protection.gone(position, event.role, event.client_id, True,
                                            now, policy)
        return position, actions, []
    if event.complete:
        return position, [], []   # the position is gone: PositionGone finalizes it
    position, actions = protection.partly_filled(position, event.role, event.client_id,
                                                 event.filled)
    return position, actions, []


def _first_target_filled(position: Position, event: LegFilled) -> Outcome:
    """TP1 (one of its orders, the live one or one it replaced) filled: the rest rides with
    TP2, the stop goes to breakeven on the next tick (trader/management.py)."""
    first = position.take_profit_1
    if first is None or not position.owns(event.client_id):
        return position, [], []
    text = (f"{position.symbol}: TP1 filled, {display.number(event.filled)} closed at about "
            f"{display.number(first.trigger_price)}; the stop moves to breakeven for the "
            f"remaining {display.number(position.leg_quantity(OrderRole.TAKE_PROFIT))}, TP2 "
            f"stays at {display.number(position.take_profit.trigger_price)}")
    return management.first_target_filled(position), [Alert(
        AlertName.FILL, text, position.symbol,
        dedup_key=f"tp1:{position.symbol}:{position.key}")], []


def on_size_changed(position: Position, event: PositionSizeChanged, now: datetime,
                    policy: Policy) -> Outcome:
    actions: list[Action] = []
    if event.quantity < position.quantity and event.cause:
        actions.append(reduced_alert(position.symbol, position.side, position.quantity,
                                     event.quantity, event.cause, event.by_exchange))
    entry_price = event.entry_price if event.entry_price > 0 else position.entry_price
    resized = evolve(position, quantity=event.quantity, entry_price=entry_price)
    if event.quantity > position.quantity and event.cause:
        actions.append(_added_alert(position, resized, event.cause))
    return resized, actions, []


def _added_alert(before: Position, after: Position, cause: str) -> Alert:
    """Size added outside the agent (by hand, on the same side): the legs follow it (the
    stop too, at its level), so the loss at the stop grows past what the agent sized."""
    text = (f"{after.symbol}: {after.side.label} increased {cause} from "
            f"{display.number(before.quantity)} to {display.number(after.quantity)}; its "
            "stop-loss and take-profit follow the new size: risk "
            f"{display.money(after.risk_amount())} USDT at the stop "
            f"{display.number(after.stop.trigger_price)} (was "
            f"{display.money(before.risk_amount())})")
    return Alert(AlertName.RECONCILE_MISMATCH, text, after.symbol,
                 dedup_key=f"added:{after.symbol}:{after.key}:{after.quantity}")
