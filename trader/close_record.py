"""The final record of a closed position, pure: why it closed and what it made.

Why, in this order: the exchange itself (its last closing fill came from a liquidation,
ADL or settlement order: Binance's special client ids, see `exchange_close_reason`), then
the final state of the position's own legs (take-profit filled; stop filled: a trailing
stop, a breakeven stop when its trigger was at or past the entry after the partial
take-profit, else the stop-loss), then the close the agent was making, else by hand.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from trader.domain import ZERO, CloseReason, Fill, Order, OrderStatus, exchange_close_reason
from trader.position import Position, PositionState


def close_reason(position: Position, stop: Order | None, take_profit: Order | None,
                 pending: CloseReason | None, fills: Sequence[Fill] = ()) -> CloseReason:
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
        trigger = stop.trigger_price if stop.trigger_price is not None else position.stop.trigger_price
        if position.partial_taken and (trigger - position.entry_price) * position.side.sign >= 0:
            return CloseReason.BREAKEVEN_STOP     # the stop had been moved to breakeven
        return CloseReason.STOP_LOSS
    if pending is not None and pending is not CloseReason.MANUAL:
        return pending
    return CloseReason.MANUAL


def closed(position: Position, at: datetime, reason: CloseReason,
           fills: Sequence[Fill]) -> Position:
    """The final record, PnL and fees from the position's exchange fills."""
    closing_side = position.side.opposite
    exits = [f for f in fills if f.side is closing_side]
    exit_qty = sum((f.quantity for f in exits), ZERO)
    exit_price = (sum((f.price * f.quantity for f in exits), ZERO) / exit_qty) if exit_qty else None
    realized = sum((f.realized_pnl for f in fills), ZERO)
    fees = sum((f.fee for f in fills), ZERO)
    return replace(position, state=PositionState.CLOSED, quantity=ZERO, closed_at=at,
                   close_reason=reason, exit_price=exit_price, realized_pnl=realized, fees=fees,
                   closing_reason=None)
