"""What a Tick does to a position (trader/lifecycle.py's handler of `Tick`), pure.

An open position's protection timers are watched (trader/protection.py `watch`), its best
price follows the mark, a live leg the mark has passed without executing is caught
(trader/stuck_trigger.py: a stuck stop closes the position; a tick with no mark ends the
watch), and a PROTECTED one runs the exit rules of trader/management.py: time exit, partial
take-profit, stop to breakeven, trailing stop; then its SL/TP follow the volatility regime
(trader/regime_adjust.py). A CLOSING position still open on a later tick retries its close
(a FlattenResult follow-up); one Binance refused for now, once its backoff is over
(trader/close_retry.py).
Nothing here reads the clock: `now` is given.
"""

from datetime import datetime
from decimal import Decimal

from trader import close_retry, display, management, protection, regime_adjust, stuck_trigger
from trader.alerts import Alert, AlertName, Severity
from trader.domain import CloseReason, OrderRole
from trader.events import Action, CloseRequested, Event, Flatten, FlattenResult, Policy, Tick
from trader.evolve import evolve
from trader.position import Position, PositionState
from trader.symbol_rules import SymbolRules

ENTERING, PROTECTED, CLOSING = (PositionState.ENTERING, PositionState.PROTECTED,
                                PositionState.CLOSING)

# The handlers' result, as in trader.lifecycle (which imports this module)
Outcome = tuple[Position, list[Action], list[Event]]   # position, actions, follow-up events


def on_tick(position: Position, event: Tick, now: datetime, policy: Policy) -> Outcome:
    if position.state is ENTERING:
        return position, [], []
    actions = protection.watch(position)
    if position.state is CLOSING:
        if position.close_refused is not None:
            return _close_refused_for_now(position, actions, now)
        # Still open on a later tick: the last close did not finish (its request failed).
        return position, actions, [FlattenResult(position.quantity)]
    if event.mark is None:
        # Nothing is judged on a price it does not have; the time in trade needs none
        position = stuck_trigger.forget(position)
        if position.state is PROTECTED and management.time_exit_due(position, now):
            return position, actions, [CloseRequested(CloseReason.TIME_EXIT)]
        return position, actions, []
    # The best price since entry, from every tick's mark (saved with the position): the
    # trail follows it, never the mark itself.
    best = management.best_price(position, event.mark)
    if best is not position.best_price:
        position = evolve(position, best_price=best)
    position, stuck, follow_ups = stuck_trigger.watch(position, event.mark, now, policy)
    if follow_ups:
        return position, actions + stuck, follow_ups
    actions += stuck
    if position.state is not PROTECTED:
        return position, actions, []
    position, more, follow_ups = _manage(position, event, now, policy)
    if not follow_ups:
        position = regime_adjust.follow(position, event.regime, event.mark, event.rules)
    return position, actions + more, follow_ups


def _close_refused_for_now(position: Position, actions: list[Action], now: datetime
                           ) -> Outcome:
    """A close Binance refused for now: sent again once its backoff is over (the refused
    one was never placed: a new client id), counting for nothing (trader/close_retry.py)."""
    if not close_retry.due(position, now):
        return position, actions, []
    reason = position.closing_reason or CloseReason.COMMAND
    position, client_id = position.next_client_id(OrderRole.FLATTEN)
    return position, [*actions, Flatten(reason, position.quantity, client_id)], []


def quiet(position: Position, event: Tick, now: datetime, policy: Policy,
          is_settled: bool | None = None) -> Position | None:
    """What `trader.lifecycle.step(position, event, now, policy)` gives for this tick when
    the tick only moves (or keeps) the best price: that record, with no action and no
    follow-up; None when the tick may do more (the caller steps it in full). Most ticks of
    a trade are this, and it skips `step`'s round trip (its plan, all-clear and state
    reading; the interpreter's queue). Why nothing else can come of it, in `step`'s order:

    - the position is `protection.settled` (PROTECTED, every leg live and matching,
      nothing pending, superseded, retrying, missing or alerted): `protection.watch`
      probes nothing; after the handler `protection.plan` finds every leg matching (the
      legs and the quantity are the ones checked: only `best_price` may differ) and
      places nothing, `protection.all_clear` has no alert to clear and the state read
      back (`Position.protected`: every leg covers what it matches) stays PROTECTED;
    - `on_tick` with a mark: the best price first (as here), then `_manage` on the record
      that holds it: no time exit due, no partial to take, no breakeven move owed (its
      aim is only settled once `breakeven_done`), no switch to the one-TP plan (a TP1
      whose part is gone holds no order: `management.first_target_gone`), no leg's live
      order at or past its trigger and none watched for it (`stuck_trigger.due`), no
      trailing stop other than the stop's own level: each the very function `_manage`
      asks, on the same record,
      mark, rules and ATR; and `regime_adjust.follow` hands back the record itself, which for a
      PROTECTED record and a mark is when the regime is unknown or the one its anchor
      applies (else it anchors the record, or, nothing pending, copies it to the new
      regime: told here without computing the levels it would move the legs to).

    `is_settled`: `protection.settled(position)` for this very record, when the caller
    read it already (trader/position_keeper.py `protect`: one reading per tick); None (the
    default) and it is read here."""
    mark, regime, anchor = event.mark, event.regime, position.regime
    if mark is None or (regime is not None and (anchor is None or anchor.applied != regime)):
        return None       # no mark; or `follow` anchors the legs, or moves them to the regime
    if (position.partial_taken and not position.breakeven_done) \
            or not (protection.settled(position) if is_settled is None else is_settled) \
            or stuck_trigger.due(position, mark):
        return None
    best = management.best_price(position, mark)
    if best is not position.best_price:
        position = evolve(position, best_price=best)
    if management.time_exit_due(position, now) or (
            not position.partial_taken and management.should_take_partial(position, mark)):
        return None
    trail = management.trailing_stop(position, mark, event.rules, policy.trailing_distance,
                                     event.atr)
    if trail is not None and trail != position.stop.trigger_price:
        return None
    return position


