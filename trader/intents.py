"""Building intents for a position's orders: deterministic client ids, reduce-only exits.

The client id comes from the position (`Position.next_client_id`, allocated by the state
machine when it decides to place an order), so the same decision always names the same id
and a restart finds the order instead of sending it twice.
"""

from datetime import datetime
from decimal import Decimal

from trader.domain import Intent, OrderRole, OrderType, Side
from trader.position import Position

EXIT_TYPES = {
    OrderRole.STOP_LOSS: OrderType.STOP_MARKET,
    OrderRole.TAKE_PROFIT: OrderType.TAKE_PROFIT_MARKET,
    OrderRole.PARTIAL_TP: OrderType.MARKET,
    OrderRole.FLATTEN: OrderType.MARKET,
}


def entry_intent(position: Position, client_id: str, now: datetime) -> Intent:
    """The MARKET entry for the position's planned quantity."""
    return Intent(client_id=client_id, symbol=position.symbol, role=OrderRole.ENTRY,
                  side=position.side, type=OrderType.MARKET, quantity=position.quantity,
                  position_key=position.key, created_at=now)


def exit_intent(position: Position, role: OrderRole, client_id: str, quantity: Decimal,
                now: datetime, trigger_price: Decimal | None = None,
                side: Side | None = None) -> Intent:
    """A reduce-only exit, by default on the closing side: it can never grow or flip the
    position (`side` is only given to rebalance a position a late fill flipped)."""
    return Intent(client_id=client_id, symbol=position.symbol, role=role,
                  side=side or position.side.opposite, type=EXIT_TYPES[role], quantity=quantity,
                  position_key=position.key, created_at=now, trigger_price=trigger_price,
                  reduce_only=True)
