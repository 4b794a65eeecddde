"""One gate for every REST request to the exchange: the rate-limit circuit, pacing, retries.

Every request the Binance adapter sends (reads, orders, cancels, listenKey) goes through
`RequestGate.send`, in this order:

1. **Circuit.** After a 429 or 418 (or -1003 / -1015) nothing is sent until Retry-After has
   passed; a call meanwhile fails at once with `CircuitOpen` and no request reaches the
   exchange. Binance: "Repeatedly violating rate limits and/or failing to back off after
   receiving 429s will result in an automated IP ban (HTTP status 418)" and "A Retry-After
   header is sent with a 418 or 429 responses and will give the number of seconds required
   to wait" (https://developers.binance.com/docs/derivatives/usds-margined-futures/
   general-info, "Limits").
2. **Pacing.** The client-side limiter (trader/exchange/ratelimit.py) holds a request until it
   fits under the usage Binance reported in its last answers.
3. **Retries, on tenacity.** -1021 (timestamp outside recvWindow) resyncs the clock offset and
   resends once. Idempotent requests (reads, cancels, listenKey) are retried on transient
   errors (HTTP 5xx and 408, -1000, -1001, -1006, -1007, -1008, timeouts, dropped
   connections: `Retry.BACKOFF` in trader/exchange/errors.py) with capped exponential
   backoff and jitter. A request that may create an order is never retried here: its outcome
   is unknown and the executor probes it by client id, or it failed (a documented failure:
   nothing executed) and its caller decides whether to place it again. A read its caller
   can do without is sent once (`once`).
4. **Answers.** Whether each request got an answer at all is counted
   (trader/exchange/rest_answers.py): /health and the EXCHANGE_UNREACHABLE alert read it.

The gate knows nothing of python-binance: `send` takes a zero-argument coroutine factory
that performs one request and raises `ExchangeError` / `UnknownOutcome` already translated.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from trader.clock import Clock
from trader.exchange.base import (
    LONGEST_BAN,
    CircuitOpen,
    CircuitState,
    ExchangeError,
    UnknownOutcome,
)
from trader.exchange.errors import Outcome, Retry, classify
from trader.exchange.ratelimit import RateLimiter
from trader.exchange.rest_answers import RestAnswers

T = TypeVar("T")

DEFAULT_RETRY_AFTER = 60.0              # a 429 without Retry-After: wait a whole weight window
# A 418 without Retry-After (the docs say one is sent; a proxy may drop it): the shortest IP
# ban Binance names ("scale in duration for repeat offenders, from 2 minutes to 3 days"),
# not a weight window: a request inside the ban would make the next one longer.
DEFAULT_BAN_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for transient errors on idempotent requests (seconds; tests shrink them)."""
    attempts: int = 4
    initial: float = 0.2
    cap: float = 8.0
    jitter: float = 0.2


