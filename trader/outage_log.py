"""A failure that repeats for as long as it lasts, said once per outage: a WARNING when it
starts, an INFO with how long it lasted when it ends (as trader/exchange/websocket_stream.py
`StreamHealth` says a stream's outage), DEBUG in between. An IP ban lasts up to 3 days
(USD-M General Info, LIMITS) and a missing mark can outlast any number of ticks: said on
every try, one failure buries the rest of the log in thousands of identical lines.

    no_mark = OutageLog(clock)
    no_mark.failed("BTCUSDT", "no mark price this tick symbol={} error={}", "BTCUSDT", exc)
    ...
    no_mark.ended("BTCUSDT", "mark price read again symbol={}", "BTCUSDT")
"""

from datetime import datetime

from loguru import logger

from trader import display
from trader.clock import Clock


class OutageLog:
    """The outages of one kind of failure, by key (a symbol; "" when there is one)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # key -> (when its outage started, how many failures it counted so far); empty while
        # nothing fails, which the hot paths test before anything else (`since`)
        self.since: dict[str, tuple[datetime, int]] = {}

    def failing(self, key: str = "") -> bool:
        """Whether `key` is in an outage (its first failure said, no success since)."""
        return key in self.since

    def failed(self, key: str, message: str, *args: object) -> None:
        """One failure: `message` (loguru's braces, filled from `args`) as a WARNING when it
        starts `key`'s outage, as DEBUG while the outage lasts."""
        started = self.since.get(key)
        if started is None:
            self.since[key] = (self._clock.now(), 1)
            logger.opt(depth=1).warning(message, *args)    # the caller's name on the line
            return
        self.since[key] = (started[0], started[1] + 1)
        logger.opt(depth=1).debug(message, *args)

    def ended(self, key: str, message: str, *args: object) -> None:
        """A success: when it ends `key`'s outage, `message` as an INFO followed by how long
        the outage lasted and how many failures it counted; nothing otherwise."""
        started = self.since.pop(key, None)
        if started is None:
            return
        since, failures = started
        lasted = display.duration(self._clock.now() - since)
        logger.opt(depth=1).info(message + " after {} ({} failed)", *args, lasted, failures)
