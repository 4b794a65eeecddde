"""Start-up steps retried until they succeed: the exchange down or answering badly at start
is waited out (capped exponential backoff, tenacity), with an ERROR alert per failure in words
a phone shows; only a configuration error or a stop signal ends the wait. After a stop signal
a step still running gets the live loop's budget (trader/stop_budget.py), then is cancelled
where it waits: the host kills the process 30 s after SIGTERM.

Inside a Retry-After (an IP ban, or one kept from before a restart: trader/circuit_memory.py)
the next try is at its end, not on the backoff (which would start trading up to a minute
late), and the wait is said once, with its end: "Binance has banned this IP until 12:03:04
UTC (Retry-After); trading starts then"."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import aiohttp
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_not_exception_type, wait_exponential

from trader.alerts import Alert, AlertName
from trader.config import ConfigError
from trader.exchange.base import CircuitState, ExchangeError, UnknownOutcome
from trader.stop_budget import bounded_after_stop

if TYPE_CHECKING:
    from trader.engine import Engine

START_RETRY_CAP_SECONDS = 60.0
# After a Retry-After's end, so that the first request is not refused by the gate's own
# `now < open_until` (and Binance counted its seconds from before our clock read them)
CIRCUIT_END_MARGIN_SECONDS = 0.5

E = TypeVar("E", bound=BaseException)


async def until_done(what: str, engine: "Engine", stop: asyncio.Event,
                      step: Callable[[], Awaitable[None]]) -> bool:
    """Start-up steps must succeed before any trading: retry (capped backoff) while the
    exchange is down or answers badly; only a configuration error or a stop ends it.
    False when a stop signal came first."""
    backoff = wait_exponential(multiplier=2.0, max=START_RETRY_CAP_SECONDS)
    retrying = AsyncRetrying(
        retry=retry_if_not_exception_type(ConfigError),
        wait=partial(_next_try, engine, backoff),
        stop=lambda state: stop.is_set(),
        sleep=lambda seconds: _sleep_unless(stop, seconds),
        before_sleep=lambda state: _start_failed(what, engine, state),
        retry_error_callback=lambda state: None, reraise=True)
    async def bounded() -> None:
        await step()

    async for attempt in retrying:
        with attempt:
            if stop.is_set():
                return False
            # A read that hangs waits out its timeout on every retry (38 s after SIGTERM).
            if not await bounded_after_stop(bounded(), stop):
                return False
    return not stop.is_set()


def _next_try(engine: "Engine", backoff: wait_exponential, state: RetryCallState) -> float:
    """Seconds until the next try: the end of a Retry-After still running (a request before
    it is refused by the gate, and would lengthen Binance's ban), else the backoff."""
    circuit, now = engine.exchange.circuit(), engine.clock.now()
    if circuit.open_until is not None and circuit.is_open(now):
        return (circuit.open_until - now).total_seconds() + CIRCUIT_END_MARGIN_SECONDS
    return float(backoff(state))


def circuit_text(circuit: CircuitState, now: datetime) -> str:
    """The start-up's wait in words: who holds requests back, until when, told how."""
    until = circuit.open_until
    assert until is not None
    shown = f"{until:%H:%M:%S}" if until.date() == now.date() else f"{until:%d %b %H:%M:%S}"
    who = "Binance has banned this IP" if circuit.http_status == 418 \
        else "Binance is rate-limiting this IP"
    told = "Retry-After" if circuit.told else (
        "no Retry-After given: "
        f"{'the shortest ban Binance names' if circuit.http_status == 418 else 'a minute'}")
    return f"{who} until {shown} UTC ({told}); trading starts then"


def _start_failed(what: str, engine: "Engine", state: RetryCallState) -> None:
    circuit, now = engine.exchange.circuit(), engine.clock.now()
    if circuit.open_until is not None and circuit.is_open(now):
        _circuit_waited(what, engine, circuit, now)
        return
    error = state.outcome.exception() if state.outcome else None
    expected = isinstance(error, ExchangeError | UnknownOutcome | aiohttp.ClientError
                          | TimeoutError | OSError)
    logger.opt(exception=None if expected else error).error(
        "{} failed, retrying (attempt {}) error={!r}", what, state.attempt_number, error)
    text = f"{what} failed: {plain_error(error)}; retrying (no trading until it succeeds)"
    engine.boundary.last_error = text      # /status tells why it is still starting
    engine.alerter.publish(Alert(AlertName.ERROR, text, dedup_key=f"start:{what}"),
                           engine.clock.now())


def _circuit_waited(what: str, engine: "Engine", circuit: CircuitState, now: datetime) -> None:
    """The wait for a Retry-After at start-up, said once per window (log and phone):
    Telegram is not Binance: it answers meanwhile, /status with the window's end (its
    "Exchange API paused" line, from the circuit), no error: nothing failed."""
    text = circuit_text(circuit, now)
    logger.warning("{} waits: {} reason={}", what, text, circuit.reason)
    engine.alerter.publish(Alert(AlertName.API_CIRCUIT_OPEN, text,
                                 dedup_key=f"start-circuit:{circuit.open_until}"), now)


def plain_error(error: BaseException | None) -> str:
    """An error in words a phone screen can show: "cannot connect to fapi.binance.com:443
    (Connection refused)", not the repr of aiohttp's connection key."""
    connect = _in_chain(error, aiohttp.ClientConnectorError)   # the adapter wraps it
    if connect is not None:
        cause = connect.os_error.strerror or str(connect.os_error) \
            or type(connect.os_error).__name__
        return f"cannot connect to {connect.host}:{connect.port} ({cause})"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status} {error.message}".strip()
    text = str(error) if error is not None else "unknown error"
    if not isinstance(error, ExchangeError | UnknownOutcome | ConfigError):
        text = f"{type(error).__name__}: {text}" if error is not None else text
    return text if len(text) <= 200 else text[:197] + "..."


def _in_chain(error: BaseException | None, kind: type[E]) -> E | None:
    """`error` or the first of its causes that is a `kind`."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, kind):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
