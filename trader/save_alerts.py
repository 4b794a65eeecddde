"""When the operator hears that database writes fail (SAVE_STATE_FAILURE) or work again
(SAVE_STATE_RECOVERED): one voice for both, so a disk that fails and recovers every tick (a
nearly full disk, a lock another process takes now and then) is a message or two per
throttle window, and the last one said becomes the state now within that window.

The rules (the window is the alerter's throttle, 5 min):
- after a quiet window, a failure is said at once;
- a recovery after a failure message is said at once (a real outage's end);
- inside the window of the last message nothing more is said: the failures and recoveries
  are counted and the next message says how many;
- when the window ends, writes failing while the last message said they work is said.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from storage.health import WriteHealth


class Said(Enum):
    FAILURE = "failure"
    RECOVERED = "recovered"


@dataclass
class SaveAlerts:
    """What to say about the write health at one check, given what was said before.

    `step` is pure arithmetic on the counts the store's write health keeps; the caller
    publishes what it returns and adds what `said_now` returns to the text.
    """
    window: timedelta
    said: Said | None = None
    said_at: datetime | None = None
    failures_then: int = 0      # the write health's total_failures at the last message
    recoveries_then: int = 0    # its total_recoveries then

    def step(self, now: datetime, flagged: bool, failing: bool) -> list[Said]:
        """What to say now. `flagged`: a failure the write health marks for the operator
        (the 1st of a streak, the 3rd, 10th, 100th ...) since the last check; `failing`: the
        last write failed."""
        quiet = self.said_at is None or now - self.said_at >= self.window
        if not quiet:
            # A failure after a recovery inside the window waits (counted): a flapping disk
            # made it a CRITICAL every tick. Only the end of a failure said is told at once.
            return [Said.RECOVERED] if self.said is Said.FAILURE and not failing else []
        out: list[Said] = []
        if flagged or (failing and self.said is not Said.FAILURE):
            out.append(Said.FAILURE)
        if not failing and (out or self.said is Said.FAILURE):
            out.append(Said.RECOVERED)   # failed and worked again since the last check
        return out

    def said_now(self, what: Said, now: datetime, failures: int, recoveries: int) -> str:
        """Remember `what` as said at `now`; the note on what was not said since the last
        message ("" when nothing). `failures`, `recoveries`: the write health's totals."""
        note = self._note(what, now, failures, recoveries)
        self.said, self.said_at = what, now
        self.failures_then, self.recoveries_then = failures, recoveries
        return note

    def _note(self, what: Said, now: datetime, failures: int, recoveries: int) -> str:
        if self.said_at is None:
            return ""
        # a failure message names one failure itself: the others are "more like it"
        more = failures - self.failures_then - (1 if what is Said.FAILURE else 0)
        between = recoveries - self.recoveries_then
        if more <= 0:
            return ""
        since = f"{self.said_at:%H:%M}" if self.said_at.date() == now.date() \
            else f"{self.said_at:%Y-%m-%d %H:%M}"
        if what is Said.RECOVERED:
            return f"({more} failed writes since {since} UTC)"
        note = f"({more} more like it since {since} UTC"
        if between > 0:
            times = "once" if between == 1 else f"{between} times"
            note += f"; writes worked again {times} meanwhile: check the disk"
        return note + ")"


def failure_text(health: WriteHealth) -> str:
    """SAVE_STATE_FAILURE's text for the write health's last failure."""
    last = health.last
    text = (f"could not save {last.what if last else 'state'}: "
            f"{last.cause if last else ''}. New entries blocked; open "
            "positions stay protected.")
    if health.in_a_row >= 3:
        text += f" {health.in_a_row} failures in a row: consider /shutdown."
    return text
