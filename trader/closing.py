"""Finalizing a position the exchange no longer holds: read what happened, clean up.

`Finalizer.finalize(position, reason)` reads the final state of the position's legs (as
the order tracker merges the reads with what the stream said: the executor feeds it),
cancels every order of the position still live (verified: a fill that raced the cancel
counts), settles its open intents, reads its fills and computes the final record
(trader/close_record.py). Each exchange step is best effort: the close is recorded even
when a cancel or a read fails right now (the failure is in `problems`, reported to the
operator; the engine's sweep cancels what is left on the flat symbol on the next tick).
The engine commits the result in one transaction.
"""

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from loguru import logger

from trader.clock import Clock
from trader.close_record import close_reason, closed
from trader.domain import CloseReason, Fill, Order, OrderRole
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.executor import Executor
from trader.order_tracker import OrderTracker
from trader.position import Position
from trader.protection import name
from trader.trade_store import TradeStore

T = TypeVar("T")


@dataclass
class Finalized:
    position: Position                         # the final record (CLOSED)
    fills: list[Fill]
    problems: list[str] = field(default_factory=list)


class Finalizer:
    def __init__(self, exchange: Exchange, executor: Executor, tracker: OrderTracker,
                 store: TradeStore, clock: Clock) -> None:
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.store = store
        self.clock = clock

    async def finalize(self, position: Position, reason: CloseReason) -> Finalized:
        problems: list[str] = []
        legs: dict[str, Order | None] = {}
        for leg in position.legs:
            if leg.order is not None and leg.order.ours:
                # The tracker's merge (Executor.refresh), not the read alone: a stop the
                # stream said filled still reads TRIGGERED over REST until its child order
                # is done.
                legs[leg.role.value] = await self._best_effort(
                    problems, f"read the {name(leg.role)} {leg.order.client_id}",
                    self.executor.refresh(position.symbol, leg.order.client_id))
        for client_id in self._leftovers(position, legs):
            await self._best_effort(
                problems, f"cancel {client_id}",
                self.executor.cancel_and_verify(position.symbol, client_id),
                "will retry on the next tick")
        for intent in self.store.unresolved_intents_for(position.symbol, position.key):
            await self._best_effort(problems, f"settle intent {intent.client_id}",
                                    self.executor.refresh(position.symbol, intent.client_id))
        fills = await self._fills(position, problems)
        why = close_reason(position, legs.get("sl"), legs.get("tp"), reason, fills,
                           legs.get(OrderRole.TAKE_PROFIT_1.value))
        return Finalized(closed(position, self.clock.now(), why, fills), fills, problems)

    def _leftovers(self, position: Position, legs: dict[str, Order | None]) -> list[str]:
        """Every order of this position that may still be live (legs, pending placements,
        anything of its ids the tracker saw live), minus those known to be finished."""
        candidates = [o.client_id for o in self.tracker.ours_live(position.symbol)
                      if position.owns(o.client_id)]
        for leg in position.legs:
            if leg.order is not None and leg.order.ours:
                candidates.append(leg.order.client_id)
            candidates += [cid for cid in (leg.pending, leg.superseded) if cid is not None]
        finished = {o.client_id for o in legs.values() if o is not None and o.status.terminal}
        return [cid for cid in dict.fromkeys(candidates)
                if cid not in finished and not self._known_finished(cid)]

    def _known_finished(self, client_id: str) -> bool:
        tracked = self.tracker.get(client_id)
        return tracked is not None and tracked.order.status.terminal

    async def _fills(self, position: Position, problems: list[str]) -> list[Fill]:
        fills = await self._best_effort(
            problems, "read the fills",
            self.executor.read(self.exchange.fills, position.symbol, position.opened_at),
            "PnL taken from the fills already journaled")
        if fills is None:
            return self.store.fills(position.symbol, position.opened_at)
        return fills

    async def _best_effort(self, problems: list[str], what: str, work: Awaitable[T],
                           consequence: str = "") -> T | None:
        try:
            return await work
        except (ExchangeError, UnknownOutcome) as exc:
            line = f"could not {what}: {exc}" + (f"; {consequence}" if consequence else "")
            logger.warning("finalize step failed {}", line)
            problems.append(line)
            return None
