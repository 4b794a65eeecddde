"""Placements whose answer is late: waited for up to a bound, then left in flight in the
background, their answer kept for the probe by client id (trader/executor.py `probe`).

Used for a stop-loss placement while nothing else covers the position (trader/
exchange_actions.py): past the bound its outcome is unknown for the backup rule
(trader/stop_backup.py), so the backup stop goes out without waiting for the HTTP client's
timeout (10 s) and the tick goes on. The request itself is not cancelled: it may still land,
and its answer, when it comes, tells the probe what happened, as a lost answer that turned
up. Only the request runs in the background: the intent and the database are written by the
engine's task (the probe), never from here.

The bound is measured on the event loop's clock, like the HTTP client's own timeout: it is
the network edge's timer, not the trading clock (trader/clock.py).
"""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial

from loguru import logger

from trader.domain import Order
from trader.exchange.base import Exchange, UnknownOutcome

# Late answers kept at most (a probe takes its own; the others, their placement forgotten
# since, are dropped once answered: the probe then reads the exchange, as for any lost one).
KEPT = 64


def answer_bound(seconds: float, exchange: Exchange) -> float | None:
    """The bound for placements on `exchange`. None for the paper exchange: it answers
    in-process (its latency is simulated on the trading clock, never a hang), and its
    writes belong to the engine's unit of work, so its requests stay in the engine's task
    (storage/unit_of_work.py)."""
    return None if exchange.name == "paper" else seconds


class Unanswered(UnknownOutcome):
    """No answer within the bound; the request is still in flight and may land."""


@dataclass(frozen=True, slots=True)
class LateAnswer:
    """What a late request ended with: the order, or the error it raised."""
    order: Order | None
    error: BaseException | None


class SlowAnswers:
    """The placements left in flight past their bound, by client id."""

    def __init__(self) -> None:
        self._requests: dict[str, asyncio.Future[Order]] = {}

    async def within(self, client_id: str, request: Awaitable[Order], seconds: float) -> Order:
        """The answer of `request` if it comes within `seconds`; else `Unanswered`, and the
        request goes on (its answer for `answered`)."""
        pending = asyncio.ensure_future(request)
        done, _ = await asyncio.wait({pending}, timeout=seconds)
        if done:
            return pending.result()
        self._forget_answered()
        self._requests[client_id] = pending
        pending.add_done_callback(partial(_log_late, client_id))
        logger.warning("placement unanswered after {} s, left in flight client_id={}",
                       seconds, client_id)
        raise Unanswered(f"no answer within {seconds} s, still in flight")

    def answered(self, client_id: str) -> LateAnswer | None:
        """The late answer of `client_id`, once (None: still in flight, or never left in
        flight here)."""
        pending = self._requests.get(client_id)
        if pending is None or not pending.done():
            return None
        del self._requests[client_id]
        if pending.cancelled():
            return LateAnswer(None, asyncio.CancelledError())
        error = pending.exception()
        return LateAnswer(None if error is not None else pending.result(), error)

    def _forget_answered(self) -> None:
        if len(self._requests) < KEPT:
            return
        self._requests = {client_id: pending for client_id, pending in self._requests.items()
                          if not pending.done()}


def _log_late(client_id: str, pending: asyncio.Future[Order]) -> None:
    """The late answer, logged when it comes (and its error retrieved, never left unseen)."""
    if pending.cancelled():
        logger.warning("late placement cancelled client_id={}", client_id)
        return
    error = pending.exception()
    if error is not None:
        logger.warning("late placement answered with an error client_id={} error={!r}",
                       client_id, error)
        return
    order = pending.result()
    logger.info("late placement answered client_id={} status={}", client_id, order.status)
