"""Sending orders: write-ahead intents, the error policy, cancel -> verify, unknown outcomes.

Every exchange action goes through here. An intent is recorded (PENDING) before the
request, marked SENT just before it leaves, and resolved from the exchange's answer.
A timeout or 5xx leaves it SENT (outcome UNKNOWN): it is probed by client id and never
re-sent blind. Retries follow trader/exchange/errors.py, applied with tenacity.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loguru import logger
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from storage import SaveStateFailure, Store
from trader.clock import Clock
from trader.domain import Intent, IntentStatus, Order, OrderRequest, OrderRole, OrderStatus
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.exchange.errors import (
    BACKOFF_CAP_SECONDS,
    BACKOFF_MAX_ATTEMPTS,
    THROTTLE_SECONDS,
    Outcome,
    Retry,
    Verdict,
    classify,
    would_trigger_pause,
)

PROBE_GRACE = timedelta(seconds=10)   # clock skew allowance on top of recvWindow


@dataclass(frozen=True, slots=True)
class ActionResult:
    outcome: Outcome
    intent: Intent
    order: Order | None = None
    verdict: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.DONE

    @property
    def reason(self) -> str:
        if self.verdict is None:
            return self.outcome.value
        return f"{self.verdict.code} {self.verdict.meaning}"


class SaveFailures:
    """Counts consecutive SaveStateFailures; the engine reads it to block entries and alert."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.last: SaveStateFailure | None = None
        self.pending_alert = False

    def failed(self, exc: SaveStateFailure) -> None:
        """Count a failure; alert on the first, on the third (suggest /shutdown), then every 10th."""
        self.in_a_row += 1
        self.last = exc
        if self.in_a_row in (1, 3) or self.in_a_row % 10 == 0:
            self.pending_alert = True

    def succeeded(self) -> bool:
        """True when this success ends a failure streak (recovery to report)."""
        recovered = self.in_a_row > 0
        self.in_a_row = 0
        return recovered


def _backoff_retryable(error: BaseException) -> bool:
    if isinstance(error, ExchangeError | UnknownOutcome):
        return classify(error, sending=False).retry is Retry.BACKOFF
    return False


