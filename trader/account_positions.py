"""The account's positions the agent does not manage (opened by hand, on a symbol it does
not trade, or left alone with TRADEBOT_ADOPT_POSITIONS=false), as the exchange last showed
them, for the operator's replies and the STARTUP and SHUTDOWN alerts.

No request is sent for them. Two sources the agent reads anyway are merged, the newer
telling for each symbol:
- the balance read (GET /fapi/v2/account, every 60 s while streaming, 10 s while polling:
  trader/balance_keeper.py) lists every symbol's position with the totals;
- the user-data stream's ACCOUNT_UPDATE tells a position of any symbol as it changes, and
  the reconciliation's reads tell the traded symbols' (the order tracker keeps both).
So a position is at most one balance read old, or as fresh as the stream. Whether a
stop-loss covers it is known from the orders the agent has seen on the symbol: every order
of a traded symbol, and on any other only those the stream told since the start (one placed
before is not seen: said "NO stop-loss seen").

    for held in unmanaged(engine):       # -> list[Unmanaged], by symbol
        held.position, held.seen_at, held.stop
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from trader.display import duration, quantity
from trader.domain import ZERO, ExchangePosition, Order, OrderType
from trader.position import PositionState

if TYPE_CHECKING:
    from trader.engine_parts import EngineParts


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """A position on the account the agent does not manage: the exchange's, when it showed
    it (`seen_at`), and the stop-loss order seen covering it, if any."""
    position: ExchangePosition
    seen_at: datetime
    stop: Order | None

    def line(self, now: datetime) -> str:
        """"ETHUSDT SHORT 3 @ 2975.98, not managed by the agent, NO stop-loss seen (as the
        exchange showed it 12 s ago)"."""
        held = self.position
        side = held.side.label if held.side is not None else "FLAT"
        cover = (f"stop-loss at {self.stop.trigger_price}" if self.stop is not None
                 else "NO stop-loss seen")
        return (f"{held.symbol} {side} {quantity(held.size, None)} @ {held.entry_price}, not "
                f"managed by the agent, {cover} (as the exchange showed it "
                f"{duration(max(now - self.seen_at, timedelta(0)))} ago)")


def unmanaged(engine: "EngineParts") -> list[Unmanaged]:
    """The open positions the exchange last showed on symbols where the agent has no
    position of its own (none, or a CLOSED record), by symbol."""
    seen = dict(engine.tracker.positions_seen())
    balance, read_at = engine.balance, engine.balance_at
    if balance is not None and read_at is not None and balance.positions is not None:
        listed = {p.symbol for p in balance.positions}
        for position in balance.positions:
            told = seen.get(position.symbol)
            if told is None or told[1] < read_at:
                seen[position.symbol] = (position, read_at)
        for symbol, (position, at) in list(seen.items()):
            if symbol not in listed and at < read_at and position.side is not None:
                seen[symbol] = (replace(position, quantity=ZERO), read_at)   # flat since
    found = []
    for symbol in sorted(seen):
        position, at = seen[symbol]
        record = engine.positions.get(symbol)
        if position.side is None or (record is not None
                                     and record.state is not PositionState.CLOSED):
            continue
        found.append(Unmanaged(position, at, covering_stop(engine, position)))
    return found


def covering_stop(engine: "EngineParts", position: ExchangePosition) -> Order | None:
    """A live stop-loss order seen on the symbol that closes the whole position: on the
    other side, closePosition or reduce-only for at least its size."""
    side = position.side
    for order in engine.tracker.live(position.symbol):
        if side is None or order.type is not OrderType.STOP_MARKET or order.side is side:
            continue
        if order.close_position or (order.reduce_only and order.quantity >= position.size):
            return order
    return None


def unmanaged_text(engine: "EngineParts") -> str:
    """One line per position the agent does not manage, each after a line break ("" when
    none), for the STARTUP and SHUTDOWN alerts."""
    now = engine.clock.now()
    return "".join(f"\n{held.line(now)}" for held in unmanaged(engine))
