"""Injected faults and usage accounting of the fake Binance server.

`FaultBook` holds the faults tests inject ("make the next N requests to this endpoint
fail like this"); `Usage` counts request weight and orders in Binance's fixed windows;
`error_response` renders an error the way Binance does (JSON code/msg, HTTP status,
Retry-After); `RetryAfterWatch` records every request that arrives inside a Retry-After
window the server announced; `MALFORMED_READS` and `malformed_user_events` are answers and
user-data events of Binance's documented shapes with a required field taken out or of the
wrong type (for `FakeBinance.reshape_answers` and `StreamHub.send_user_text`).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fixtures.binance import documented, payload
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
    only: dict[str, str] | None = None    # only requests with these parameters meet it
    # Raw bytes written on the socket instead of an answer, then the connection closed:
    # what a proxy or a broken connection may hand the client (a cut body, a gateway page).
    raw_answer: bytes | None = None
    # The answer's body as given (JSON text, or b"" for none), sent with `http_status`: a
    # documented error answer as its page shows it (`FakeBinance.answer_documented`).
    body: bytes | None = None
    # Requests that reduce exposure (reduceOnly / closePosition) pass untouched: Binance's
    # -1008 throttling exempts them (General Info, HTTP 503 variant C).
    exempt_reducing: bool = False


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
               drop_connection: bool, msg: str | None, execute: bool | None,
               only: dict[str, str] | None = None, raw_answer: bytes | None = None,
               body: bytes | None = None, exempt_reducing: bool = False) -> Fault:
        method, _, path = path_or_endpoint.rpartition(" ")
        if code is not None and http_status is None:
            http_status = 429 if code == -1003 else 400
        if execute is None:
            execute = (delay is not None or drop_connection or raw_answer is not None) \
                and http_status is None
        fault = Fault(method or None, path, times, code, http_status, msg, retry_after, delay,
                      drop_connection, execute, only, raw_answer, body, exempt_reducing)
        self.faults.append(fault)
        return fault

    def take(self, method: str, path: str, params: dict[str, str] | None = None) -> Fault | None:
        """The first fault left for this request (`params`: its parameters), used once."""
        for fault in self.faults:
            if fault.path == path and fault.method in (None, method) and fault.times > 0 \
                    and _has(params or {}, fault.only) \
                    and not (fault.exempt_reducing and _reduces(params or {})):
                fault.times -= 1
                return fault
        return None

    def error(self, fault: Fault) -> ExchangeError:
        assert fault.http_status is not None
        code = fault.code if fault.code is not None else (
            -1000 if fault.http_status >= 500 else -1)
        message = fault.msg or default_message(fault.http_status, code)
        return ExchangeError(code, message, fault.http_status, fault.retry_after)


def _has(params: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return wanted is None or all(params.get(k) == v for k, v in wanted.items())


def _reduces(params: dict[str, str]) -> bool:
    """An order that reduces exposure, as General Info's -1008 exemption names it
    ("closePosition = true, or positionSide = BOTH with reduceOnly = true"; the fake
    account is one-way, so LONG+SELL / SHORT+BUY do not arise)."""
    return params.get("reduceOnly") == "true" or params.get("closePosition") == "true"


def documented_error(name: str) -> tuple[int, bytes]:
    """The HTTP status and body of a documented error answer (tests/fixtures/binance/
    error_*.json): its payload as JSON text, or no body at all for a null payload (HTTP 408
    has none documented)."""
    answer = documented(name)
    body = b"" if answer.payload is None else json.dumps(answer.payload).encode()
    return answer.http_status, body


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


RATE_LIMIT_STATUSES = (429, 418)


@dataclass(frozen=True, slots=True)
class WindowViolation:
    """A request that arrived `after` seconds into a Retry-After window of `retry_after` s,
    which the server had announced answering `status` to `announced_on`. `signed_after_ms`:
    the request's `timestamp` parameter minus the server's time when it answered the 429
    (negative: signed before that answer existed, so it was already on its way; None for a
    request that carries no timestamp in its query string)."""
    endpoint: str
    after: float
    retry_after: float
    status: int
    announced_on: str
    signed_after_ms: int | None = None

    def __str__(self) -> str:
        signed = ("" if self.signed_after_ms is None
                  else f", signed {self.signed_after_ms:+d} ms from the answer")
        return (f"{self.endpoint} arrived {self.after:.3f} s after HTTP {self.status} with "
                f"Retry-After {self.retry_after:g} on {self.announced_on}{signed}")


class RetryAfterWatch:
    """Binance's rule, checked from the server's side: after answering 429 or 418 with
    Retry-After N at time t, no request may arrive before t + N ("A Retry-After header is sent
    with a 418 or 429 responses and will give the number of seconds required to wait ...
    failing to back off after receiving 429s will result in an automated IP ban",
    https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).

    The window is IP-wide (every REST path counts) and measured on the server's own
    monotonic clock, so `set_clock_skew` (a server timestamp that drifts) does not move it.
    Websocket connections are not REST requests and are not counted. A request already on
    its way when the 429 went out counts too (the server cannot know when it was sent); its
    signed timestamp, when it has one, tells (`WindowViolation.signed_after_ms`).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 server_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.clock, self.server_ms = clock, server_ms
        self.windows = 0                 # 429/418 answers that announced a Retry-After
        self.violations: list[WindowViolation] = []
        self._opened_at = 0.0
        self._until = 0.0
        self._retry_after = 0.0
        self._status = 0
        self._announced_on = ""
        self._opened_ms = 0

    def note_request(self, method: str, path: str, timestamp: str | None = None) -> None:
        """A REST request arrived (call before answering it); `timestamp` is its signed
        `timestamp` parameter (ms), if any."""
        now = self.clock()
        if now < self._until:
            signed = int(timestamp) - self._opened_ms if timestamp and timestamp.isdigit() \
                else None
            self.violations.append(WindowViolation(
                f"{method} {path}", now - self._opened_at, self._retry_after, self._status,
                self._announced_on, signed))

    def note_answer(self, method: str, path: str, response: web.StreamResponse) -> None:
        """The server answered; a 429/418 with Retry-After opens (or extends) the window."""
        header = response.headers.get("Retry-After")
        if response.status not in RATE_LIMIT_STATUSES or header is None:
            return
        now, seconds = self.clock(), float(header)
        self.windows += 1
        if now + seconds > self._until:
            self._opened_at, self._until, self._retry_after = now, now + seconds, seconds
            self._status, self._announced_on = response.status, f"{method} {path}"
            self._opened_ms = self.server_ms()

    def remaining(self) -> float:
        """Seconds until the current window closes (0 when none is open)."""
        return max(0.0, self._until - self.clock())

    @property
    def count(self) -> int:
        return len(self.violations)


