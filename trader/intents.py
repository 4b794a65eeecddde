"""Building intents for a position: deterministic client ids, reduce-only exits."""

from datetime import datetime
from decimal import Decimal

from trader.domain import Intent, OrderRole, OrderType, Position

EXIT_TYPES = {
    OrderRole.STOP_LOSS: OrderType.STOP_MARKET,
    OrderRole.TAKE_PROFIT: OrderType.TAKE_PROFIT_MARKET,
    OrderRole.PARTIAL_TP: OrderType.MARKET,
    OrderRole.FLATTEN: OrderType.MARKET,
}


def entry_intent(position: Position, now: datetime) -> tuple[Position, Intent]:
    position, client_id = position.next_client_id(OrderRole.ENTRY)
    return position, Intent(
        client_id=client_id, symbol=position.symbol, role=OrderRole.ENTRY, side=position.side,
        type=OrderType.MARKET, quantity=position.quantity, position_key=position.key,
        created_at=now)


def exit_intent(position: Position, role: OrderRole, quantity: Decimal, now: datetime,
                stop_price: Decimal | None = None) -> tuple[Position, Intent]:
    """A reduce-only exit on the closing side; it can never increase or flip the position."""
    position, client_id = position.next_client_id(role)
    return position, Intent(
        client_id=client_id, symbol=position.symbol, role=role, side=position.side.opposite,
        type=EXIT_TYPES[role], quantity=quantity, position_key=position.key, created_at=now,
        stop_price=stop_price, reduce_only=True)
