"""Managing an open position: partial take-profit, stop to breakeven, trailing stop and
the time-in-trade exit.

Pure rules over `Position` values; the engine performs the orders. Moving the stop to
breakeven has its own small state machine (`BreakevenState`): place the new stop,
confirm it on the exchange, and only then cancel the old one, with bounded attempts, so
the position is never without a stop while it moves.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from trader.domain import ZERO, Position, PositionState, Side, SymbolRules

DEFAULT_PARTIAL_TRIGGER = Decimal("0.0050")
PARTIAL_TRIGGERS = {
    # Liquid majors move in smaller steps, so their first target comes earlier.
    "BTCUSDT": Decimal("0.0035"),
    "ETHUSDT": Decimal("0.0040"),
    "BNBUSDT": Decimal("0.0045"),
    "SOLUSDT": Decimal("0.0045"),
}


def partial_tp_trigger(symbol: str) -> Decimal:
    """Profit (fraction of entry) that triggers the partial take-profit, in [0.35 %, 0.50 %]."""
    return PARTIAL_TRIGGERS.get(symbol.upper(), DEFAULT_PARTIAL_TRIGGER)


def profit_pct(pos: Position, mark: Decimal) -> Decimal:
    """Unrealised move in the position's favour as a fraction of the entry price."""
    if pos.entry_price <= 0:
        return ZERO
    return (mark - pos.entry_price) / pos.entry_price * pos.side.sign


def should_take_partial(pos: Position, mark: Decimal) -> bool:
    """True once a protected position that has not taken its partial reaches the trigger."""
    return (pos.state is PositionState.PROTECTED and not pos.partial_taken
            and pos.quantity > 0 and profit_pct(pos, mark) >= partial_tp_trigger(pos.symbol))


def partial_quantity(pos: Position, rules: SymbolRules, fraction: Decimal = Decimal("0.5"),
                     price: Decimal | None = None) -> Decimal:
    """The part to close, rounded down to the step; 0 when it is not worth an order.

    0 when the part or the remainder would fall below the min qty or min notional
    (valued at `price`, default the entry): a dust remainder could not be closed later.
    """
    value_at = price if price is not None else pos.entry_price
    part = rules.round_qty(pos.quantity * fraction)
    remainder = pos.quantity - part
    for amount in (part, remainder):
        if amount <= 0 or amount < rules.min_qty or amount * value_at < rules.min_notional:
            return ZERO
    return part


def breakeven_price(pos: Position, fee_rate: Decimal, rules: SymbolRules) -> Decimal:
    """Entry moved by the round-trip fees, rounded to the tick in the position's favour
    (up for a long, down for a short), so a fill at the stop does not lose money."""
    shifted = pos.entry_price * (1 + pos.side.sign * 2 * fee_rate)
    return rules.round_price(shifted, up=pos.side is Side.BUY)


def best_price(pos: Position, mark: Decimal) -> Decimal:
    """The most favourable price seen so far, including `mark`."""
    previous = pos.best_price if pos.best_price is not None else pos.entry_price
    return max(previous, mark) if pos.side is Side.BUY else min(previous, mark)


def trailing_stop(pos: Position, mark: Decimal, rules: SymbolRules,
                  distance_pct: Decimal | None = None) -> Decimal | None:
    """The trailing stop for this mark, or None before the activation profit.

    The stop trails the best price by `distance_pct` (default half the activation, so it
    locks in at least half of it), rounded to the tick away from the mark, and it only
    ever tightens: it is never looser than the current stop. If the mark has already
    retraced past the trail, the stop is at or beyond the mark: see `stop_crossed`.
    """
    if not pos.trailing_active and profit_pct(pos, mark) < pos.trail_activation:
        return None
    distance = distance_pct if distance_pct is not None else pos.trail_activation / 2
    best = best_price(pos, mark)
    candidate = rules.round_price(best * (1 - pos.side.sign * distance), up=pos.side is Side.SELL)
    if pos.sl_price is None:
        return candidate
    return max(candidate, pos.sl_price) if pos.side is Side.BUY else min(candidate, pos.sl_price)