# --- malformed answers and events --------------------------------------------------------

def _broken_rows(field: str, broken: Callable[[Json], Json]) -> Callable[[Any], Any]:
    """Every row of an array answer broken; an empty array becomes an object (the wrong type
    for an answer documented as an array), so the answer is malformed either way."""
    def transform(answer: Any) -> Any:
        if isinstance(answer, list) and answer:
            return [broken(dict(row)) for row in answer]
        return {"unexpected": field}
    return transform


def _without(field: str) -> Callable[[Json], Json]:
    return lambda row: {k: v for k, v in row.items() if k != field}


def _wrong_type(field: str, value: Any) -> Callable[[Json], Json]:
    return lambda row: {**row, field: value}


# "METHOD /path" of a read -> a transform of its documented answer that no decoder can read.
MALFORMED_READS: dict[str, Callable[[Any], Any]] = {
    "GET /fapi/v3/positionRisk": _broken_rows("positionAmt", _without("positionAmt")),
    "GET /fapi/v1/openOrders": _broken_rows("origQty", _wrong_type("origQty", ["0.010"])),
    "GET /fapi/v1/openAlgoOrders": _broken_rows("algoStatus", _without("algoStatus")),
    "GET /fapi/v1/ticker/bookTicker": lambda answer: {**answer, "bidPrice": None},
    "GET /fapi/v2/account": _without("availableBalance"),
}


def malformed_user_events(symbol: str, client_id: str, event_time_ms: int) -> list[str]:
    """User-data frames about one of our orders that cannot be read: not JSON at all, and
    the documented ORDER_TRADE_UPDATE / ALGO_UPDATE / ACCOUNT_UPDATE examples (DOCS +
    "user-data-streams/Event-Order-Update", "Event-Algo-Order-Update",
    "Event-Balance-and-Position-Update"; tests/fixtures/binance/event_*.json) with a
    required field taken out or of the wrong type."""
    order = payload("event_order_trade_update")
    order["E"] = order["T"] = event_time_ms
    order["o"] = {k: v for k, v in order["o"].items() if k != "X"} | {"s": symbol, "c": client_id}
    algo = payload("event_algo_update")
    algo["E"] = algo["T"] = event_time_ms
    algo["o"] |= {"s": symbol, "caid": client_id, "q": {"quantity": "0.010"}}
    account = payload("event_account_update")
    account["E"] = account["T"] = event_time_ms
    account["a"] = "ORDER"
    return ['{"e": "ORDER_TRADE_UPDATE", "E": ', json.dumps(order), json.dumps(algo),
            json.dumps(account)]
