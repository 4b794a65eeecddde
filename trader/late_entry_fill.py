"""The safety net behind a close that waited for its maker quote (trader/close_hold.py):
a fill of a closed record's entry quote that came after its close.

A close sent anyway past QUOTE_CANCEL_WAIT leaves the quote possibly live: should it trade
afterwards, the exchange holds a position that no record has and no stop protects
(TRADEBOT_ADOPT_POSITIONS=false leaves it alone; on, it would be adopted as somebody
else's). A journaled fill of an ENTRY order of the symbol's last closed record, timed at or
after its close, is that position: it is adopted whatever the setting and closed at market,
with a CRITICAL alert (trader/position_keeper.py `adopt`).
"""

from collections.abc import Iterable

from trader import display
from trader.alerts import Alert, AlertName, Severity
from trader.domain import ClientId, Fill, OrderRole
from trader.position import Position


def late_entry_fill(closed: Position | None, fills: Iterable[Fill]) -> Fill | None:
    """The first fill of `closed`'s own entry orders timed at or after its close, if any."""
    if closed is None or closed.closed_at is None:
        return None
    for fill in fills:
        parsed = ClientId.parse(fill.client_id)
        if parsed is not None and parsed.role is OrderRole.ENTRY \
                and parsed.symbol == closed.symbol and parsed.position_key == closed.key \
                and fill.time >= closed.closed_at:
            return fill
    return None


def late_fill_alert(closed: Position, fill: Fill, held: Position) -> Alert:
    return Alert(
        AlertName.POSITION_UNPROTECTED,
        f"{closed.symbol}: the maker quote {fill.client_id} of the closed "
        f"{closed.side.label} ({closed.key}) filled after its close "
        f"({display.number(fill.quantity)} at {display.number(fill.price)}): the exchange "
        f"holds {display.number(held.quantity)} again; closing it at market now",
        closed.symbol, severity=Severity.CRITICAL,
        dedup_key=f"late-entry-fill:{closed.symbol}:{fill.trade_id}")
