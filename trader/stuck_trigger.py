"""A protective order Binance triggered that did not execute, pure: run by
trader/lifecycle_tick.py on every tick of an open (not CLOSING) position with a mark.

Binance reports a conditional order whose trigger condition is met as TRIGGERING ("has met
the triggering condition and has been forwarded to the matching engine"), then TRIGGERED
("successfully placed into the matching engine"), then FINISHED
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Algo-Order-Update).
The first two read as live (trader/exchange/binance_order_codec.py): the MARKET order they
spawn fills within a second or two. One can stay TRIGGERING with nothing executed and the
position open (seen on Binance's demo venue:
https://github.com/nautechsystems/nautilus_trader/discussions/5378), and no status tells
that apart from a fill on its way. The price does: our legs trigger on the mark
(workingType=MARK_PRICE, trader/exchange/binance_requests.py), and a live leg of ours the
mark has been at or past for longer than `Policy.trigger_grace_seconds`, its position still
open, fired without executing.

- a stop-loss: the position has no working stop. POSITION_UNPROTECTED says so and the
  position is closed at market (reduce-only, as the -2021 "level already passed" path in
  trader/lifecycle.py does). The stuck stop cannot flip it if it executes later: it is
  reduce-only, and a reduce-only order meets a flat position with nothing to reduce; the
  executor's post-close read-back rebalances a late fill that raced the close.
- a take-profit (or TP1): a profit, nothing to close, but no working take-profit either:
  PROTECTION says so once, and it is not watched again.

Either is marked `stuck` (LegOrder.stuck): /status shows it not attached.

Only our own orders are judged: an order placed by hand (adopted) may trigger on the last
price (CONTRACT_PRICE), which the mark does not tell.

Why 10 s by default: the fill of a triggered stop reaches us within a second or two over
the user-data stream; a stream silently dead shows it within TRADEBOT_STREAM_VERIFY_SECONDS
(5 s) plus a tick (trader/exchange_view.py). 10 s is past both, so a stop that did fill is
not closed again; the cost of waiting is at most that long past the stop.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from trader import display, protection
from trader.alerts import Alert, AlertName
from trader.domain import CloseReason, OrderRole, Side
from trader.events import Action, CloseRequested, Event, Policy
from trader.evolve import evolve
from trader.position import LIVE, Leg, Position

STOP_LOSS, BUY = OrderRole.STOP_LOSS, Side.BUY

# The handlers' result, as in trader.lifecycle
Outcome = tuple[Position, list[Action], list[Event]]


def fired(side: Side, role: OrderRole, trigger_price: Decimal, mark: Decimal) -> bool:
    """The mark meets the trigger condition of a leg of a `side` position: a long's stop
    (a SELL STOP_MARKET) fires at or below its trigger, its take-profit at or above; a
    short's the other way round."""
    below = mark <= trigger_price
    return below if (side is BUY) is (role is STOP_LOSS) else mark >= trigger_price


def due(position: Position, mark: Decimal) -> bool:
    """`watch` would change something: a leg's live order is at or past its trigger, or was
    (its watch ends). The quiet tick asks this on every tick: `fired` written out and no
    tuple of legs built (1.1 us a call here where `watch`'s way costs 1.7)."""
    buy = position.side is BUY
    order = position.stop.order
    if order is not None and (order.passed_since is not None or (
            mark <= order.trigger_price if buy else mark >= order.trigger_price)):
        return True
    for leg in (position.take_profit, position.take_profit_1):
        order = leg.order if leg is not None else None
        if order is not None and not order.stuck and (order.passed_since is not None or (
                mark >= order.trigger_price if buy else mark <= order.trigger_price)):
            return True
    return False


def forget(position: Position) -> Position:
    """`position` with the watch of each leg's live order ended, for a tick with no mark
    (none pushed, none read: trader/exchange_view.py `mark`). The grace is Binance's time to
    act on its own trigger, and across the gap the mark may have come back and passed the
    trigger again a moment ago: a watch kept through it would close at market at the first
    mark past the stop, racing a trigger Binance is executing. The grace starts again at
    the first tick whose mark is past. A stuck order keeps its watch: its trigger already
    failed to execute, no grace is owed to it (a failed close is retried at once)."""
    for leg in position.legs:
        order = leg.order
        if order is not None and order.passed_since is not None and not order.stuck:
            position = position.with_leg(evolve(leg, order=evolve(order, passed_since=None)))
    return position


def watch(position: Position, mark: Decimal, now: datetime, policy: Policy) -> Outcome:
    """Start, end or conclude the watch of each leg's live order (module docstring)."""
    grace = timedelta(seconds=policy.trigger_grace_seconds)
    actions: list[Action] = []
    follow_ups: list[Event] = []
    for leg in position.legs:
        order = leg.order
        if order is None or (order.stuck and leg.role is not STOP_LOSS):
            continue
        if order.status is not LIVE or not order.ours \
                or not fired(position.side, leg.role, order.trigger_price, mark):
            if order.passed_since is not None:
                position = position.with_leg(evolve(leg, order=evolve(order, passed_since=None)))
            continue
        if order.passed_since is None:
            position = position.with_leg(evolve(leg, order=evolve(order, passed_since=now)))
            continue
        waited = now - order.passed_since
        if waited < grace:
            continue
        position = position.with_leg(evolve(leg, order=evolve(order, stuck=True)))
        if leg.role is STOP_LOSS:
            # Its watch goes on (`passed_since` kept): a close that fails and hands the
            # position back OPEN is followed by another on its next tick with the mark
            # still past the stop.
            actions.append(_stop_failed(position, leg, mark, waited))
            follow_ups = [CloseRequested(CloseReason.STOP_LOSS)]
        else:
            actions.append(_take_profit_failed(position, leg, mark, waited))
    return position, actions, follow_ups


def _what_happened(position: Position, leg: Leg, mark: Decimal, waited: timedelta) -> str:
    order = leg.order
    assert order is not None
    return (f"{position.symbol}: the {protection.name(leg.role)} "
            f"{display.number(order.trigger_price)} was triggered on Binance but did not "
            f"execute: the mark {display.number(mark)} has been past it for "
            f"{display.duration(waited)} and the {position.side.label} "
            f"{display.number(position.quantity)} is still open (its algo order is stuck in "
            f"TRIGGERING/TRIGGERED, forwarded to the matching engine with no fill)")


def _stop_failed(position: Position, leg: Leg, mark: Decimal, waited: timedelta) -> Alert:
    text = (f"{_what_happened(position, leg, mark, waited)}; it is not protecting: closing "
            f"the {position.side.label} {display.number(position.quantity)} at market "
            f"(reduce-only)")
    return Alert(AlertName.POSITION_UNPROTECTED, text, position.symbol)


def _take_profit_failed(position: Position, leg: Leg, mark: Decimal,
                        waited: timedelta) -> Alert:
    stop = position.stop.order
    kept = (f"the stop-loss {display.number(stop.trigger_price)} still protects"
            if stop is not None and not stop.stuck else "no stop-loss protects either")
    text = (f"{_what_happened(position, leg, mark, waited)}; it is not counted as working "
            f"any more, {kept}; /close takes the profit")
    return Alert(AlertName.PROTECTION, text, position.symbol)
