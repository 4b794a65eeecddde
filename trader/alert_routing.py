"""What reaches the operator, and how loud: the per-deployment alert settings
(TRADEBOT_ALERTS_SILENT / TRADEBOT_ALERTS_OFF), the merge window of trip/clear pairs, and
the rule that decides, alert by alert, whether Telegram rings.

    routing = AlertRouting.from_settings(settings)
    loudness = Loudness(routing)              # one per sink: it remembers what was heard
    silent = loudness.silent(outgoing)        # -> send_message(..., disable_notification=silent)

Pure: no I/O, no clock.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from trader.alerts import (
    ALL_CLEAR,
    Alert,
    AlertName,
    OutgoingAlert,
    Severity,
    troubles_ended_by,
)

if TYPE_CHECKING:
    from trader.config import Settings

MERGE_WINDOW = timedelta(minutes=45)
"""A breaker that trips and clears within this long is one message. A breaker blocks new
entries for TRADEBOT_BREAKER_MINUTES (5-10) after the last candle that tripped it, and the
crash check looks back 5 candles, so on 1m-5m candles one violent move keeps it on for
15-35 minutes (bundled XRPUSDT 5m replay: 10-55 min, median 20; BTCUSDT 15m: 30-60).
Holding the trip costs nothing: it is INFO (silent), breakers never touch exits or
protection, and /status shows them live. A breaker still on after 45 minutes is reported
then, its clear later. CRITICAL alerts are never held."""

TROUBLES = frozenset(ALL_CLEAR)
_CRITICAL = Severity.CRITICAL   # read once (an enum member read costs ~1,000 instructions)


@dataclass(frozen=True, slots=True)
class AlertRouting:
    """The operator's choices: names sent without sound, names not sent at all (still kept
    in the outbox for /alerts). CRITICAL names are refused in both (trader/config.py)."""
    silent: frozenset[AlertName] = frozenset()
    off: frozenset[AlertName] = frozenset()
    merge_window: timedelta = MERGE_WINDOW

    @classmethod
    def from_settings(cls, settings: "Settings") -> "AlertRouting":
        return cls(silent=frozenset(settings.alerts_silent), off=frozenset(settings.alerts_off))

    def is_off(self, alert: Alert) -> bool:
        return alert.level is not _CRITICAL and alert.name in self.off

    def holds(self, alert: Alert) -> bool:
        """A trip worth holding back a little in case its clear follows soon."""
        return alert.level is not Severity.CRITICAL and self.merge_window > timedelta(0)


@dataclass
class Loudness:
    """Whether an alert rings: CRITICAL and WARN do, INFO does not, the operator's silent
    list does not; an all-clear (or a close) rings when the trouble it ends rang, so an
    operator woken by SL_MISSING hears PROTECTION_RESTORED. Remembers, per sink, the
    troubles it let ring and have not ended (forgotten on restart: that all-clear is then
    silent, never lost)."""
    routing: AlertRouting = field(default_factory=AlertRouting)
    _ringing: set[tuple[str, str]] = field(default_factory=set)

    def silent(self, alert: OutgoingAlert) -> bool:
        ended = self._end(alert)
        if alert.severity == Severity.CRITICAL:
            quiet = False
        elif alert.name in self.routing.silent:
            quiet = True
        else:
            quiet = alert.severity == Severity.INFO and not ended
        if not quiet and alert.name in TROUBLES:
            self._ringing.add((alert.name, alert.symbol))
        return quiet

    def _end(self, alert: OutgoingAlert) -> bool:
        """Forget the troubles this alert ends; True if one of them rang."""
        ends = troubles_ended_by(alert.name)
        ended = {(name, symbol) for name, symbol in self._ringing
                 if name in ends and symbol == alert.symbol}
        self._ringing -= ended
        return bool(ended)


def breaker_label(subject: str) -> str:
    """"spread:XRPUSDT" -> "spread breaker on XRPUSDT"; "api" -> "api breaker"."""
    kind, _, symbol = subject.partition(":")
    return f"{kind} breaker on {symbol}" if symbol else f"{kind} breaker"


def merged_text(trip: Alert, tripped_at: datetime, cleared_at: datetime) -> str:
    """One message for a breaker that tripped and cleared within the merge window:
    "spread breaker on XRPUSDT: tripped 12:03, cleared 12:08 UTC" and the trip's reason
    (its first clause; the rest said until when entries were paused)."""
    reason = trip.text.split("; ", 1)[0]
    return (f"{breaker_label(trip.subject)}: tripped {tripped_at:%H:%M}, cleared "
            f"{cleared_at:%H:%M} UTC\n{reason}")
