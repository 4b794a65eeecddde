"""Building `Position` records for tests: a protected long/short with both legs live, or any
state, without spelling out every field.

    position = protected(side=Side.BUY, quantity="0.1", entry="50000", stop="49500", tp="51000")
    naked = make(stop="49500", tp="51000", stop_order=None)
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.domain import ClientId, OrderRole, Side
from trader.position import Leg, LegOrder, Position, PositionState

OPENED = datetime(2024, 1, 1, tzinfo=UTC)
KEY = "k1"


def leg_id(symbol: str, role: OrderRole, seq: int = 1, key: str = KEY) -> str:
    return str(ClientId(symbol, key, role, seq))


def make(symbol: str = "BTCUSDT", side: Side = Side.BUY,
         state: PositionState = PositionState.PROTECTED, quantity: Any = "0.1",
         entry: Any = "50000", stop: Any = "49500", tp: Any = "51000", *,
         key: str = KEY, live_legs: bool | None = None, opened_at: datetime = OPENED,
         **changes: Any) -> Position:
    """A position; its legs carry live orders covering the quantity when `live_legs` (by
    default: whenever the state is PROTECTED)."""
    qty = Decimal(str(quantity))
    live = state is PositionState.PROTECTED if live_legs is None else live_legs
    legs = {}
    for role, price, name in ((OrderRole.STOP_LOSS, stop, "stop"),
                              (OrderRole.TAKE_PROFIT, tp, "take_profit")):
        trigger = Decimal(str(price))
        order = LegOrder(leg_id(symbol, role, key=key), trigger, qty) if live else None
        legs[name] = Leg(role, trigger, order)
    seq = {OrderRole.ENTRY.value: 1}
    if live:
        seq |= {OrderRole.STOP_LOSS.value: 1, OrderRole.TAKE_PROFIT.value: 1}
    fields: dict[str, Any] = dict(
        symbol=symbol, key=key, side=side, state=state, quantity=qty,
        entry_price=Decimal(str(entry)), leverage=5, opened_at=opened_at, seq=seq,
        initial_quantity=qty, initial_stop_price=Decimal(str(stop)), **legs)
    fields.update(changes)
    return Position(**fields)


def protected(**kwargs: Any) -> Position:
    return make(state=PositionState.PROTECTED, **kwargs)
