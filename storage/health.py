"""The one record of whether database writes work: every write reports here.

`Store` reports the outcome of each outermost write (intents, orders, fills, positions,
guards, events, alerts outbox, key-value state) to its `WriteHealth`. The engine reads it
once per tick: it flags the first failure, the third (the alert suggests /shutdown), then the
10th, 100th, 1000th..., and the first success after a streak; trader/save_alerts.py decides
which of these the operator hears (SAVE_STATE_FAILURE, SAVE_STATE_RECOVERED). A
write that goes around the engine (the alert outbox, the paper exchange's state) counts all
the same.
"""

from collections.abc import Callable
from dataclasses import dataclass

from storage.db import SaveStateFailure


@dataclass
class WriteHealth:
    """Consecutive write failures, and what the engine still has to report about them."""
    in_a_row: int = 0
    total_failures: int = 0
    last: SaveStateFailure | None = None
    pending_alert: bool = False        # a failure the operator has not been told about yet
    pending_recovery: bool = False     # a streak ended; tell the operator writes work again
    # Streaks ended (a success after failures): the alerts count the recoveries a disk that
    # fails and works by turns had between two messages (trader/save_alerts.py).
    total_recoveries: int = 0
    # Called with True when a streak of failures begins, False when it ends (storage/store.py:
    # the connection stops waiting for a lock while writes fail).
    on_streak: Callable[[bool], None] | None = None

    def failed(self, exc: SaveStateFailure) -> None:
        """Count a failure; alert on the first, on the third (suggest /shutdown), then on the
        10th, 100th, 1000th... Failures come several a second while another process locks
        the file (the agent no longer waits for it: storage/db.py), so every 10th was a
        CRITICAL message every few seconds."""
        self.in_a_row += 1
        if self.in_a_row == 1 and self.on_streak is not None:
            self.on_streak(True)
        self.total_failures += 1
        self.last = exc
        self.pending_recovery = False
        if self.in_a_row in (1, 3) or _power_of_ten(self.in_a_row):
            self.pending_alert = True

    def succeeded(self) -> None:
        if self.in_a_row:
            self.pending_recovery = True
            self.total_recoveries += 1
            if self.on_streak is not None:
                self.on_streak(False)
        self.in_a_row = 0

    @property
    def failing(self) -> bool:
        return self.in_a_row > 0

    def take_alert(self) -> bool:
        """True once per failure the operator must hear about."""
        due, self.pending_alert = self.pending_alert, False
        return due

    def take_recovery(self) -> bool:
        """True once when writes work again after failing."""
        due, self.pending_recovery = self.pending_recovery, False
        return due


def _power_of_ten(count: int) -> bool:
    """10, 100, 1000 ... (and 1)."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1
