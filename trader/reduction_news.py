"""What the phone is told when a position got smaller: who reduced it, said only once a fill
says so. Binance may push the smaller position (ACCOUNT_UPDATE) before the fill that made it
(ORDER_TRADE_UPDATE), and the trade list can fail to read: a reduction nothing known explains
waits up to WAIT_FOR_FILL for its fill, then is said with its cause not known yet, and the
cause follows once a fill shows it."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from trader import display
from trader.alerts import Alert, AlertName, Severity
from trader.domain import LIQUIDATION_ADVICE, CloseReason, Side
from trader.position import Position

# A fill and its ACCOUNT_UPDATE share one transaction time ("T"): the other event comes
# within the same second on a healthy stream; a tick comes every second.
WAIT_FOR_FILL = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class Unexplained:
    """A reduction of position `key` (from `before` to `after`) whose fill is not heard yet,
    seen first at `since`. `told`: said already, with its cause not known."""
    key: str
    before: Decimal
    after: Decimal
    since: datetime
    told: bool = False

    def due(self, now: datetime) -> bool:
        """Whether the wait for its fill is over (said now, cause not known yet)."""
        return not self.told and now - self.since >= WAIT_FOR_FILL


class UnsaidReductions:
    """The reductions taken without a word yet, one per symbol: no fill known explains them
    (their ORDER_TRADE_UPDATE not heard yet), so who made them is said once one does,
    never guessed (trader/position_keeper.py `tell_cause`)."""

    def __init__(self) -> None:
        self.pending: dict[str, Unexplained] = {}

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.pending

    def __bool__(self) -> bool:
        return bool(self.pending)

    def awaits(self, position: Position) -> bool:
        """Whether a reduction of `position` is unsaid (one of a position since closed is
        dropped: its close said the rest)."""
        pending = self.pending.get(position.symbol)
        if pending is not None and pending.key != position.key:
            del self.pending[position.symbol]
            return False
        return pending is not None

    def hold(self, position: Position, quantity: Decimal, unheard: bool,
             now: datetime) -> bool:
        """Whether the reduction of `position` to `quantity` waits for its fill (kept
        here; the record takes the size without a word): `unheard`, nothing known says
        who made it (trader/reconcile.py `cause_unheard`). From where the last one still
        unsaid started, if any."""
        if not unheard:
            return False
        known = self.pending.get(position.symbol)
        before = position.quantity
        if known is not None and known.key == position.key and not known.told:
            before = known.before
        self.pending[position.symbol] = Unexplained(position.key, before, quantity, now)
        logger.info("size reduced with nothing known to say who did it yet symbol={} "
                    "from={} to={}: said once its fill is known", position.symbol, before,
                    quantity)
        return True

    def settle(self, position: Position, unheard: bool, cause: str,
               by_exchange: CloseReason | None, now: datetime, keep_waiting: bool
               ) -> Alert | None:
        """What to say now of the symbol's unsaid reduction. `unheard`: still nothing known
        says who made it (`cause_unheard` of the record's size now); else `cause` and
        `by_exchange` say it (trader/reconcile.py `reduction_cause`, `reduced_by_exchange`):
        POSITION_REDUCED as it would have been said at once (nothing for the agent's own
        plan), or the cause after a `cause_unknown_alert`. Past WAIT_FOR_FILL still
        unheard: said with its cause not known yet. Then a trade list read that lacks it
        ends the wait, logged: the reads stop; `keep_waiting` (inside a Retry-After: the
        fill may still be heard; or the read failed) keeps it."""
        symbol, side = position.symbol, position.side
        if not self.awaits(position):
            return None
        pending = self.pending[symbol]
        if not unheard:
            del self.pending[symbol]
            if pending.told:
                return cause_found_alert(symbol, side, pending,
                                         cause or "by an order of its own", by_exchange)
            return reduced_alert(symbol, side, pending.before, pending.after, cause,
                                 by_exchange) if cause else None
        if pending.due(now):
            self.pending[symbol] = replace(pending, told=True)
            return cause_unknown_alert(symbol, side, pending)
        if pending.told and not keep_waiting:
            del self.pending[symbol]
            logger.warning("nothing says who reduced the position symbol={} from={} to={}; "
                           "the trade list read lacks its fill too", symbol, pending.before,
                           pending.after)
        return None


def reduced_alert(symbol: str, side: Side, before: Decimal, after: Decimal, cause: str,
                  by_exchange: CloseReason | None) -> Alert:
    """POSITION_REDUCED naming who reduced it (`cause`, trader/reconcile.py
    `reduction_cause`). A partial liquidation comes from this account's margin, as a whole
    one does (EXCHANGE_CLOSE): it sounds, with the same advice. An ADL does not (a
    counterparty's)."""
    text = (f"{symbol}: {side.label} reduced {cause} from {display.number(before)} to "
            f"{display.number(after)}; protection follows the new size")
    return _with_liquidation(Alert(AlertName.POSITION_REDUCED, text, symbol,
                                   dedup_key=f"reduced:{symbol}:{after}"), by_exchange)


def cause_unknown_alert(symbol: str, side: Side, pending: Unexplained) -> Alert:
    """The reduction said without a cause: no fill of it heard within WAIT_FOR_FILL."""
    text = (f"{symbol}: {side.label} reduced from {display.number(pending.before)} to "
            f"{display.number(pending.after)}; who reduced it is not known yet (no fill of "
            "it known): said once a fill shows it. Protection follows the new size")
    return Alert(AlertName.POSITION_REDUCED, text, symbol,
                 dedup_key=f"reduced:{symbol}:{pending.after}")


def cause_found_alert(symbol: str, side: Side, pending: Unexplained, cause: str,
                      by_exchange: CloseReason | None) -> Alert:
    """The cause of a reduction said before without it (`cause_unknown_alert`)."""
    text = (f"{symbol}: the {side.label} reduction from {display.number(pending.before)} to "
            f"{display.number(pending.after)} was made {cause}")
    return _with_liquidation(Alert(AlertName.POSITION_REDUCED, text, symbol,
                                   dedup_key=f"reduced-cause:{symbol}:{pending.after}"),
                             by_exchange)


def _with_liquidation(alert: Alert, by_exchange: CloseReason | None) -> Alert:
    if by_exchange is not CloseReason.LIQUIDATION:
        return alert
    text = (f"{alert.text}. Binance liquidated part of it: the margin was insufficient. "
            + LIQUIDATION_ADVICE)
    return Alert(alert.name, text, alert.symbol, severity=Severity.CRITICAL,
                 dedup_key=alert.dedup_key)