class Executor:
    """Places and cancels orders for the engine, keeping the intent journal exact."""

    def __init__(self, exchange: Exchange, store: Store, clock: Clock, *,
                 recv_window: timedelta = timedelta(milliseconds=5000),
                 backoff_base: float = 0.2) -> None:
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.recv_window = recv_window
        self.backoff_base = backoff_base
        self.save_failures = SaveFailures()
        self.throttled_until: dict[str, datetime] = {}
        self.circuit_until: datetime | None = None
        self.sent_count = 0
        self.placed: set[str] = set()   # client ids this process sent (second-instance guard)

    # --- journal ------------------------------------------------------------------
    def _journal(self, intent: Intent, *, required: bool) -> bool:
        """Save an intent. Entries require the journal; protection goes on without it."""
        try:
            self.store.save_intent(intent, self.clock.now())
        except SaveStateFailure as exc:
            self.save_failures.failed(exc)
            if required:
                raise
            logger.error("intent not journaled, sending anyway (deterministic id) "
                         "client_id={} role={} error={}", intent.client_id, intent.role, exc)
            return False
        return True

    def _required(self, intent: Intent) -> bool:
        return intent.role is OrderRole.ENTRY

    def circuit_open(self) -> bool:
        return self.circuit_until is not None and self.clock.now() < self.circuit_until

    def symbol_throttled(self, symbol: str) -> bool:
        until = self.throttled_until.get(symbol)
        return until is not None and self.clock.now() < until

    # --- placing ------------------------------------------------------------------
    async def submit(self, intent: Intent) -> ActionResult:
        """Record, send and resolve one intent. Never sends an intent twice."""
        known = self.store.intent(intent.client_id)
        if known is not None and known.status is not IntentStatus.PENDING:
            logger.warning("intent already sent, not re-sending client_id={} status={}",
                           intent.client_id, known.status)
            return ActionResult(Outcome.NOOP, known)
        if self.circuit_open():
            return ActionResult(Outcome.CIRCUIT_OPEN, intent)
        self._journal(intent, required=self._required(intent))
        sent = intent.with_status(IntentStatus.SENT, sent_at=self.clock.now())
        self._journal(sent, required=self._required(intent))
        try:
            order = await self._send_with_policy(sent)
        except (ExchangeError, UnknownOutcome) as error:
            return await self._resolve_error(sent, error)
        return self._resolve_order(sent, order)

    async def _send_with_policy(self, intent: Intent) -> Order:
        request = intent.request()
        pause_retry_used = False
        while True:
            try:
                self.sent_count += 1
                self.placed.add(request.client_id)
                return await self.exchange.place(request)
            except ExchangeError as error:
                verdict = classify(error, intent.role)
                if verdict.retry is Retry.ONCE_AFTER_PAUSE and not pause_retry_used:
                    pause_retry_used = True
                    logger.info("would trigger immediately, one retry client_id={} code={}",
                                intent.client_id, error.code)
                    await self.clock.sleep(would_trigger_pause())
                    continue
                if verdict.retry is Retry.REDUCE_ONLY and request.close_position:
                    logger.info("closePosition refused, resending reduce-only client_id={}",
                                intent.client_id)
                    request = _as_reduce_only(request)
                    continue
                raise

    def _resolve_order(self, intent: Intent, order: Order) -> ActionResult:
        status = IntentStatus.FILLED if order.status is OrderStatus.FILLED else IntentStatus.ACKED
        if order.status in (OrderStatus.REJECTED, OrderStatus.EXPIRED, OrderStatus.CANCELED):
            status = IntentStatus.FAILED if order.filled_qty == 0 else IntentStatus.FILLED
        self._journal(intent.with_status(status), required=False)
        self._save_order(order)
        logger.info("order placed client_id={} symbol={} role={} status={} filled={}",
                    order.client_id, order.symbol, intent.role, order.status, order.filled_qty)
        return ActionResult(Outcome.DONE, intent.with_status(status), order)

    async def _resolve_error(self, intent: Intent, error: Exception) -> ActionResult:
        verdict = classify(error, intent.role)
        logger.warning("order error client_id={} symbol={} role={} code={} http={} outcome={} "
                       "meaning={}", intent.client_id, intent.symbol, intent.role, verdict.code,
                       verdict.http_status, verdict.outcome, verdict.meaning)
        if verdict.outcome is Outcome.UNKNOWN:
            return ActionResult(Outcome.UNKNOWN, intent, verdict=verdict)
        if verdict.outcome is Outcome.CIRCUIT_OPEN:
            self.circuit_until = self.clock.now() + timedelta(seconds=verdict.retry_after or 60)
        if verdict.outcome is Outcome.THROTTLED:
            self.throttled_until[intent.symbol] = self.clock.now() + timedelta(seconds=THROTTLE_SECONDS)
        if verdict.outcome is Outcome.DONE and verdict.verify:
            order = await self.exchange.order_by_client_id(intent.symbol, intent.client_id)
            resolved = intent.with_status(IntentStatus.ACKED if order else IntentStatus.FAILED,
                                          detail=verdict.meaning)
            self._journal(resolved, required=False)
            return ActionResult(Outcome.DONE, resolved, order, verdict)
        failed = intent.with_status(IntentStatus.FAILED, detail=f"{verdict.code} {verdict.meaning}")
        self._journal(failed, required=False)
        return ActionResult(verdict.outcome, failed, verdict=verdict)

    def _save_order(self, order: Order) -> None:
        try:
            self.store.save_order(order)
        except SaveStateFailure as exc:
            self.save_failures.failed(exc)
            logger.error("order not saved client_id={} error={}", order.client_id, exc)

    # --- cancel -> verify -----------------------------------------------------------
    async def cancel_and_verify(self, symbol: str, client_id: str) -> Order | None:
        """Cancel, then read the order back. A FILLED result means a fill raced the cancel."""
        try:
            await self._with_backoff(self.exchange.cancel, symbol, client_id)
        except ExchangeError as error:
            verdict = classify(error, sending=False)
            if verdict.outcome is not Outcome.NOOP:
                raise
            logger.info("cancel: order already gone client_id={} code={}", client_id, error.code)
        order = await self.refresh(symbol, client_id)
        if order is not None:
            logger.info("cancel verified client_id={} status={}", client_id, order.status)
        return order

    async def refresh(self, symbol: str, client_id: str) -> Order | None:
        """Read one order and bring its intent and order records up to date."""
        order = await self._with_backoff(self.exchange.order_by_client_id, symbol, client_id)
        if order is not None:
            self._save_order(order)
            self._settle(order)
        return order

    def _settle(self, order: Order) -> None:
        intent = self.store.intent(order.client_id)
        if intent is None or intent.status.resolved:
            return
        if order.status is OrderStatus.FILLED:
            status = IntentStatus.FILLED
        elif order.status.terminal:
            status = IntentStatus.FILLED if order.filled_qty > 0 else IntentStatus.EXPIRED
        else:
            status = IntentStatus.ACKED
        if status is not intent.status:
            self._journal(intent.with_status(status, detail=order.status.value), required=False)

    async def read(self, call, *args):  # type: ignore[no-untyped-def]
        """A read-only exchange call with capped exponential backoff on transient errors."""
        return await self._with_backoff(call, *args)

    async def _with_backoff(self, call, *args):  # type: ignore[no-untyped-def]
        # Fast path: most calls succeed first time, so tenacity is only set up after a failure.
        try:
            return await call(*args)
        except (ExchangeError, UnknownOutcome) as error:
            if not _backoff_retryable(error):
                raise
            logger.info("transient exchange error, backing off call={} error={}",
                        getattr(call, "__name__", call), error)
        await self.clock.sleep(self.backoff_base)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_backoff_retryable),
            stop=stop_after_attempt(BACKOFF_MAX_ATTEMPTS - 1),
            wait=wait_exponential(multiplier=self.backoff_base * 2, max=BACKOFF_CAP_SECONDS),
            sleep=self.clock.sleep, reraise=True,
        ):
            with attempt:
                return await call(*args)
        raise AssertionError("unreachable")

    # --- unknown outcomes -----------------------------------------------------------
    async def probe(self, intent: Intent) -> Intent:
        """Resolve a SENT intent by asking the exchange for its client id."""
        order = await self.read(self.exchange.order_by_client_id, intent.symbol, intent.client_id)
        if order is not None:
            return self._resolve_order(intent, order).intent
        sent_at = intent.sent_at or intent.created_at
        if self.clock.now() - sent_at < self.recv_window + PROBE_GRACE:
            return intent   # may still land: stays SENT, nothing is re-sent
        expired = intent.with_status(IntentStatus.EXPIRED, detail="not found on the exchange")
        self._journal(expired, required=False)
        logger.info("unknown outcome resolved: never placed client_id={}", intent.client_id)
        return expired


def _as_reduce_only(request: OrderRequest) -> OrderRequest:
    return replace(request, close_position=False, reduce_only=True)
