"""In what order waiting alerts go out: urgent ones first, each group in publication order.

Urgent: a CRITICAL alert (SAVE_STATE_FAILURE, SL_MISSING ...: it must not wait behind a
backlog of FILL chatter after an outage or under flood control), and an alert that ends a
CRITICAL trouble the operator has been (or is about to be) told of: PROTECTION_RESTORED after
SL_MISSING, SAVE_STATE_RECOVERED after SAVE_STATE_FAILURE, a CLOSE of a position whose stop
was missing (trader/alerts.py `troubles_ended_by`). Were the all-clear left behind, a
trouble that came back (failure, recovered, failure) would read "failure, failure,
recovered": the opposite of the truth. An all-clear of a trouble nobody was told of waits its
turn with the rest, and so does a CLOSE behind a FILL of its symbol still waiting (an entry
closed at once: its stop-loss level already passed), so a CLOSE never jumps ahead of the
FILL that opened the position.

    order = UrgencyOrder()
    queue = order.arrange(waiting)      # waiting: publication order; -> (queue, urgent count)
    order.delivered(alert)              # after each alert Telegram took
"""

from collections.abc import Sequence
from typing import TypeVar

from trader.alerts import (
    ALL_CLEAR,
    CLOSES,
    DEFAULT_SEVERITY,
    ENDED_BY_CLOSE,
    AlertName,
    OutgoingAlert,
    Severity,
    troubles_ended_by,
)

Trouble = tuple[str, str]     # (alert name, symbol)
_FILL = AlertName.FILL.value
T = TypeVar("T")

CRITICAL_TROUBLES = frozenset(name for name, level in DEFAULT_SEVERITY.items()
                              if level is Severity.CRITICAL)
ENDS_CRITICAL = sorted({clear.value for trouble, clear in ALL_CLEAR.items()
                        if trouble in CRITICAL_TROUBLES}
                       | ({name.value for name in CLOSES} if ENDED_BY_CLOSE & CRITICAL_TROUBLES
                          else set()))
"""Names that may end a CRITICAL trouble: read from the outbox with the CRITICAL alerts, so
an all-clear far down a backlog is not overtaken by its trouble's return."""


def is_critical(alert: OutgoingAlert) -> bool:
    return alert.severity == Severity.CRITICAL


def _opened_by(alert: OutgoingAlert, filled: set[str]) -> bool:
    """A close whose position's FILL waits still: told after it, in publication order."""
    return alert.name in CLOSES and alert.symbol in filled


def _ends(alert: OutgoingAlert) -> set[Trouble]:
    return {(name.value, alert.symbol) for name in troubles_ended_by(alert.name)}


class UrgencyOrder:
    """Remembers the CRITICAL troubles delivered and not yet ended (in memory: after a
    restart an all-clear simply waits its turn)."""

    def __init__(self) -> None:
        self.open_troubles: set[Trouble] = set()

    def arrange(self, waiting: Sequence[tuple[T, OutgoingAlert]]) -> tuple[list[T], int]:
        """`waiting` (item, alert) in publication order -> the items in delivery order, and
        how many of the first ones are urgent."""
        told = set(self.open_troubles)
        urgent: list[T] = []
        rest: list[T] = []
        filled: set[str] = set()       # symbols with a FILL waiting in `rest`
        for item, alert in waiting:
            if is_critical(alert):
                urgent.append(item)
                told.add((alert.name, alert.symbol))
            elif (ended := _ends(alert) & told) and not _opened_by(alert, filled):
                urgent.append(item)
                told -= ended
            else:
                rest.append(item)
                if alert.name == _FILL:
                    filled.add(alert.symbol)
        return urgent + rest, len(urgent)

    def delivered(self, alert: OutgoingAlert) -> None:
        if is_critical(alert):
            self.open_troubles.add((alert.name, alert.symbol))
        else:
            self.open_troubles -= _ends(alert)
