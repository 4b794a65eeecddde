"""A close held back while the maker entry's quote is not known cancelled.

A /close of a maker entry (a position filled in part whose quote for the rest still
rests, or an entry still ENTERING) sends its market close once the quote is known gone
(trader/lifecycle.py `quotes_first`, `_filled_into_a_close`): a close sent while the quote
rests closes what is held now, and the quote's later fill is a position nobody records nor
protects. While the quote's cancel is not answered, or reads back live, the close waits
(the record's stop, if it has one, stays on the exchange meanwhile), bounded by
QUOTE_CANCEL_WAIT: past it the operator is told (CRITICAL) and what is held is closed anyway;
a fill of the quote after that is closed at market too (trader/late_entry_fill.py).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from trader import display
from trader.alerts import Alert, AlertName, Severity
from trader.position import Position, PositionState

# A cancel normally answers within a second and the quoter sends it again on every tick
# (2 s); 20 s is ~10 tries. Past that Binance is not taking our cancels in any useful time,
# and the position the operator wants out of (with no stop at all when the entry was still
# ENTERING) weighs more than the chance that the quote fills after the close.
QUOTE_CANCEL_WAIT = timedelta(seconds=20)


@dataclass(frozen=True, slots=True)
class Held:
    key: str
    since: datetime


class CloseHold:
    """Whether a close waiting for its quote (CLOSING, no close sent yet) still waits."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}      # symbol -> the close held there, since when

    @staticmethod
    def waits_for_quote(position: Position) -> bool:
        """A close that is sent only once the entry's quote is gone: CLOSING, none sent."""
        return position.state is PositionState.CLOSING and position.close_attempts == 0

    def holds(self, position: Position, quote_pending: bool, now: datetime
              ) -> tuple[bool, Alert | None]:
        """Whether to hold the close this tick (`quote_pending`: the quote is live or its
        cancel's answer is lost), and the alert to publish when the wait is given up."""
        held = self._held.get(position.symbol)
        if not quote_pending:
            self._held.pop(position.symbol, None)
            return False, None
        if held is None or held.key != position.key:
            held = self._held[position.symbol] = Held(position.key, now)
        if now - held.since < QUOTE_CANCEL_WAIT:
            logger.info("close held: the maker quote is not known cancelled yet symbol={} "
                        "key={} waited={}", position.symbol, position.key, now - held.since)
            return True, None
        self._held.pop(position.symbol, None)
        return False, _given_up(position, now - held.since)


def _given_up(position: Position, waited: timedelta) -> Alert:
    return Alert(
        AlertName.PROTECTION,
        f"{position.symbol}: the maker quote of the {position.side.label} is still not known "
        f"cancelled after {display.duration(waited)}; closing the "
        f"{display.number(position.quantity)} held at market anyway, as /close asked; should "
        "the quote fill after the close, the agent closes that fill at market too",
        position.symbol, severity=Severity.CRITICAL,
        dedup_key=f"close-held:{position.symbol}:{position.key}")
