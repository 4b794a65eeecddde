"""Finalizing a position the exchange no longer holds: read what happened, clean up.

`Finalizer.finalize(position, reason)` reads the final state of the position's legs (as
the order tracker merges the reads with what the stream said: the executor feeds it),
cancels every order of the position still live (verified: a fill that raced the cancel
counts), settles its open intents, reads its fills and computes the final record
(trader/close_record.py). Each exchange step is best effort: the close is recorded even
when a cancel or a read fails right now (the failure is in `problems`, reported to the
operator; the engine's sweep cancels what is left on the flat symbol on the next tick).
Inside a Retry-After (the rate-limit circuit open) it asks nothing: the close is recorded
from what the user-data stream told (`_told_by_stream`). The engine commits the result in
one transaction.
"""

from collections.abc import Awaitable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from loguru import logger

from trader.clock import Clock
from trader.close_record import close_reason, closed
from trader.domain import ZERO, CloseReason, Fill, Order, OrderRole
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome, clock_offset
from trader.executor import Executor
from trader.fee_prices import fee_prices
from trader.fee_value import assets_to_value
from trader.order_tracker import OrderTracker
from trader.position import Position
from trader.position_fills import fills_of, read_from
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
        if self.executor.circuit_open():
            return self._told_by_stream(position, reason)
        # When the close was seen: the reads below (each up to a timeout) are not its time
        seen_at = self.clock.now()
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
        prices = await fee_prices(self.exchange, self.executor, assets_to_value(fills),
                                  problems)
        why = close_reason(position, legs.get("sl"), legs.get("tp"), reason, fills,
                           legs.get(OrderRole.TAKE_PROFIT_1.value))
        return Finalized(closed(position, seen_at, why, fills,
                                self._opened_beyond(position), prices), fills, problems)

    def _opened_beyond(self, position: Position) -> Decimal:
        """What the exchange holds now on the other side (the view the close was seen in):
        a reversal by hand, one order larger than the position, opened that much."""
        now = self.tracker.position(position.symbol)
        if now is None or now.side is not position.side.opposite:
            return ZERO
        return now.size

    def _told_by_stream(self, position: Position, reason: CloseReason) -> Finalized:
        """The close inside a Retry-After, when the gate sends nothing (an IP ban lasts from
        2 minutes to 3 days: the stop's fill cannot wait for it), from what the user-data
        stream told: the legs as the tracker knows them, the fills it journaled (Binance's
        ORDER_TRADE_UPDATE carries each fill's price, fee and realised PnL). Complete when
        the closing fills journaled close all the opening ones; else the exit and the PnL
        are left unknown (a part would read as the result) and the close read-back completes
        them from the account's trades once requests resume (trader/close_readback.py).
        What may still be live is cancelled then by the orphan sweep of the flat symbol."""
        legs: dict[str, Order | None] = {}
        for leg in position.legs:
            if leg.order is not None and leg.order.ours:
                legs[leg.role.value] = self.executor.settle_known(leg.order.client_id)
        for intent in self.store.unresolved_intents_for(position.symbol, position.key):
            self.executor.settle_known(intent.client_id)
        until = self.exchange.circuit().open_until
        resume = "once requests to the exchange resume" + (
            f" ({until:%H:%M:%S} UTC)" if until is not None else "")
        problems = []
        offset = clock_offset(self.exchange)
        fills = fills_of(position, self.store.fills(position.symbol, read_from(position, offset)),
                         offset=offset)
        beyond = self._opened_beyond(position)       # the stream's view of the position
        complete = _closes_all(position, fills, beyond)
        if not complete:
            fills = [f for f in fills if f.side is position.side]
            problems.append("requests to the exchange are paused (rate limit) and the "
                            "user-data stream has not told every closing fill: exit price "
                            f"and PnL are read {resume}")
        in_kind = assets_to_value(fills)
        if in_kind:
            problems.append(f"fees charged in {', '.join(in_kind)} are not valued in USDT: "
                            "no request may be sent for its price (rate limit); valued "
                            f"{resume}")
        leftovers = self._leftovers(position, legs)
        if leftovers:
            problems.append(f"not cancelled yet, no request may be sent: {', '.join(leftovers)}"
                            f"; cancelled {resume}")
        why = close_reason(position, legs.get("sl"), legs.get("tp"), reason, fills,
                           legs.get(OrderRole.TAKE_PROFIT_1.value))
        logger.info("close recorded from the user-data stream inside a Retry-After symbol={} "
                    "key={} reason={} result_known={} left_live={}", position.symbol,
                    position.key, why, complete, leftovers)
        return Finalized(closed(position, self.clock.now(), why, fills, beyond), fills,
                         problems)

    def _leftovers(self, position: Position, legs: dict[str, Order | None]) -> list[str]:
        """Every order of this position that may still be live (legs, pending placements,
        anything of its ids the tracker saw live), minus those known to be finished."""
        candidates = [o.client_id for o in self.tracker.ours_live(position.symbol)
                      if position.owns(o.client_id)]
        for leg in position.legs:
            if leg.order is not None and leg.order.ours:
                candidates.append(leg.order.client_id)
            if leg.pending is not None:
                candidates.append(leg.pending)
            candidates += leg.superseded
        finished = {o.client_id for o in legs.values() if o is not None and o.status.terminal}
        return [cid for cid in dict.fromkeys(candidates)
                if cid not in finished and not self._known_finished(cid)]

    def _known_finished(self, client_id: str) -> bool:
        tracked = self.tracker.get(client_id)
        return tracked is not None and tracked.order.status.terminal

    async def _fills(self, position: Position, problems: list[str]) -> list[Fill]:
        """The position's fills (trader/position_fills.py): read over REST, else those
        already journaled."""
        offset = clock_offset(self.exchange)
        since = read_from(position, offset)
        fills = await self._best_effort(
            problems, "read the fills",
            self.executor.read(self.exchange.fills, position.symbol, since),
            "PnL taken from the fills already journaled")
        if fills is None:
            fills = self.store.fills(position.symbol, since)
        return fills_of(position, fills, offset=offset)

    async def _best_effort(self, problems: list[str], what: str, work: Awaitable[T],
                           consequence: str = "") -> T | None:
        try:
            return await work
        except (ExchangeError, UnknownOutcome) as exc:
            line = f"could not {what}: {exc}" + (f"; {consequence}" if consequence else "")
            logger.warning("finalize step failed {}", line)
            problems.append(line)
            return None


def _closes_all(position: Position, fills: list[Fill], beyond: Decimal) -> bool:
    """Whether `fills` (the position's: trader/position_fills.py) close all it opened: as
    much closed as opened, and something opened (none journaled: an adopted position).
    `beyond`: what the exchange holds on the other side (a reversal by hand opened it with
    part of the closing fills)."""
    opened = closed_qty = ZERO
    for fill in fills:
        if fill.side is position.side:
            opened += fill.quantity
        else:
            closed_qty += fill.quantity
    return opened > 0 and closed_qty - beyond == opened
