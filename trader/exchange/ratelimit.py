"""Client-side pacing from Binance's usage headers, so the agent slows down before a 429.

Binance counts request weight per IP per minute and orders per account per 10 s and
per minute, in fixed windows aligned to the clock, and reports the running counts in
every response (X-MBX-USED-WEIGHT-1M, X-MBX-ORDER-COUNT-10S, X-MBX-ORDER-COUNT-1M).
`RateLimiter` remembers the last counts and when they were seen; `delay()` says how long
to wait before the next request so that none of the counters would pass `headroom` of
its limit: until the window that holds the counts rolls over. Pure calculation: time
is passed in (use the exchange's clock: local time + server offset).

    limiter = RateLimiter(RateLimits.from_exchange_info(info["rateLimits"]))
    wait = limiter.delay(now, orders=1)
    ...send...
    limiter.observe(response.headers, now)
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
ORDERS_1M_HEADER = "X-MBX-ORDER-COUNT-1M"
ORDERS_10S_HEADER = "X-MBX-ORDER-COUNT-10S"

_INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
# Binance counts a request in the window it arrived in; our idea of its clock (local time +
# the measured offset) is good to milliseconds, not exactly. A count answered this soon after
# a window's start is taken for the previous window's: read as the new one's, a count near
# the limit held the request after a wait to the window's end a whole further window (60 s;
# tests/test_rate_limit_window_edge.py). A count of the new window read so early is small.
COUNT_CLOCK_SLACK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Binance USD-M defaults; the real values come from exchangeInfo.rateLimits."""
    weight_per_minute: int = 2400
    orders_per_minute: int = 1200
    orders_per_10s: int = 300

    @staticmethod
    def from_exchange_info(rate_limits: list[dict[str, Any]]) -> "RateLimits":
        found: dict[tuple[str, int], int] = {}
        for entry in rate_limits:
            seconds = _INTERVAL_SECONDS.get(entry.get("interval", ""), 0) * int(
                entry.get("intervalNum", 1))
            found[(entry.get("rateLimitType", ""), seconds)] = int(entry["limit"])
        default = RateLimits()
        return RateLimits(
            weight_per_minute=found.get(("REQUEST_WEIGHT", 60), default.weight_per_minute),
            orders_per_minute=found.get(("ORDERS", 60), default.orders_per_minute),
            orders_per_10s=found.get(("ORDERS", 10), default.orders_per_10s),
        )


@dataclass(slots=True)
class _Counter:
    limit: int
    window_seconds: int
    used: int = 0
    seen_at: datetime | None = None

    def window_start(self, moment: datetime) -> float:
        stamp = moment.timestamp()
        return stamp - stamp % self.window_seconds

    def wait(self, now: datetime, cost: int, headroom: float) -> float:
        """Seconds until `cost` more fits under headroom x limit (0 if it fits now)."""
        if self.seen_at is None or cost <= 0:
            return 0.0
        window = self.window_start(self.seen_at - COUNT_CLOCK_SLACK)
        if self.window_start(now) > window:
            return 0.0  # the window that holds the counts is over: counters are back to 0
        if self.used + cost <= self.limit * headroom:
            return 0.0
        return max(0.0, window + self.window_seconds - now.timestamp())


class RateLimiter:
    """Remembers Binance's usage counters and computes how long to hold back."""

    def __init__(self, limits: RateLimits = RateLimits(), headroom: float = 0.9) -> None:
        self.headroom = headroom
        self._weight = _Counter(limits.weight_per_minute, 60)
        self._orders_1m = _Counter(limits.orders_per_minute, 60)
        self._orders_10s = _Counter(limits.orders_per_10s, 10)

    def set_limits(self, limits: RateLimits) -> None:
        self._weight.limit = limits.weight_per_minute
        self._orders_1m.limit = limits.orders_per_minute
        self._orders_10s.limit = limits.orders_per_10s

    def observe(self, headers: Mapping[str, str], now: datetime) -> None:
        """Record the counters of one response (missing headers leave a counter as it was)."""
        for name, counter in ((WEIGHT_HEADER, self._weight),
                              (ORDERS_1M_HEADER, self._orders_1m),
                              (ORDERS_10S_HEADER, self._orders_10s)):
            value = headers.get(name)
            if value is not None and value.strip().isdigit():
                counter.used = int(value)
                counter.seen_at = now

    def delay(self, now: datetime, *, weight: int = 1, orders: int = 0) -> float:
        """Seconds to wait before a request costing `weight` and placing `orders` orders."""
        return max(self._weight.wait(now, weight, self.headroom),
                   self._orders_1m.wait(now, orders, self.headroom),
                   self._orders_10s.wait(now, orders, self.headroom))

    def usage(self) -> dict[str, int]:
        """The last counters seen, for /status and logs."""
        return {"weight_1m": self._weight.used, "orders_1m": self._orders_1m.used,
                "orders_10s": self._orders_10s.used}
