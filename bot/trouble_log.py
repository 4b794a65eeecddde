"""One CRITICAL log line when a lasting Telegram trouble begins, a reminder at a slow rate while
it lasts, and one line when it ends, instead of a CRITICAL line at every retry.

A revoked token is retried by polling (up to every 30 s) and by every alert delivery pass;
a chat that blocked the bot is retried every few minutes. Each retry used to log CRITICAL,
which buried the rest of /logs and paged a log watcher over and over for one cause.

    token = TroubleLog("telegram refuses TELEGRAM_BOT_TOKEN", remind_every=900)
    token.fail("getUpdates answered 401")   # CRITICAL the first time, then every 15 min
    token.recovered()                       # "... ended after 2 h 3 min" (if it failed)
"""

import time
from collections.abc import Callable
from datetime import timedelta

from loguru import logger

from trader.display import duration

REMIND_EVERY = 900.0   # seconds between reminders of a trouble that lasts


class TroubleLog:
    """The log lines of one trouble (a token refused, one chat blocked). `now`: seconds on a
    monotonic clock (tests pass their own)."""

    def __init__(self, trouble: str, remind_every: float = REMIND_EVERY,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.trouble = trouble
        self.remind_every = remind_every
        self.now = now
        self.since: float | None = None        # when the trouble began; None: no trouble
        self.repeats = 0                        # failures since the last line logged
        self._next_reminder = 0.0

    @property
    def failing(self) -> bool:
        return self.since is not None

    def fail(self, detail: str) -> None:
        """One more failure of this kind: logged CRITICAL if it is the first or a reminder is
        due, at DEBUG otherwise."""
        now = self.now()
        if self.since is None:
            self.since, self.repeats = now, 0
            self._next_reminder = now + self.remind_every
            logger.critical("{} ({})", self.trouble, detail)
            return
        self.repeats += 1
        if now < self._next_reminder:
            logger.debug("{} still ({})", self.trouble, detail)
            return
        self._next_reminder = now + self.remind_every
        logger.critical("{} still, for {} ({} more times since the last line; {})",
                        self.trouble, duration_text(now - self.since), self.repeats, detail)
        self.repeats = 0

    def recovered(self, detail: str = "") -> None:
        """The trouble is over: one line saying so and how long it lasted (nothing if none)."""
        if self.since is None:
            return
        lasted = duration_text(self.now() - self.since)
        self.since = None
        logger.warning("{} ended after {}{}", self.trouble, lasted, f"; {detail}" if detail else "")


def duration_text(seconds: float) -> str:
    return duration(timedelta(seconds=max(seconds, 0.0)))