def stop_crossed(side: Side, stop: Decimal, mark: Decimal) -> bool:
    """True when a stop at `stop` would trigger at once (Binance answers -2021): exit instead."""
    return mark <= stop if side is Side.BUY else mark >= stop


def time_exit_due(pos: Position, now: datetime) -> bool:
    """True once an open position has been held for its time limit."""
    return pos.state.open and now - pos.opened_at >= pos.time_limit


class BreakevenStatus(StrEnum):
    IDLE = "idle"
    PLACING = "placing"          # new stop requested, exchange answer pending
    CONFIRMING = "confirming"    # exchange accepted; reading it back
    DONE = "done"                # new stop confirmed, old one cancelled
    GAVE_UP = "gave_up"          # attempts exhausted; the old stop stays
    ABANDONED = "abandoned"      # the position closed meanwhile

    @property
    def terminal(self) -> bool:
        return self in (BreakevenStatus.DONE, BreakevenStatus.GAVE_UP, BreakevenStatus.ABANDONED)


class BreakevenEvent(StrEnum):
    START = "start"                      # partial taken: move the stop to state.target
    PLACED = "placed"                    # the exchange accepted the new stop
    PLACE_FAILED = "place_failed"        # rejected, or an unknown outcome found not placed
    CONFIRMED = "confirmed"              # new stop read back live at the target, right side
    NOT_CONFIRMED = "not_confirmed"      # read back: not there
    POSITION_CLOSED = "position_closed"


class BreakevenAction(StrEnum):
    NONE = "none"
    PLACE_NEW_STOP = "place_new_stop"    # the engine cancels any unconfirmed remnant first
    VERIFY_NEW_STOP = "verify_new_stop"
    CANCEL_OLD_STOP = "cancel_old_stop"  # only ever after CONFIRMED
    ALERT_GAVE_UP = "alert_gave_up"      # old stop stays; tell the operator


@dataclass(frozen=True, slots=True)
class BreakevenState:
    target: Decimal | None = None
    attempts: int = 0
    status: BreakevenStatus = BreakevenStatus.IDLE
    max_attempts: int = 5


def start_breakeven(target: Decimal, max_attempts: int = 5) -> tuple[BreakevenState, BreakevenAction]:
    """Begin moving the stop to `target`: the first placement."""
    return next_breakeven_step(BreakevenState(target, 0, BreakevenStatus.IDLE, max_attempts),
                               BreakevenEvent.START)


def next_breakeven_step(state: BreakevenState,
                        event: BreakevenEvent) -> tuple[BreakevenState, BreakevenAction]:
    """Advance the breakeven move by one event. Events that do not apply are ignored."""
    status = state.status
    if status.terminal:
        return state, BreakevenAction.NONE
    if event is BreakevenEvent.POSITION_CLOSED:
        return replace(state, status=BreakevenStatus.ABANDONED), BreakevenAction.NONE
    if status is BreakevenStatus.IDLE:
        if event is not BreakevenEvent.START:
            return state, BreakevenAction.NONE
        if state.target is None:
            raise ValueError("breakeven START needs a target price")
        return _place(state)
    if event is BreakevenEvent.CONFIRMED:
        # A read-back can beat the ack (lost response): confirmation is what counts.
        return replace(state, status=BreakevenStatus.DONE), BreakevenAction.CANCEL_OLD_STOP
    if status is BreakevenStatus.PLACING and event is BreakevenEvent.PLACED:
        return replace(state, status=BreakevenStatus.CONFIRMING), BreakevenAction.VERIFY_NEW_STOP
    if ((status is BreakevenStatus.PLACING and event is BreakevenEvent.PLACE_FAILED)
            or (status is BreakevenStatus.CONFIRMING and event is BreakevenEvent.NOT_CONFIRMED)):
        return _place(state)
    return state, BreakevenAction.NONE


def _place(state: BreakevenState) -> tuple[BreakevenState, BreakevenAction]:
    if state.attempts >= state.max_attempts:
        return replace(state, status=BreakevenStatus.GAVE_UP), BreakevenAction.ALERT_GAVE_UP
    placing = replace(state, status=BreakevenStatus.PLACING, attempts=state.attempts + 1)
    return placing, BreakevenAction.PLACE_NEW_STOP
