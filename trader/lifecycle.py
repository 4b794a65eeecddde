"""The position state machine, pure: state + observation -> new state (+ what to do).

    ENTERING --entry fill confirmed--> ATTACHING --both legs verified--> PROTECTED
        |                                  |                                |
        +--------- position gone on the exchange (terminal, checked first) -+--> CLOSED
                                           PROTECTED --flatten sent--> CLOSING --> CLOSED

Nothing here calls the exchange, reads the clock or writes the database.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from trader.domain import (
    ZERO,
    CloseReason,
    ExchangePosition,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionState,
    Side,
    exchange_close_reason,
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the exchange says about one symbol at one moment."""
    symbol: str
    at: datetime
    position: ExchangePosition
    orders: list[Order]          # live orders on the symbol (ours and anybody's)
    mark: Decimal

    def live(self, client_id: str | None) -> Order | None:
        if client_id is None:
            return None
        return next((o for o in self.orders if o.client_id == client_id), None)


@dataclass(frozen=True, slots=True)
class Legs:
    """The live protective orders covering a position (ours, or placed by hand)."""
    stop: Order | None
    take_profit: Order | None


def is_terminal(position: Position, snap: Snapshot) -> bool:
    """Terminal detection: we hold an open position and the exchange has none (or flipped)."""
    if not position.state.open:
        return False
    side = snap.position.side
    return side is None or side is not position.side


def close_reason(position: Position, stop: Order | None, take_profit: Order | None,
                 pending: CloseReason | None, fills: Sequence[Fill] = ()) -> CloseReason:
    """Why a position disappeared: the exchange itself (its last closing fill came from a
    liquidation, ADL or settlement order), else the final state of its own exit orders,
    else the close we were doing (`pending`), else by hand (MANUAL)."""
    closing = [f for f in fills if f.side is position.side.opposite]
    if closing:
        by_exchange = exchange_close_reason(max(closing, key=lambda f: f.time).client_id)
        if by_exchange is not None:
            return by_exchange
    if take_profit is not None and take_profit.status is OrderStatus.FILLED:
        return CloseReason.TAKE_PROFIT
    if stop is not None and stop.status is OrderStatus.FILLED:
        if position.trailing_active:
            return CloseReason.TRAILING_STOP
        if position.breakeven_done:
            return CloseReason.BREAKEVEN_STOP
        return CloseReason.STOP_LOSS
    if pending is not None:
        return pending
    return CloseReason.MANUAL


def closed(position: Position, at: datetime, reason: CloseReason, fills: list[Fill]) -> Position:
    """The final record of a position, PnL and fees from its exchange fills."""
    closing_side = position.side.opposite
    exits = [f for f in fills if f.side is closing_side]
    exit_qty = sum((f.quantity for f in exits), ZERO)
    exit_price = (sum((f.price * f.quantity for f in exits), ZERO) / exit_qty) if exit_qty else None
    realized = sum((f.realized_pnl for f in fills), ZERO)
    fees = sum((f.fee for f in fills), ZERO)
    return replace(position, state=PositionState.CLOSED, quantity=ZERO, closed_at=at,
                   close_reason=reason, exit_price=exit_price, realized_pnl=realized, fees=fees)


def confirm_entry(position: Position, snap: Snapshot) -> Position | None:
    """ENTERING -> ATTACHING once the exchange shows the position; exits sized to the fill."""
    if position.state is not PositionState.ENTERING or snap.position.side is not position.side:
        return None
    return replace(position, state=PositionState.ATTACHING, quantity=snap.position.size,
                   initial_quantity=snap.position.size,
                   entry_price=snap.position.entry_price or position.entry_price)


def resized(position: Position, snap: Snapshot) -> Position | None:
    """A reduction we did not expect (partial close by hand): track the exchange's size."""
    if not position.state.open or snap.position.side is not position.side:
        return None
    if snap.position.size == position.quantity:
        return None
    return replace(position, quantity=snap.position.size)


def _closing_orders(position: Position, snap: Snapshot, kind: OrderType) -> list[Order]:
    return [o for o in snap.orders
            if o.type is kind and o.side is position.side.opposite and o.status.live
            and (o.reduce_only or o.close_position)]


def covers(order: Order, position: Position) -> bool:
    """A protective order protects the whole position (oversized reduce-only is fine)."""
    return order.close_position or order.quantity - order.filled_qty >= position.quantity


def find_legs(position: Position, snap: Snapshot) -> Legs:
    """Our tracked legs first; otherwise any live closing stop/TP (e.g. moved by hand)."""
    return Legs(
        stop=_pick(position.sl_client_id, _closing_orders(position, snap, OrderType.STOP_MARKET)),
        take_profit=_pick(position.tp_client_id,
                          _closing_orders(position, snap, OrderType.TAKE_PROFIT_MARKET)))


def _pick(tracked: str | None, candidates: list[Order]) -> Order | None:
    for order in candidates:
        if order.client_id == tracked:
            return order
    return candidates[0] if candidates else None


def protected(position: Position) -> Position:
    """ATTACHING -> PROTECTED once both legs are verified on the exchange."""
    if position.state is PositionState.ATTACHING:
        return replace(position, state=PositionState.PROTECTED)
    return position


def adopt_leg_prices(position: Position, legs: Legs) -> Position:
    """Respect legs found on the exchange (a stop moved by hand is not fought)."""
    changes: dict[str, object] = {}
    if legs.stop is not None and legs.stop.client_id != position.sl_client_id:
        changes.update(sl_client_id=legs.stop.client_id, sl_price=legs.stop.stop_price)
    if legs.take_profit is not None and legs.take_profit.client_id != position.tp_client_id:
        changes.update(tp_client_id=legs.take_profit.client_id, tp_price=legs.take_profit.stop_price)
    return replace(position, **changes) if changes else position


@dataclass(frozen=True, slots=True)
class FlattenCheck:
    done: bool
    remainder: Decimal       # same side still open
    flipped: Decimal         # opposite side opened by a late fill (must be rebalanced)
    flip_side: Side | None


def check_flatten(position_side: Side, after: ExchangePosition) -> FlattenCheck:
    """Post-market verify: after a flatten the position must be gone, never flipped."""
    if after.side is None:
        return FlattenCheck(True, ZERO, ZERO, None)
    if after.side is position_side:
        return FlattenCheck(False, after.size, ZERO, None)
    return FlattenCheck(False, ZERO, after.size, after.side)


def entry_role_fills(fills: list[Fill], key: str) -> list[Fill]:
    marker = f"-{key}-{OrderRole.ENTRY.value}"
    return [f for f in fills if marker in f.client_id]
