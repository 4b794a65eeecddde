"""Building intents for a position's orders: deterministic client ids, reduce-only exits.

The client id comes from the position (`Position.next_client_id`, allocated by the state
machine when it decides to place an order), so the same decision always names the same id
and a restart finds the order instead of sending it twice.
"""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from trader.domain import ClientId, Intent, IntentStatus, OrderRole, OrderType, Side
from trader.position import Position

EXIT_TYPES = {
    OrderRole.STOP_LOSS: OrderType.STOP_MARKET,
    OrderRole.TAKE_PROFIT: OrderType.TAKE_PROFIT_MARKET,
    OrderRole.TAKE_PROFIT_1: OrderType.TAKE_PROFIT_MARKET,
    OrderRole.PARTIAL_TP: OrderType.MARKET,
    OrderRole.FLATTEN: OrderType.MARKET,
}
# read once (every entry): a member read through its class costs ~850 instructions on
# Python 3.11 (trader/exchange/sim_members.py)
_ENTRY, _MARKET, _LIMIT = OrderRole.ENTRY, OrderType.MARKET, OrderType.LIMIT
_PENDING, _SENT = IntentStatus.PENDING, IntentStatus.SENT


def entry_intent(position: Position, client_id: str, now: datetime,
                 quantity: Decimal | None = None) -> Intent:
    """The MARKET entry for the position's planned quantity (or `quantity`: the rest of a
    maker-first entry when its time is up)."""
    return Intent(client_id=client_id, symbol=position.symbol, role=_ENTRY,
                  side=position.side, type=_MARKET,
                  quantity=position.quantity if quantity is None else quantity,
                  position_key=position.key, created_at=now)


def quote_intent(position: Position, client_id: str, price: Decimal, quantity: Decimal,
                 now: datetime) -> Intent:
    """One quote of a maker-first entry: a LIMIT at `price` (on the tick grid), sent
    post-only (Intent.request: timeInForce GTX), see trader/maker_entry.py."""
    return Intent(client_id=client_id, symbol=position.symbol, role=_ENTRY,
                  side=position.side, type=_LIMIT, quantity=quantity,
                  position_key=position.key, created_at=now, price=price)


def exit_intent(position: Position, role: OrderRole, client_id: str, quantity: Decimal,
                now: datetime, trigger_price: Decimal | None = None,
                side: Side | None = None, sending: bool = False) -> Intent:
    """A reduce-only exit, by default on the closing side: it can never grow or flip the
    position (`side` is only given to rebalance a position a late fill flipped).
    `sending`: built as it leaves, SENT at `now` (`Executor.submit` journals it as it is),
    where a PENDING intent would only be copied to SENT there and dropped (one Intent less
    per leg, move and close); PENDING otherwise."""
    # by position, in Intent's field order (every leg, move and close; keywords cost
    # ~3,600 instructions more): client_id, symbol, role, side, type, quantity,
    # position_key, created_at, status, price, trigger_price, reduce_only,
    # close_position, sent_at (tests/test_intent_copies.py)
    if sending:
        return Intent(client_id, position.symbol, role, side or position.side.opposite,
                      EXIT_TYPES[role], quantity, position.key, now, _SENT, None,
                      trigger_price, True, False, now)
    return Intent(client_id, position.symbol, role, side or position.side.opposite,
                  EXIT_TYPES[role], quantity, position.key, now, _PENDING, None, trigger_price,
                  True)


# The part client ids of a market exit sent in parts lie this far apart in sequence: far
# beyond the state machine's own next closes (one sequence number each) and the
# rebalances' (trader/market_exit.py `_rebalance_id`: 100 beyond).
PART_SEQ_STRIDE = 1000


def part_client_id(client_id: str, number_: int) -> str:
    """The client id of part `number_` (from 0) of a market exit sent in parts: the exit's
    own for part 0, its sequence number + PART_SEQ_STRIDE x number_ for the others, so a
    restart finds each part by its id and none is sent twice. A market exit's id is always
    one of ours (`Position.next_client_id`); anything else is a ValueError."""
    if number_ == 0:
        return client_id
    parsed = ClientId.parse(client_id)
    if parsed is None:
        raise ValueError(f"not one of this agent's client ids: {client_id}")
    return str(replace(parsed, seq=parsed.seq + PART_SEQ_STRIDE * number_))
