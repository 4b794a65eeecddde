"""The position state machine, pure: `step(position, event, now, policy) -> Step`.

This is the only code that changes a position. It never calls the exchange, reads the
clock or writes the database: the engine feeds it events (trader/events.py) and performs
the actions it returns, feeding their results back as events.

    state \\ event  EntryFilled   EntryFailed Leg*/Size  Tick      CloseRequested FlattenResult PositionGone
    ENTERING       OPEN|CLOSING* CLOSED      -          ENTERING  ENTERING*      -             CLOSED*
    ATTACHING      OPEN          -           OPEN       OPEN      CLOSING        OPEN          CLOSED
    PROTECTED      OPEN          -           OPEN       OPEN      CLOSING        OPEN          CLOSED
    CLOSING        CLOSING       -           CLOSING    CLOSING   CLOSING        CLOSING|OPEN  CLOSED
    CLOSED         -             -           -          -         -              -             -

StopMoveRequested (the operator's /sl) aims the stop of an OPEN position at a new level
(protection places it new-first); it is ignored in the other states.
Leg* are LegPlaced, LegPlacementUnknown, LegRejected, LegSeen, LegGone, LegFilled; Size is
PositionSizeChanged. OPEN is PROTECTED when every leg covers its part (the stop the
quantity, the take-profits theirs: `Position.leg_quantity`), ATTACHING otherwise; "-"
means the event is ignored (CLOSED absorbs everything). CLOSED*: PositionGone while
ENTERING is ignored (a flat exchange only means the entry has not filled yet) unless it
carries the entry's fill: then the position was opened and closed while nobody watched
(found after a restart) and it is finalized, never protected. ENTERING*: a close asked
for while the entry still works (a maker-first entry's quote: the operator's /close)
is kept on the record (`closing_reason`, journaled with it: a restart sees it too); its
quotes give up (trader/maker_quoter.py), and what they filled comes as EntryFilled, which
takes it to CLOSING* with its market close, no legs planned for it (a flat position is
what was asked). An open position's CloseRequested with `quotes_first` (its maker quote
still works) goes to CLOSING with no order: the quote is given up first, and the Tick that
follows sends the close. Protection keeps running while CLOSING. The handler of Tick
(protection's timers, the best price, the exit rules) is trader/lifecycle_tick.py, those of
Leg* and Size (protection's answers, refusals, TP1's fill, a size changed outside the agent)
trader/lifecycle_legs.py.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from trader import close_retry, display, protection
from trader.alerts import Alert, AlertName
from trader.domain import ZERO, CloseReason, OrderRole
from trader.events import (
    Action,
    CloseRequested,
    EntryFailed,
    EntryFilled,
    Event,
    Finalize,
    Flatten,
    FlattenResult,
    LegFilled,
    LegGone,
    LegPlaced,
    LegPlacementUnknown,
    LegRejected,
    LegSeen,
    Policy,
    PositionGone,
    PositionSizeChanged,
    StopMoveRequested,
    Tick,
)
from trader.evolve import evolve
from trader.fast_init import fast_init
from trader.lifecycle_legs import (
    on_leg_filled,
    on_leg_gone,
    on_leg_placed,
    on_leg_rejected,
    on_leg_seen,
    on_leg_unknown,
    on_size_changed,
)
from trader.lifecycle_tick import on_tick
from trader.position import ExitPlan, Position, PositionState

ENTERING, ATTACHING, PROTECTED = (PositionState.ENTERING, PositionState.ATTACHING,
                                  PositionState.PROTECTED)
CLOSING, CLOSED = PositionState.CLOSING, PositionState.CLOSED
OPEN = frozenset({ATTACHING, PROTECTED})
LEG_EVENTS = (LegPlaced, LegPlacementUnknown, LegRejected, LegSeen, LegGone, LegFilled,
              PositionSizeChanged, Tick)

TRANSITIONS: dict[tuple[PositionState, type], frozenset[PositionState]] = {
    (ENTERING, EntryFilled): OPEN | {CLOSING},
    (ENTERING, CloseRequested): frozenset({ENTERING}),
    (ENTERING, EntryFailed): frozenset({CLOSED}),
    (ENTERING, Tick): frozenset({ENTERING}),
    (ENTERING, PositionGone): frozenset({ENTERING, CLOSED}),
    **{(state, kind): OPEN for state in OPEN for kind in (EntryFilled, *LEG_EVENTS)},
    **{(state, CloseRequested): frozenset({CLOSING}) for state in OPEN},
    **{(state, StopMoveRequested): OPEN for state in OPEN},     # CLOSING: ignored
    **{(state, FlattenResult): OPEN for state in OPEN},
    **{(state, PositionGone): frozenset({CLOSED}) for state in (*OPEN, CLOSING)},
    **{(CLOSING, kind): frozenset({CLOSING}) for kind in (EntryFilled, *LEG_EVENTS,
                                                          CloseRequested)},
    (CLOSING, Tick): frozenset({CLOSING, *OPEN}),
    (CLOSING, FlattenResult): frozenset({CLOSING, *OPEN}),
}


@fast_init          # one per event stepped (every in-position tick)
@dataclass(frozen=True, slots=True)
class Step:
    position: Position
    actions: list[Action] = field(default_factory=list)
    ignored: bool = False


Outcome = tuple[Position, list[Action], list[Event]]   # position, actions, follow-up events


def step(position: Position, event: Event, now: datetime, policy: Policy) -> Step:
    """Advance one position by one event. Follow-up events (a management decision to close)
    are stepped within the same call; nothing follows a Finalize. A step that changes
    nothing returns the same `position` object (a quiet tick allocates no new record)."""
    kind = type(event)
    allowed = TRANSITIONS.get((position.state, kind))
    if allowed is None:
        return Step(position, [], ignored=True)
    handler: Callable[..., Outcome] = HANDLERS[kind]
    position, actions, follow_ups = handler(position, event, now, policy)
    if position.state not in allowed:
        position = _with_state(position, _open_state(position))
    if position.state not in allowed:
        raise AssertionError(f"{kind.__name__} took {position.symbol} to "
                             f"{position.state}, not one of {sorted(allowed)}")
    if position.state.open:
        # A size heard inside a Retry-After plans nothing: no order can be sent until it
        # ends, and the first Tick after plans the legs for it (the live ones still cover).
        # An entry filled into a close plans none either (its market close comes first, and
        # a close that leaves some open plans them in its result's step), nor a close that
        # left nothing (PositionGone follows: a leg placed now would outlive the position).
        position, placements = (position, []) if _plans_no_legs(position, event, actions) \
            else protection.plan(position, now, policy, settle=kind is Tick,
                                 hold_live=bool(actions) and _partial_in(actions))
        position, restored = protection.all_clear(position, now)
        if placements or restored:
            actions += placements + restored
        if position.state in OPEN:
            position = _with_state(position, _open_state(position))
    for follow_up in follow_ups:
        later = step(position, follow_up, now, policy)
        position, actions = later.position, actions + later.actions
    return Step(position, actions)


def _plans_no_legs(position: Position, event: Event, actions: list[Action]) -> bool:
    """This step of an open position places no leg (`step` says why)."""
    if isinstance(event, PositionSizeChanged):
        return event.heard
    if position.state is not CLOSING:
        return False
    if isinstance(event, EntryFilled):
        return bool(actions)            # filled into a close: its close comes first
    if isinstance(event, Tick):
        # No close sent yet (quotes_first, or an entry filled into a close): its
        # FlattenResult follow-up sends it in this very step
        return position.close_attempts == 0
    return isinstance(event, FlattenResult) and event.remaining <= 0


def _partial_in(actions: list[Action]) -> bool:
    """A market partial close is among the actions: a live leg's replacement waits for the
    step of its FlattenResult, at the size left (protection.plan's `hold_live`)."""
    return any(type(action) is Flatten and action.role is OrderRole.PARTIAL_TP
               for action in actions)


def _open_state(position: Position) -> PositionState:
    return PROTECTED if position.protected else ATTACHING


def _with_state(position: Position, state: PositionState) -> Position:
    return position if state is position.state else evolve(position, state=state)


# --- handlers -------------------------------------------------------------------------------

def _entry_filled(position: Position, event: EntryFilled, now: datetime,
                  policy: Policy) -> Outcome:
    entry_price = event.price if event.price > 0 else position.entry_price
    if position.state is ENTERING and position.closing_reason is not None:
        return _filled_into_a_close(position, event, entry_price)
    actions: list[Action] = []
    if position.state is ENTERING:
        actions.append(Alert(
            AlertName.FILL, f"{position.symbol}: {position.side.label} "
            f"{display.number(event.quantity)} filled at "
            f"{display.price_like(entry_price, position.stop.trigger_price)}; SL "
            f"{display.number(position.stop.trigger_price)}, {_targets(position)}",
            position.symbol, dedup_key=f"fill:{position.symbol}:{position.key}"))
    state = position.state if position.state is CLOSING else ATTACHING
    return evolve(position, quantity=event.quantity, entry_price=entry_price,
                  state=state), actions, []


def _filled_into_a_close(position: Position, event: EntryFilled,
                         entry_price: Decimal) -> Outcome:
    """An entry a close was asked for while it worked (ENTERING*) filled in part before
    its quotes gave up: that part is closed at market, as the close asked. Now when the
    entry is over (`complete`: its quote known cancelled, or a market entry's fill); else
    by the Tick (CLOSING, none sent yet: its FlattenResult follow-up) once the quote is
    known cancelled (trader/close_hold.py): a fill of a quote still live would come after
    the close, held by nobody's record."""
    size = display.number(event.quantity)
    position = evolve(position, quantity=event.quantity, entry_price=entry_price)
    reason = position.closing_reason or CloseReason.COMMAND
    actions: list[Action] = []
    if event.complete:
        position, client_id = position.next_client_id(OrderRole.FLATTEN)
        actions.append(Flatten(reason, event.quantity, client_id))
    closing = evolve(position, state=CLOSING, close_attempts=len(actions))
    told = Alert(AlertName.FILL, f"{position.symbol}: {position.side.label} {size} filled at "
                 f"{display.number(entry_price)} before its entry was stopped; closing it at "
                 "market, as asked", position.symbol,
                 dedup_key=f"fill:{position.symbol}:{position.key}")
    return closing, [told, *actions], []


def _targets(position: Position) -> str:
    first = position.take_profit_1
    if first is None:
        return f"TP {display.number(position.take_profit.trigger_price)}"
    return (f"TP1 {display.number(first.trigger_price)} "
            f"({display.number(position.tp1_quantity)}), "
            f"TP2 {display.number(position.take_profit.trigger_price)}")


def _entry_failed(position: Position, event: EntryFailed, now: datetime,
                  policy: Policy) -> Outcome:
    closed = evolve(position, state=CLOSED, quantity=ZERO, closed_at=now,
                    close_reason=CloseReason.UNKNOWN)
    if not event.late:
        return closed, [], []        # the entry's own answer: the sender tells it
    size = display.number(position.quantity or position.initial_quantity)
    return closed, [Alert(
        AlertName.ENTRY_NOT_FILLED, f"{position.symbol}: the {position.side.label} entry "
        f"({size}) did not land ({event.reason}); nothing is open on {position.symbol}",
        position.symbol, dedup_key=f"entry-not-filled:{position.symbol}:{position.key}",
        answered_in_reply=event.answered)], []


def _position_gone(position: Position, event: PositionGone, now: datetime,
                   policy: Policy) -> Outcome:
    if position.state is ENTERING:
        if event.entry is None:
            return position, [], []      # flat while entering: the entry has not filled yet
        entry_price = event.entry.price if event.entry.price > 0 else position.entry_price
        position = evolve(position, quantity=event.entry.quantity, entry_price=entry_price)
    reason = event.reason or position.closing_reason or CloseReason.MANUAL
    closed = evolve(position, state=CLOSED, closed_at=now, close_reason=reason,
                    close_refused=None)
    return closed, [Finalize(reason)], []


def _close_requested(position: Position, event: CloseRequested, now: datetime,
                     policy: Policy) -> Outcome:
    if position.state is ENTERING:
        # Nothing held that the record knows of: kept for the quotes to give up (ENTERING*)
        return evolve(position, closing_reason=event.reason), [], []
    if event.quotes_first and position.state in OPEN:
        # The close is sent by the next Tick (CLOSING: its FlattenResult follow-up), once
        # the quote's step gave it up: a fill of the quote can no longer follow the close.
        return evolve(position, state=CLOSING, closing_reason=event.reason,
                      close_attempts=0), [], []
    # The engine performs a close to its end before the next event, so a CLOSING position
    # seen here has none in flight: a new request (the operator again) starts over.
    position, client_id = position.next_client_id(OrderRole.FLATTEN)
    closing = evolve(position, state=CLOSING, closing_reason=event.reason, close_attempts=1,
                     close_refused=None)
    return closing, [Flatten(event.reason, position.quantity, client_id)], []


def _flatten_result(position: Position, event: FlattenResult, now: datetime,
                    policy: Policy) -> Outcome:
    if event.not_sent and position.state is not CLOSING:
        return _partial_not_sent(position)
    if event.remaining <= 0 or position.state is not CLOSING:
        quantity = event.remaining or position.quantity      # flat: PositionGone follows
        if quantity is not position.quantity:
            position = evolve(position, quantity=quantity)
        return position, [], []
    if event.refused_for_now is not None:
        return _refused_for_now(position, event, now)
    position = evolve(position, quantity=event.remaining, close_refused=None)
    if event.in_flight is not None or event.unread:
        # Waiting for a close that may still land, or for a read of what a close left: the
        # attempt that found it sent nothing, or nothing refused (the give-up counts
        # refusals, not ticks waited nor reads failed, however long the exchange is down);
        # CLOSING keeps its reason, and the next tick tries again.
        return evolve(position, close_attempts=max(1, position.close_attempts - 1)), [], []
    reason = position.closing_reason or CloseReason.COMMAND
    if position.close_attempts < policy.flatten_attempts:
        position, client_id = position.next_client_id(OrderRole.FLATTEN)
        position = evolve(position, close_attempts=position.close_attempts + 1)
        return position, [Flatten(reason, event.remaining, client_id,
                                  attempt=position.close_attempts)], []
    # Given up: the name says whether the position is protected meanwhile (its stop is
    # untouched by a close), which is what the operator needs to know first.
    name, cover = close_retry.stop_cover(position, event.remaining)
    text = (f"{position.symbol}: still open ({display.number(event.remaining)}) after "
            f"{position.close_attempts} market closes; {cover}. Close it again "
            f"(/close {position.symbol}) or in the Binance app")
    reopened = evolve(position, state=ATTACHING, closing_reason=None, close_attempts=0)
    return reopened, [Alert(name, text, position.symbol)], []


def _refused_for_now(position: Position, event: FlattenResult, now: datetime) -> Outcome:
    """Binance refused the close for a reason waiting cures: CLOSING keeps its reason and
    the close is sent again on trader/close_retry.py's backoff, its first retries in this
    step, the later ones by the Tick once due; the refused close's count passes to its
    retry (nothing more is counted towards the give-up, however long it lasts)."""
    refused, told = close_retry.refused_for_now(position, event.refused_for_now or "", now)
    position = evolve(position, quantity=event.remaining, close_refused=refused)
    actions: list[Action] = [told] if told is not None else []
    if not close_retry.sent_in_step(refused):
        return position, actions, []
    reason = position.closing_reason or CloseReason.COMMAND
    position, client_id = position.next_client_id(OrderRole.FLATTEN)
    return position, [*actions, Flatten(reason, event.remaining, client_id,
                                        attempt=refused.refusals + 1)], []


def _partial_not_sent(position: Position) -> Outcome:
    """The first profit's market order was refused before sending (its intent could not be
    saved): nothing was closed. The one-TP plan takes it on a later tick (the decision is
    undone; the stop aimed at breakeven stays, tighter); TP1's passed part of the two-TP plan
    rides under the stop, its leg retired already."""
    again = position.exit_plan is ExitPlan.ONE
    text = (f"{position.symbol}: the first profit was not taken: its market order was not "
            "sent, as the database refuses writes (an order that changes the size is recorded "
            f"first); the {position.side.label} {display.number(position.quantity)} stays open "
            "with its stop" + ("; taken on a later tick once writes work" if again else ""))
    alert = Alert(AlertName.PROTECTION, text, position.symbol)
    return (evolve(position, partial_taken=False) if again else position), [alert], []


def _stop_move_requested(position: Position, event: StopMoveRequested, now: datetime,
                         policy: Policy) -> Outcome:
    """/sl: the stop aimed at the operator's level, which the regime rule then leaves where
    it is (`operator_stop`); /sl auto: at the agent's level, the operator's forgotten, so
    the rule follows the stop again. protection.plan (in `step`) places it new-first. A
    breakeven move still due aims at breakeven only if that is tighter."""
    stop = evolve(position.stop, trigger_price=event.trigger_price, failures=0, retry_at=None)
    kept = event.trigger_price if event.by_operator else None
    return evolve(position, stop=stop, operator_stop=kept), [], []


HANDLERS: dict[type, Callable[..., Outcome]] = {
    EntryFilled: _entry_filled,
    EntryFailed: _entry_failed,
    LegPlaced: on_leg_placed,
    LegPlacementUnknown: on_leg_unknown,
    LegRejected: on_leg_rejected,
    LegSeen: on_leg_seen,
    LegGone: on_leg_gone,
    LegFilled: on_leg_filled,
    PositionSizeChanged: on_size_changed,
    PositionGone: _position_gone,
    CloseRequested: _close_requested,
    StopMoveRequested: _stop_move_requested,
    FlattenResult: _flatten_result,
    Tick: on_tick,
}
