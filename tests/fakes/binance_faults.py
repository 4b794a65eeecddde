"""Injected faults and usage accounting of the fake Binance server.

`FaultBook` holds the faults tests inject ("make the next N requests to this endpoint
fail like this"); `Usage` counts request weight and orders in Binance's fixed windows;
`error_response` renders an error the way Binance does (JSON code/msg, HTTP status,
Retry-After).
"""

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from trader.exchange.base import ExchangeError

Json = dict[str, Any]


@dataclass(slots=True)
class Fault:
    method: str | None
    path: str
    times: int
    code: int | None = None
    http_status: int | None = None
    msg: str | None = None
    retry_after: float | None = None
    delay: float | None = None
    drop_connection: bool = False
    execute: bool = False


@dataclass(slots=True)
class Usage:
    """Binance's usage windows: weight per minute, orders per 10 s and per minute."""
    weight_per_minute: int = 2400
    orders_per_minute: int = 1200
    orders_per_10s: int = 300
    counts: dict[tuple[str, int], int] = field(default_factory=dict)

    def add(self, kind: str, seconds: int, amount: int, now_ms: int) -> int:
        name, window = f"{kind}{seconds}", now_ms // (seconds * 1000)
        for old in [k for k in self.counts if k[0] == name and k[1] < window]:
            del self.counts[old]
        self.counts[(name, window)] = self.counts.get((name, window), 0) + amount
        return self.counts[(name, window)]

    def rate_limits(self) -> list[Json]:
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.weight_per_minute},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.orders_per_minute},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": self.orders_per_10s}]


class FaultBook:
    """Faults by endpoint, each used up after `times` requests."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def inject(self, path_or_endpoint: str, code: int | None, http_status: int | None, *,
               times: int, retry_after: float | None, delay: float | None,
               drop_connection: bool, msg: str | None, execute: bool | None) -> Fault:
        method, _, path = path_or_endpoint.rpartition(" ")
        if code is not None and http_status is None:
            http_status = 429 if code == -1003 else 400
        if execute is None:
            execute = (delay is not None or drop_connection) and http_status is None
        fault = Fault(method or None, path, times, code, http_status, msg, retry_after, delay,
                      drop_connection, execute)
        self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path == path and fault.method in (None, method) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def error(self, fault: Fault) -> ExchangeError:
        assert fault.http_status is not None
        code = fault.code if fault.code is not None else (
            -1000 if fault.http_status >= 500 else -1)
        message = fault.msg or default_message(fault.http_status, code)
        return ExchangeError(code, message, fault.http_status, fault.retry_after)


def default_message(status: int, code: int) -> str:
    if status >= 500:
        return "Unknown error, please check your request or try again later."
    if status == 418:
        return "Way too many requests; IP banned."
    if status == 429:
        return ("Too many requests; current limit of IP(127.0.0.1) request weight per 1 "
                "MINUTE is 2400. Please use WebSocket Streams for live updates to avoid "
                "polling the API.")
    return f"Injected error {code}."


def error_response(error: ExchangeError, headers: dict[str, str] | None = None) -> web.Response:
    extra = dict(headers or {})
    if error.retry_after is not None:
        extra["Retry-After"] = str(int(error.retry_after))
    return web.json_response({"code": error.code, "msg": error.message},
                             status=error.http_status, headers=extra)
