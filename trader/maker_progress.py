"""What a maker-first entry's orders did so far (`Progress`: filled, at what price, the
quote live now, a lost answer), read from the order tracker (the user-data stream), else
the journal, else the exchange (trader/maker_quoter.py acts on it).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from trader.clock import Clock
from trader.domain import ZERO, Intent, IntentStatus, Order, OrderType
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.observe import SymbolView
from trader.trade_store import TradeStore


@dataclass
class Progress:
    """What the entry's orders did so far (every quote and a market rest)."""
    filled: Decimal = ZERO
    notional: Decimal = ZERO             # sum of filled quantity x price
    live: Order | None = None            # the quote that is live now
    unknown: bool = False                # a quote's answer is lost, not resolved yet
    quotes_sent: int = 0
    last_id: str | None = None           # the highest entry client id journaled
    refused: str = ""                    # why the market rest was refused, if it was
    given_up: str = ""                   # why the rest was given up to keep the plan's risk

    def add(self, order: Order) -> None:
        self.filled += order.filled_qty
        self.notional += order.filled_qty * order.avg_price
        if order.type is OrderType.LIMIT and order.status.live:
            self.live = order

    def settle(self, before: Order, final: Order | None) -> None:
        """The live quote `before` ended as `final` (None: the exchange knows it no more)."""
        self.live = None
        if final is not None and final.filled_qty > before.filled_qty:
            self.filled += final.filled_qty - before.filled_qty
            self.notional += final.filled_qty * final.avg_price - \
                before.filled_qty * before.avg_price

    @property
    def average_price(self) -> Decimal:
        return self.notional / self.filled if self.filled else ZERO


class QuoteReader:
    """Reads what each entry order of a maker-first entry did (see the module docstring)."""

    def __init__(self, executor: Executor, store: TradeStore, clock: Clock,
                 view: ExchangeView) -> None:
        self.executor = executor
        self.store = store
        self.clock = clock
        self.view = view

    async def progress(self, intents: Iterable[Intent], view: SymbolView) -> Progress:
        """What the entry orders of `intents` (a position's, in id order) did so far."""
        progress = Progress()
        for intent in intents:
            progress.last_id = intent.client_id
            progress.quotes_sent += int(intent.type is OrderType.LIMIT)
            order, unknown = await self._order_of(intent, view)
            progress.unknown |= unknown
            if order is not None:
                progress.add(order)
        return progress

    async def _order_of(self, intent: Intent, view: SymbolView) -> tuple[Order | None, bool]:
        """One entry order's latest state, and whether its fate is still unknown."""
        tracked = view.orders.get(intent.client_id)
        if intent.status.resolved:
            saved = self.store.order(intent.client_id)
            if saved is not None and saved.status.terminal:
                return self._known(saved), False
            if tracked is not None and tracked.order.status.terminal:
                return tracked.order, False
            if intent.status is not IntentStatus.FILLED:
                return None, False           # refused (-5022, ...) or never placed
            return await self._read(intent), False
        if tracked is not None and tracked.absent_since is None:
            return tracked.order, False
        if intent.status is IntentStatus.PENDING:
            # Journaled, never sent (SENT is journaled before a request leaves): the process
            # stopped in between. It never will be sent: the next quote takes the next id.
            self.store.save_intent(intent.with_status(
                IntentStatus.EXPIRED, detail="never sent (stopped before sending)"),
                self.clock.now())
            return None, False
        if intent.status is IntentStatus.SENT:
            probed = await self.executor.probe(intent)
            if probed.status is IntentStatus.SENT:
                return None, True            # may still land: never act on it blind
            if probed.status in (IntentStatus.FAILED, IntentStatus.EXPIRED):
                return None, False
        return await self._read(intent), False

    async def _read(self, intent: Intent) -> Order | None:
        """One entry order read by client id, as the tracker knows it with this read
        (Executor.refresh: merged with what the stream said and the record): a read served
        from before an ORDER_TRADE_UPDATE lacks its fills (CANCELED, nothing executed, of
        a quote the stream said partly filled), and counted as it reads the next quote
        would be for all of the entry again."""
        return await self.executor.refresh(intent.symbol, intent.client_id)

    def _known(self, saved: Order) -> Order:
        """An order's record merged with what the user-data stream said of it since
        (OrderTracker.learned), as `_read` merges a read."""
        return self.view.tracker.learned(saved, self.clock.now()) or saved