class RequestGate:
    """See the module docstring.

        gate = RequestGate(clock, limiter, resync=adapter.sync_time)
        answer = await gate.send("open orders", lambda: one_request(), weight=1)
    """

    def __init__(self, clock: Clock, limiter: RateLimiter, *,
                 resync: Callable[[], Awaitable[None]],
                 server_now: Callable[[], datetime] | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self._clock = clock
        self._limiter = limiter
        self._resync = resync
        self._server_now = server_now or clock.now
        self.policy = policy or RetryPolicy()
        self._backoff = wait_exponential_jitter(multiplier=self.policy.initial,
                                                max=self.policy.cap,
                                                jitter=self.policy.initial * self.policy.jitter)
        self._circuit = CircuitState(None)
        self.refused = 0                  # calls refused locally while the circuit was open
        self._on_open: list[Callable[[CircuitState], None]] = []
        self.answers = RestAnswers()      # is the API answering at all (/health)

    # --- circuit ---------------------------------------------------------------------
    def circuit(self) -> CircuitState:
        return self._circuit

    def on_open(self, callback: Callable[[CircuitState], None]) -> None:
        """Call `callback` with the circuit whenever an answer opens it or moves its end."""
        self._on_open.append(callback)

    def restore(self, circuit: CircuitState) -> None:
        """A circuit a previous process opened (trader/circuit_memory.py): kept while it
        ends later than this one's own."""
        until = circuit.open_until
        if until is not None and circuit.is_open(self._clock.now()) and (
                self._circuit.open_until is None or until > self._circuit.open_until):
            self._circuit = circuit
            logger.error("api circuit open (kept from before the restart) until={} reason={}",
                         circuit.open_until.isoformat() if circuit.open_until else None,
                         circuit.reason)

    def _open_circuit(self, error: ExchangeError, action: str) -> None:
        banned = error.http_status == 418
        told = error.retry_after is not None
        seconds = error.retry_after if error.retry_after is not None \
            else DEFAULT_BAN_SECONDS if banned else DEFAULT_RETRY_AFTER
        # the codec caps Retry-After already; an error built elsewhere must not overflow
        # timedelta (1e15 s: OverflowError, and the circuit would stay shut)
        seconds = min(seconds, LONGEST_BAN.total_seconds())
        until = self._clock.now() + timedelta(seconds=seconds)
        if self._circuit.open_until is None or until > self._circuit.open_until:
            reason = (f"{'IP banned' if banned else 'rate limited'} (HTTP {error.http_status}, "
                      f"code {error.code}) on {action}")
            self._circuit = CircuitState(until, reason, opened_at=self._clock.now(),
                                         http_status=error.http_status, told=told)
            logger.error("api circuit open until={} retry_after_s={} told={} reason={}",
                         until.isoformat(), seconds, told, reason)
            for callback in self._on_open:
                callback(self._circuit)

    def _check_circuit(self, action: str) -> None:
        now = self._clock.now()
        if not self._circuit.is_open(now):
            return
        self.refused += 1
        remaining = (self._circuit.open_until - now).total_seconds()  # type: ignore[operator]
        logger.debug("api circuit open, not sending action={} remaining_s={:.1f}", action,
                     remaining)
        raise CircuitOpen(remaining, self._circuit.reason, self._circuit.http_status,
                          self._circuit.opened_at)

    # --- sending ---------------------------------------------------------------------
    async def send(self, action: str, request: Callable[[], Awaitable[T]], *,
                   weight: int = 1, orders: int = 0, idempotent: bool = True,
                   once: bool = False) -> T:
        """Send one request through the gate; see the module docstring for the order.
        `once`: a read worth one try only (its caller does without it, and a retry would
        hold its caller: the price a fee is valued with, trader/fee_prices.py).

        Raises `CircuitOpen` (an `ExchangeError` with HTTP 429) while the circuit is open,
        `ExchangeError` for an answer that is final, `UnknownOutcome` when a request that may
        have created an order got no answer.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: self._retryable(error, idempotent)),
            stop=stop_after_attempt(1 if once else self.policy.attempts if idempotent else 2),
            wait=self._wait, sleep=self._clock.sleep, reraise=True,
            before_sleep=partial(self._before_retry, action=action))
        async for attempt in retrying:
            with attempt:
                return await self._once(action, request, weight, orders)
        raise AssertionError("unreachable")

    async def _once(self, action: str, request: Callable[[], Awaitable[T]], weight: int,
                    orders: int) -> T:
        self._check_circuit(action)
        wait = self._limiter.delay(self._server_now(), weight=weight, orders=orders)
        if wait > 0:
            logger.warning("rate limit near, holding {:.2f}s before {} usage={}", wait, action,
                           self._limiter.usage())
            await self._clock.sleep(wait)
            self._check_circuit(action)
        try:
            answer = await request()
        except ExchangeError as error:
            verdict = classify(error, sending=False)
            if verdict.retry is Retry.BACKOFF:
                self.answers.unanswered(action, error, self._clock.now())
            else:                 # Binance answered, if only to refuse
                self.answers.answered(self._clock.now())
            if verdict.outcome is Outcome.CIRCUIT_OPEN:
                self._open_circuit(error, action)
            raise
        except UnknownOutcome as error:     # no answer, or one that tells nothing
            self.answers.unanswered(action, error, self._clock.now())
            raise
        self.answers.answered(self._clock.now())
        return answer

    def _retryable(self, error: BaseException, idempotent: bool) -> bool:
        if isinstance(error, CircuitOpen):
            return False
        if _needs_resync(error):
            return True           # rejected before processing: safe to resend after a resync
        if not idempotent or not isinstance(error, ExchangeError | UnknownOutcome):
            return False
        if self._circuit.is_open(self._clock.now()):
            return False
        return classify(error, sending=False).retry is Retry.BACKOFF

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if _needs_resync(error):
            return 0.0
        return self._backoff(state)

    async def _before_retry(self, state: RetryCallState, *, action: str) -> None:
        error = state.outcome.exception() if state.outcome else None
        if _needs_resync(error):
            logger.warning("timestamp outside recvWindow on {}: resyncing time, sending once "
                           "more", action)
            await self._resync()
            return
        logger.info("transient exchange error, retrying action={} attempt={} error={}", action,
                    state.attempt_number, error)


def _needs_resync(error: BaseException | None) -> bool:
    """-1021: the timestamp was outside recvWindow; rejected before processing."""
    return isinstance(error, ExchangeError) and \
        classify(error, sending=False).retry is Retry.RESYNC_TIME