def _manage(position: Position, event: Tick, now: datetime, policy: Policy) -> Outcome:
    """Time exit, partial take-profit, stop to breakeven, trailing stop (trader/management)."""
    mark, rules = event.mark, event.rules
    assert mark is not None
    if management.time_exit_due(position, now):
        return position, [], [CloseRequested(CloseReason.TIME_EXIT)]
    actions: list[Action] = []
    if management.first_target_gone(position, mark):
        actions.append(_one_tp_told(position))
        position = management.one_tp_plan(position)
    if not position.partial_taken and management.should_take_partial(position, mark):
        part = management.partial_quantity(position, rules, policy.partial_fraction, mark)
        position = evolve(position, partial_taken=True)
        if part > 0:
            position, client_id = position.next_client_id(OrderRole.PARTIAL_TP)
            actions.append(Flatten(CloseReason.TAKE_PROFIT, part, client_id,
                                   OrderRole.PARTIAL_TP,
                                   told=_partial_told(position, part, mark)))
    if position.partial_taken and not position.breakeven_done:
        aimed, more = _move_stop_to_breakeven(position, rules, policy)
        if _breakeven_passed(aimed, mark):
            return position, actions, [CloseRequested(CloseReason.BREAKEVEN_STOP)]
        position, actions = aimed, actions + more
    trail = management.trailing_stop(position, mark, rules, policy.trailing_distance,
                                     event.atr)
    stop = position.stop
    if trail is not None and trail != stop.trigger_price:
        if management.stop_crossed(position.side, trail, mark):
            return position, actions, [CloseRequested(CloseReason.TRAILING_STOP)]
        moved = evolve(stop, trigger_price=trail, failures=0, retry_at=None)
        position = evolve(position, stop=moved, trailing_active=True)
    return position, actions, []


def _one_tp_told(position: Position) -> Alert:
    """The chat hears why a two-TP position takes its first profit at market after all:
    TP1 lost its part (trader/management.py `first_target_gone`)."""
    runner = position.initial_quantity - position.tp1_quantity
    return Alert(AlertName.PROTECTION, (
        f"{position.symbol}: the {position.side.label} {display.number(position.quantity)} "
        f"is no more than TP2's part {display.number(runner)} (of "
        f"{display.number(position.initial_quantity)} planned), so TP1 has nothing to close: "
        f"one take-profit from now on, at {display.number(position.take_profit.trigger_price)}"
        ", with the first profit at market, the stop to breakeven and the trail"),
        position.symbol, severity=Severity.INFO,
        dedup_key=f"one-tp:{position.symbol}:{position.key}")


def _partial_told(position: Position, part: Decimal, mark: Decimal) -> Alert:
    """The chat hears of the first profit taken (as of TP1 in the two-TP plan:
    lifecycle_legs.py `_first_target_filled`); the fill's price comes with the close's own record."""
    return Alert(AlertName.FILL, (
        f"{position.symbol}: first profit taken: {display.number(part)} of "
        f"{display.number(position.quantity)} closed at market (mark {display.number(mark)}); "
        f"the stop moves to breakeven for the remaining "
        f"{display.number(position.quantity - part)}, TP stays at "
        f"{display.number(position.take_profit.trigger_price)}"),
        position.symbol, dedup_key=f"partial:{position.symbol}:{position.key}")


def _breakeven_passed(position: Position, mark: Decimal) -> bool:
    """The price came back through breakeven before the stop could move there (TP1 filled
    between two ticks, or the price fell back after the one-TP plan's market partial): a
    stop there would fire at once (-2021), so the rest closes at market now, as that stop
    would have."""
    stop = position.stop
    return (stop.order is not None and stop.order.trigger_price != stop.trigger_price
            and management.stop_crossed(position.side, stop.trigger_price, mark))


def _move_stop_to_breakeven(position: Position, rules: SymbolRules,
                            policy: Policy) -> tuple[Position, list[Action]]:
    """Aim the stop at breakeven; give up (keep the live stop) after bounded refusals."""
    stop = position.stop
    target = management.tighter_stop(position.side,
                                     management.breakeven_price(position, policy.taker_fee, rules),
                                     stop.trigger_price)
    if stop.failures >= policy.breakeven_attempts and stop.order is not None:
        kept = evolve(stop, trigger_price=stop.order.trigger_price, failures=0, retry_at=None)
        text = (f"{position.symbol}: could not move the stop to breakeven after "
                f"{stop.failures} attempts; the stop stays at "
                f"{display.number(stop.order.trigger_price)}")
        return (evolve(position.with_leg(kept), breakeven_done=True),
                [Alert(AlertName.PROTECTION, text, position.symbol)])
    if stop.order is not None and stop.order.trigger_price == target:
        return evolve(position, breakeven_done=True), []
    return position.with_leg(evolve(stop, trigger_price=target)), []
