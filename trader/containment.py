"""The boundary around one unit of work (a symbol's tick, a command, a periodic job): what
escapes it is logged, counted and alerted here and goes no further. Keeps the last failure
for /status."""

import math
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from loguru import logger

from trader import breaker_rules
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.exchange.base import CircuitOpen, ExchangeError, UnknownOutcome
from trader.guard_book import GuardBook

T = TypeVar("T")


class Containment:
    """`contained(what, work)` runs `work` and turns what escapes it into a log line, an
    API-failure count (exchange trouble) or an ERROR alert (anything else)."""

    def __init__(self, guard_book: GuardBook, alerter: Alerter, clock: Clock) -> None:
        self.guards = guard_book
        self.alerter = alerter
        self.clock = clock
        self._last_error: str | None = None   # "what: why" (`readable`), for /status
        self.last_error_at: datetime | None = None   # when it was set: /status tells its age
        # Backtests set it: an unexpected error ends the run instead of skipping the unit
        # (a replayed tick cannot be retried; a report over skipped ticks never happened).
        self.fail_fast = False
        # When the API circuit whose refusals were logged opened (`_refused`: once each).
        self._refusals_logged_for: datetime | None = None

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @last_error.setter
    def last_error(self, text: str | None) -> None:
        self._last_error = text
        self.last_error_at = self.clock.now() if text is not None else None

    async def contained(self, what: str, work: Awaitable[T], symbol: str = "") -> T | None:
        """Run one unit of work; what escapes it is logged, counted and alerted here and
        goes no further. The work's result, None when it failed."""
        try:
            return await work
        except Exception as exc:  # the boundary: `failed` logs, counts and alerts it
            if not self.failed(what, exc, symbol):
                raise     # a backtest: it ends with one line (trader/backtest.py)
        return None

    def failed(self, what: str, exc: Exception, symbol: str = "") -> bool:
        """What escaped one unit of work (`what`, e.g. "tick BTCUSDT"), logged, counted and
        alerted; False when it is to propagate instead (an unexpected error under
        `fail_fast`). A hot loop catches and calls this itself (the engine's tick: one
        coroutine fewer per symbol); everything else runs through `contained`."""
        if isinstance(exc, CircuitOpen):
            self._refused(what, exc, symbol)
            return True
        if isinstance(exc, ExchangeError | UnknownOutcome):
            # Expected trouble (the exchange said no, or did not answer): no fresh view this
            # tick for this unit; the API-failure breaker counts streaks.
            self._record_failure(what, exc, symbol)
            return True
        if self.fail_fast:
            return False
        logger.opt(exception=exc).error("unexpected error in {} symbol={}", what, symbol or "-")
        self._record_failure(what, exc, symbol)
        self.alerter.publish(Alert(
            AlertName.ERROR, f"{what}: unexpected error {type(exc).__name__}: {exc}; "
            "skipped this time, protection keeps running", symbol,
            dedup_key=f"error:{what}:{type(exc).__name__}"), self.clock.now())
        return True

    def _refused(self, what: str, exc: CircuitOpen, symbol: str) -> None:
        """A request our own gate did not send inside a Retry-After (exchange/gate.py): what
        the circuit is for, not an error, and no API failure (nothing reached Binance; the
        429/418 that opened it was counted). Logged once per circuit: the candle feed and
        every symbol's tick meet it every few seconds until it closes, which filled /logs."""
        self.last_error = f"{what}: {readable(exc)}"
        if exc.opened_at is not None and exc.opened_at == self._refusals_logged_for:
            logger.debug("not sent, API circuit open what={} symbol={}", what, symbol or "-")
            return
        self._refusals_logged_for = exc.opened_at
        logger.warning("not sent while the API circuit is open what={} symbol={} error={}; "
                       "the work waits for the circuit to close (said once per circuit)",
                       what, symbol or "-", exc)

    def _record_failure(self, what: str, exc: BaseException, symbol: str) -> None:
        self.last_error = f"{what}: {readable(exc)}"
        logger.error("failed what={} symbol={} error={}", what, symbol or "-", exc)
        if isinstance(exc, ExchangeError | UnknownOutcome):
            self.guards.apply(breaker_rules.record_api_result, False, self.clock.now(),
                              self.guards.config)


def readable(exc: BaseException) -> str:
    """A failure as the phone shows it (/status's "Last error", a failed command's line):
    an exchange error in Binance's words, a rate-limit circuit as the wait it imposes; any
    other error with its type first (a bug: what a report needs). The log keeps the
    exception's own text."""
    if isinstance(exc, CircuitOpen):
        kind = "IP ban" if exc.http_status == 418 else "rate limit"
        wait = math.ceil(exc.retry_after or 0)
        return (f"not sent: Binance {kind} (HTTP {exc.http_status}), nothing is sent for "
                f"{wait} s more")
    if isinstance(exc, ExchangeError):
        return f"Binance error {exc.code} (HTTP {exc.http_status}): {exc.message}"
    return f"{type(exc).__name__}: {exc}"
