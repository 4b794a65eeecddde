"""The error table's placement retries (trader/exchange/errors.py), each kind at most once:
-2021 after a 300-400 ms pause, -1106 as a plain reduce-only order, a filter rejection
(tick/step/notional) after re-reading the symbol's rules. Run on tenacity by the executor
(trader/executor.py `Executor._send_with_policy`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import replace

from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from trader.domain import Intent, OrderRequest
from trader.exchange.base import Exchange, ExchangeError
from trader.exchange.errors import WOULD_TRIGGER_PAUSE_SECONDS, Retry, classify


class PlacementRetry:
    """The error table's placement retries for one intent, each kind at most once."""

    KINDS = (Retry.ONCE_AFTER_PAUSE, Retry.REDUCE_ONLY, Retry.REFRESH_RULES)

    def __init__(self, intent: Intent, exchange: Exchange) -> None:
        self.intent = intent
        self.request = intent.request()
        self.exchange = exchange
        self.used: set[Retry] = set()
        self.rules_changes: list[str] = []

    def _kind(self, error: BaseException | None) -> Retry | None:
        if not isinstance(error, ExchangeError):
            return None
        kind = classify(error, self.intent.role).retry
        if kind not in self.KINDS or kind in self.used:
            return None
        if kind is Retry.REDUCE_ONLY and not self.request.close_position:
            return None
        return kind

    def should_retry(self, error: BaseException) -> bool:
        return self._kind(error) is not None

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return WOULD_TRIGGER_PAUSE_SECONDS if self._kind(error) is Retry.ONCE_AFTER_PAUSE else 0.0

    async def prepare(self, state: RetryCallState) -> None:
        """Before the resend: adjust the request the way the error asks for."""
        error = state.outcome.exception() if state.outcome else None
        kind = self._kind(error)
        if kind is None:
            return
        self.used.add(kind)
        client_id = self.request.client_id
        code = getattr(error, "code", 0)
        if kind is Retry.ONCE_AFTER_PAUSE:
            logger.info("would trigger immediately, one retry client_id={} code={}", client_id,
                        code)
        elif kind is Retry.REDUCE_ONLY:
            logger.info("closePosition refused, resending reduce-only client_id={}", client_id)
            self.request = _as_reduce_only(self.request)
        else:
            logger.warning("filter rejection, re-reading symbol rules and resending once "
                           "client_id={} code={}", client_id, code)
            self.rules_changes += await self.exchange.refresh_rules()
            self.request = self.exchange.rules(self.request.symbol).onto_grid(self.request)


class PlacementUnderWay:
    """The placement the executor's one retrying object serves now: its callbacks ask here.
    (tenacity's retrying object costs more to build than the rest of a placement.)"""

    def __init__(self) -> None:
        self.policy: PlacementRetry | None = None

    def _now(self) -> PlacementRetry:
        if self.policy is None:
            raise RuntimeError("no placement under way")
        return self.policy

    def should_retry(self, error: BaseException) -> bool:
        return self._now().should_retry(error)

    def wait(self, state: RetryCallState) -> float:
        return self._now().wait(state)

    async def prepare(self, state: RetryCallState) -> None:
        await self._now().prepare(state)


def placement_retrying(policy: PlacementRetry | PlacementUnderWay,
                       sleep: Callable[[float], Awaitable[None]]) -> AsyncRetrying:
    """The error table's placement retries for `policy` (each kind at most once)."""
    return AsyncRetrying(retry=retry_if_exception(policy.should_retry),
                         stop=stop_after_attempt(len(PlacementRetry.KINDS) + 1),
                         wait=policy.wait, before_sleep=policy.prepare, sleep=sleep,
                         reraise=True)


def _as_reduce_only(request: OrderRequest) -> OrderRequest:
    return replace(request, close_position=False, reduce_only=True)
