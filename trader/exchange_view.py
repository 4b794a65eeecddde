"""The tick's view of each symbol, read from the exchange as cheaply as it can be trusted.

While the user-data stream is healthy and the symbol was snapshotted over REST since the
stream (re)connected, the order tracker already knows every order of ours and the position
(ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE), and the market stream pushes the book
and the mark: the tick sends no REST request at all. Otherwise (polling) the tick takes a
REST snapshot first: position (weight 5) and open orders (plain + algo, weight 1 + 1), and
the book ticker (weight 2) when no fresh quote was pushed.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from trader.clock import Clock
from trader.domain import ZERO, BookTicker, ExchangePosition
from trader.exchange.base import (
    AccountUpdate,
    Exchange,
    ExchangeError,
    ExchangeEvent,
    LeverageChanged,
    OrderUpdate,
    Quote,
)
from trader.executor import Executor
from trader.observe import SymbolView
from trader.order_tracker import OrderTracker

QUOTE_MAX_AGE = timedelta(seconds=10)


class ExchangeView:
    def __init__(self, exchange: Exchange, executor: Executor, tracker: OrderTracker,
                 clock: Clock) -> None:
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.clock = clock
        self.rest_snapshots = 0          # REST snapshots taken (for the REST budget figures)

    def on_events(self, events: list[ExchangeEvent]) -> None:
        """Feed what the user-data stream pushed into the tracker."""
        now = self.clock.now()
        for event in events:
            if isinstance(event, OrderUpdate):
                self.tracker.on_order(event.order, event.time or now)
            elif isinstance(event, LeverageChanged):
                self.tracker.on_leverage(event.symbol, event.leverage)
            elif isinstance(event, AccountUpdate):
                for position in event.positions:
                    if not self.tracker.on_streamed_position(position, event.time or now):
                        logger.warning("stale ACCOUNT_UPDATE ignored symbol={} quantity={} "
                                       "T={}", position.symbol, position.quantity, event.time)

    def streaming(self, symbol: str) -> bool:
        return self.exchange.streaming and self.tracker.synced(symbol)

    async def view(self, symbol: str, *, fresh: bool = False) -> SymbolView:
        """The symbol's view: from the tracker while the stream is trusted, else REST first."""
        if not fresh:
            pushed = self.pushed_view(symbol)
            if pushed is not None:
                return pushed
        tracker = self.tracker
        position = tracker.position(symbol)
        if fresh or position is None or not (self.exchange.streaming and tracker.synced(symbol)):
            await self.snapshot(symbol)
            position = tracker.position(symbol)
        if position is None:
            position = ExchangePosition(symbol, ZERO)
        orders, at, live = tracker.for_symbol(symbol), self.clock.now(), tracker.live(symbol)
        quote = self.exchange.quote(symbol, QUOTE_MAX_AGE)
        mark = quote.mark if quote is not None and quote.mark > 0 \
            else await self.mark(symbol, position)      # nothing pushed: the book over REST
        return SymbolView(symbol, at, position, orders, live, mark)

    def pushed_view(self, symbol: str) -> SymbolView | None:
        """`view(symbol)` when it needs no REST read (the stream is trusted, the symbol was
        snapshotted since, a fresh mark was pushed: most ticks), else None."""
        pushed = self.pushed_quote(symbol)
        return self.view_of(symbol, self.clock.now(), *pushed) if pushed is not None else None

    def pushed_quote(self, symbol: str) -> tuple[ExchangePosition, Quote] | None:
        """What `pushed_view(symbol)` is built from, the position and the pushed quote, else
        None. The tick asks this first: no coroutine for the usual case, a view built only
        when something uses it (`view_of`: a flat tick needs only the position's side), and
        the top of book of the very quote its mark came from (trader/engine.py
        `tick_symbol`)."""
        tracker = self.tracker
        position = tracker.position(symbol)
        if position is None or not (self.exchange.streaming and tracker.synced(symbol)):
            return None
        quote = self.exchange.quote(symbol, QUOTE_MAX_AGE)
        # against the Decimal ZERO, not the int 0: the same answer (a Decimal compares with
        # an int by its exact value), without converting 0 to a Decimal every tick
        if quote is None or not quote.mark > ZERO:
            return None
        return position, quote

    def view_of(self, symbol: str, at: datetime, position: ExchangePosition,
                quote: Quote) -> SymbolView:
        """The view `pushed_quote` gave `position` and `quote` for, at `at`: the tracker's
        orders as they are now (equal to the view taken at `at` while nothing awaited)."""
        tracker = self.tracker
        return SymbolView(symbol, at, position, tracker.for_symbol(symbol),
                          tracker.live(symbol), quote.mark)

    async def snapshot(self, symbol: str) -> None:
        """Position and open orders over REST, into the tracker."""
        started = self.clock.now()
        position = await self.executor.read(self.exchange.position, symbol)
        orders = await self.executor.read(self.exchange.open_orders, symbol)
        self.tracker.on_read_position(position, started)
        self.tracker.on_snapshot(symbol, orders, started)
        self.rest_snapshots += 1
        if self.exchange.streaming:
            self.tracker.mark_synced(symbol)

    async def mark(self, symbol: str, position: ExchangePosition) -> Decimal:
        """The mark: pushed if fresh, else the middle of the book (REST), else the position's
        last known mark; 0 before any price exists."""
        quote = self.exchange.quote(symbol, QUOTE_MAX_AGE)
        if quote is not None and quote.mark > 0:
            return quote.mark
        book = await self.book(symbol)
        if book is not None and book.mid > 0:
            return book.mid
        return position.mark_price

    def pushed_book(self, symbol: str) -> BookTicker | None:
        """The top of book when one was pushed and is fresh (no REST read), else None."""
        quote = self.exchange.quote(symbol, QUOTE_MAX_AGE)
        return quote.book if quote is not None else None

    async def book(self, symbol: str) -> BookTicker | None:
        """The top of book: pushed if fresh, else over REST; None when the exchange has none
        to give now (no price yet, a refused read: the spread breaker skips this tick)."""
        quote = self.exchange.quote(symbol, QUOTE_MAX_AGE)
        if quote is not None:
            return quote.book
        try:
            return await self.executor.read(self.exchange.book_ticker, symbol)
        except ExchangeError as exc:
            logger.info("no book this tick symbol={} error={}", symbol, exc)
            return None
