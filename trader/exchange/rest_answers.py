"""Is the exchange's REST API answering? Every request the gate sends ends one way or the
other (trader/exchange/gate.py): an answer (a success, or a refusal in Binance's words:
-2019, -4131, even a 429) says the API is there; a transient failure (HTTP 5xx or 408, -1000,
-1001, -1006, -1007, -1008, a timeout, a dropped connection: `Retry.BACKOFF` in
trader/exchange/errors.py) says it is not. An outage runs from the first unanswered
request after an answered one to the next answered one. How long it has gone on is measured
on the evidence: from its first unanswered request to its last (`span`), so one failed
read followed by a quiet minute (a flat account on healthy streams asks little) is not a
minute of outage.

    answers = RestAnswers()
    answers.unanswered("open orders", error, now)    # a 503
    answers.outage()          # RestOutage(since=now, failures=1, last="HTTP 503", ...)
    answers.outage().span()   # 0.0: one failure is no stretch of time yet
    answers.answered(now)     # the outage ends; `last_outage()` keeps it, ended_at=now

It only counts; trader/health.py decides when an outage is a warning or unhealthy and
trader/exchange_health.py tells the operator (EXCHANGE_UNREACHABLE / EXCHANGE_REACHABLE).
"""

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RestOutage:
    """Requests that got no usable answer since `since`; `ended_at` set once one did."""
    since: datetime
    failures: int                     # unanswered requests (each retry counts)
    last: str                         # "HTTP 503", or "no answer" (a timeout, no connection)
    last_error: str                   # "open orders: code=-1000 http=503 Unknown error, ..."
    failed_at: datetime               # the last unanswered request
    ended_at: datetime | None = None

    def span(self) -> float:
        """Seconds from the first unanswered request to the last one; once it ended, to
        the answer that ended it."""
        return ((self.ended_at or self.failed_at) - self.since).total_seconds()

    def describe(self) -> str:
        """"Binance REST not answering since 12:08:46 UTC (HTTP 503 x 30)"."""
        return (f"Binance REST not answering since {self.since:%H:%M:%S} UTC "
                f"({self.last} x {self.failures})")


class RestAnswers:
    """The outage going on, or the last one that ended (see the module docstring)."""

    def __init__(self) -> None:
        self._last: RestOutage | None = None

    def answered(self, now: datetime) -> None:
        """A request got an answer: an outage going on ends now."""
        last = self._last
        if last is not None and last.ended_at is None:
            self._last = replace(last, ended_at=now)

    def unanswered(self, action: str, error: BaseException, now: datetime) -> None:
        """A request got no usable answer (a transient failure)."""
        status = getattr(error, "http_status", 0)
        label = f"HTTP {status}" if status else "no answer"
        text = f"{action}: {error}"
        last = self._last
        if last is None or last.ended_at is not None:
            self._last = RestOutage(now, 1, label, text, failed_at=now)
        else:
            self._last = replace(last, failures=last.failures + 1, last=label, last_error=text,
                                 failed_at=now)

    def outage(self) -> RestOutage | None:
        """The outage going on; None while the API answers."""
        last = self._last
        return last if last is not None and last.ended_at is None else None

    def last_outage(self) -> RestOutage | None:
        """The outage going on, else the last one that ended (None: never one)."""
        return self._last


def last_outage(exchange: object) -> RestOutage | None:
    """The exchange adapter's outage going on or last ended; None for one that sends no REST
    request (the paper exchange) or never had one."""
    answers = getattr(exchange, "rest_answers", None)
    return answers.last_outage() if isinstance(answers, RestAnswers) else None
