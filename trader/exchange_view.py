"""The tick's view of each symbol, read from the exchange as cheaply as it can be trusted.

While the user-data stream is healthy and the symbol was snapshotted over REST since the
stream (re)connected, the order tracker already knows every order of ours and the position
(ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE), and the market stream pushes the book
and the mark: the tick sends no REST request at all. Otherwise (polling) the tick takes a
REST snapshot first: position (weight 5) and open orders (plain + algo, weight 1 + 1).

"The mark" is Binance's mark price, always: what our stops trigger on (workingType
MARK_PRICE, trader/exchange/binance_requests.py) and what the exit rules and the stuck
stop watch judge (trader/lifecycle_tick.py). Pushed within QUOTE_MAX_AGE, else the
"markPrice" of a position read in the same view, else GET /fapi/v1/premiumIndex (weight
1: for a flat symbol with no record, only when an entry is to be planned, `priced`); never
the book's middle, which parts from the mark in a fast move. The book and the
mark age apart (trader/exchange/binance_quotes.py): the book-ticker stream pushes only
when the best bid or ask changes, so a quiet book costs no mark read; the spread breaker
and the maker quotes read the book (`pushed_book`, else bookTicker over REST, weight 2).

A stream can go silent without closing (a listenKey that expires with no listenKeyExpired
event, a half-open socket): the ping notices a dead socket only after 30 + 15 s, the
user-data silence check after 180 s, and meanwhile the tracker would be trusted while a
stop cancelled by hand stays unreplaced. So while a symbol holds a position, its open
orders are read over REST (plain + algo, weight 1 + 1 with the symbol: Binance's "Current
All Open Orders" and https://developers.binance.com/docs/derivatives/usds-margined-futures/
trade/rest-api/Current-All-Algo-Open-Orders) once `verify_every` has passed since the
last read, whatever the stream says; a list that differs from the tracker's live orders
means the stream missed something: a full snapshot at once, as when polling.

A fill of ours a REST answer told (a MARKET entry answered FILLED) reaches the tracker's
position only with its ACCOUNT_UPDATE, which may come a tick late or not at all while the
socket stays up: until then (OrderTracker.position_behind) the position is read over REST
(weight 5 + 2, once), never taken from the stream's older picture, which would show the
position just opened as flat ("closed (MANUAL)", then adopted).
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
    TriggerRejected,
    UnknownOutcome,
)
from trader.executor import Executor
from trader.observe import SymbolView
from trader.order_tracker import OrderTracker
from trader.outage_log import OutageLog

QUOTE_MAX_AGE = timedelta(seconds=10)
# How long the mark a tick read over REST (premiumIndex, or a position read) stands for the
# current one on /status when nothing fresh was pushed (`last_mark`): a few ticks of the
# live loop. Shown only: nothing is judged on it.
READ_MARK_MAX_AGE = timedelta(seconds=60)
NEVER = datetime.min.replace(tzinfo=UTC)


class ExchangeView:
    def __init__(self, exchange: Exchange, executor: Executor, tracker: OrderTracker,
                 clock: Clock, verify_every: timedelta | None = None) -> None:
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.clock = clock
        # None: the exchange's events come from its own simulator (paper, backtests), a
        # stream that cannot fall silent; else TRADEBOT_STREAM_VERIFY_SECONDS.
        self.verify_every = verify_every
        self.rest_snapshots = 0          # REST snapshots taken (for the REST budget figures)
        self.verifications = 0           # open-order reads checking the stream (same)
        self.stream_misses = 0           # of them, how many found the tracker wrong
        # When each symbol's open orders were last read over REST (a snapshot or a
        # verification, asked at that time), for `verify_due`.
        self._read_at: dict[str, datetime] = {}
        # symbol -> (the mark the last tick read over REST, when): `mark`, `last_mark`
        self._read_marks: dict[str, tuple[Decimal, datetime]] = {}
        # Symbols whose ticks have had no mark since the WARNING said so (`mark`): said once
        # per gap, and when a mark is had again, how long the gap lasted.
        self.no_mark = OutageLog(clock)
        # Symbols whose recorded size the user-data stream told inside a Retry-After, with
        # no read since to confirm it (`heard_size`): read over REST first thing after.
        self._heard: set[str] = set()

    def on_events(self, events: list[ExchangeEvent]) -> None:
        """Feed what the user-data stream pushed into the tracker."""
        now = self.clock.now()
        for event in events:
            if isinstance(event, OrderUpdate):
                self.tracker.on_order(event.order, event.time or now)
            elif isinstance(event, LeverageChanged):
                self.tracker.on_leverage(event.symbol, event.leverage)
            elif isinstance(event, TriggerRejected):
                self.tracker.on_trigger_rejected(event.symbol, event.order_id, event.reason,
                                                 event.time or now)
            elif isinstance(event, AccountUpdate):
                for position in event.positions:
                    if not self.tracker.on_streamed_position(position, event.time or now):
                        logger.warning("stale ACCOUNT_UPDATE ignored symbol={} quantity={} "
                                       "T={}", position.symbol, position.quantity, event.time)

    def streaming(self, symbol: str) -> bool:
        return self.exchange.streaming and self.tracker.synced(symbol)

    async def view(self, symbol: str, *, fresh: bool = False,
                   priced: bool = True) -> SymbolView:
        """The symbol's view: from the tracker while the stream is trusted, else REST first.
        `priced=False`: a flat symbol's mark only when it costs no request (pushed, or the
        position read in this view), else 0 (`priced` reads it, for an entry to plan): a
        flat tick with nothing to decide does not spend premiumIndex's weight on it."""
        if not fresh:
            pushed = self.pushed_view(symbol)
            if pushed is not None:
                return pushed
        tracker = self.tracker
        position = tracker.position(symbol)
        read: ExchangePosition | None = None
        if fresh or position is None or not (self.exchange.streaming and tracker.synced(symbol)) \
                or symbol in self._heard or tracker.position_behind(symbol):
            read = await self.snapshot(symbol)
            position = tracker.position(symbol)
        elif position.side is not None and self.verify_due(symbol):
            await self.verify(symbol)
            position = tracker.position(symbol) or position
        if position is None:
            position = ExchangePosition(symbol, ZERO)
        orders, at, live = tracker.for_symbol(symbol), self.clock.now(), tracker.live(symbol)
        mark = await self.mark(symbol, read) if priced or position.side is not None \
            else self._free_mark(symbol, read)
        return SymbolView(symbol, at, position, orders, live, mark)

    async def priced(self, view: SymbolView) -> SymbolView:
        """`view` with the mark (`mark`: read over REST when none is pushed), when it was
        taken without one (`view(priced=False)`)."""
        if view.mark > ZERO:
            return view
        return replace(view, mark=await self.mark(view.symbol))

    def _free_mark(self, symbol: str, read: ExchangePosition | None) -> Decimal:
        """`mark` when it needs no request: pushed, or the position `read` in this view;
        else 0."""
        pushed = self.exchange.pushed_mark(symbol, QUOTE_MAX_AGE)
        if pushed is not None and pushed > ZERO:
            return pushed
        return read.mark_price if read is not None and read.mark_price \
            and read.mark_price > ZERO else ZERO

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
        if position.side is not None and self.verify_due(symbol):
            return None                   # the stream's picture is due a REST check: `view`
        if self._heard and symbol in self._heard:
            return None                   # a size heard in a ban, to read: `view`
        # `position_behind`, inline: every tick of every symbol asks, and it is empty but
        # for the tick after a fill answered over REST
        unshown = tracker.unshown_fills
        if unshown and symbol in unshown:
            return None                   # older than a fill of ours: read, `view`
        quote = self.exchange.quote(symbol, QUOTE_MAX_AGE)
        # against the Decimal ZERO, not the int 0: the same answer (a Decimal compares with
        # an int by its exact value), without converting 0 to a Decimal every tick
        if quote is None or not quote.mark > ZERO:
            return None
        if self.no_mark.since:
            self._mark_again(symbol)
        return position, quote

    def streamed_view(self, symbol: str) -> SymbolView | None:
        """The symbol's view from the streams alone, whatever REST read is due (the stream
        check, a mark): None unless the user-data stream is up and either the symbol was
        snapshotted since it (re)connected, or the stream told the symbol's position since
        (`OrderTracker.told_since_reconnect`). Inside a Retry-After the only view there is:
        a stop's fill must not wait out an IP ban (trader/engine.py), and a socket that
        Binance closes in the ban (its 24-hour mark) reconnects on its valid key with no
        request, while no snapshot may be taken until the ban ends. What the gap hid is
        unknown, but a position told after it is the exchange's: serve it for terminal
        detection and the size, which plan no order; its orders may predate the gap. None
        too while the stream has not told a fill of ours a REST answer did
        (`position_behind`): its position is older than our order, so it cannot say the
        position is gone; the ACCOUNT_UPDATE of a later fill (the stop's) shows it, and is
        heard at once."""
        tracker = self.tracker
        position = tracker.position(symbol)
        if position is None or not self.exchange.streaming or not (
                tracker.synced(symbol) or tracker.told_since_reconnect(symbol)) \
                or tracker.position_behind(symbol):
            return None
        return SymbolView(symbol, self.clock.now(), position, tracker.for_symbol(symbol),
                          tracker.live(symbol), self.last_mark(symbol))

    def view_of(self, symbol: str, at: datetime, position: ExchangePosition,
                quote: Quote) -> SymbolView:
        """The view `pushed_quote` gave `position` and `quote` for, at `at`: the tracker's
        orders as they are now (equal to the view taken at `at` while nothing awaited)."""
        tracker = self.tracker
        return SymbolView(symbol, at, position, tracker.for_symbol(symbol),
                          tracker.live(symbol), quote.mark)

    async def snapshot(self, symbol: str) -> ExchangePosition:
        """Position and open orders over REST, into the tracker; the position as read."""
        started = self.clock.now()
        position = await self.executor.read(self.exchange.position, symbol)
        orders = await self.executor.read(self.exchange.open_orders, symbol)
        self.tracker.on_read_position(position, started)
        self.tracker.on_snapshot(symbol, orders, started)
        self.rest_snapshots += 1
        self._read_at[symbol] = started
        self._heard.discard(symbol)
        if self.exchange.streaming:
            self.tracker.mark_synced(symbol)
        return position

    def heard_size(self, symbol: str) -> None:
        """The record took the size the user-data stream told inside a Retry-After (an IP
        ban: no request could confirm it): the symbol's next view reads the position over
        REST, and until then /status says whose word the size is."""
        self._heard.add(symbol)

    def size_unread(self, symbol: str) -> bool:
        """Whether the symbol's recorded size is the stream's word alone (`heard_size`)."""
        return symbol in self._heard

    def verify_due(self, symbol: str) -> bool:
        """Whether the symbol's open orders have gone `verify_every` without a REST read."""
        every = self.verify_every
        return every is not None and self.clock.now() - self._read_at.get(symbol, NEVER) >= every

    async def verify(self, symbol: str) -> None:
        """Check the stream's picture of the symbol's orders against one REST list (weight
        2): the same live client ids -> the stream is vouched for, nothing else is read;
        any difference -> a full snapshot now (position and orders into the tracker, which
        the observation then settles: probes, replacements). A failed read leaves the
        tracker's view for this tick: the stream may well be fine, skipping the symbol
        would protect nothing, and the next try is one period later (a read refused inside
        a Retry-After is not sent at all: exchange/gate.py)."""
        self._read_at[symbol] = self.clock.now()
        try:
            listed = await self.executor.read(self.exchange.open_orders, symbol)
        except (ExchangeError, UnknownOutcome) as exc:
            logger.info("stream check skipped this tick symbol={} error={}", symbol, exc)
            return
        self.verifications += 1
        known = {order.client_id for order in self.tracker.live(symbol)}
        listed_ids = {order.client_id for order in listed}
        if listed_ids == known:
            return
        self.stream_misses += 1
        logger.warning("user-data stream missed a change symbol={} gone={} unheard={} "
                       "streaming={}: REST snapshot now", symbol, sorted(known - listed_ids),
                       sorted(listed_ids - known), self.exchange.streaming)
        if self.exchange.streaming:
            self.exchange.doubt_stream()    # an expired key is found now, not in 180 s
        await self.snapshot(symbol)

    async def mark(self, symbol: str, read: ExchangePosition | None = None) -> Decimal:
        """Binance's mark price now: pushed within QUOTE_MAX_AGE (whatever the book's age),
        else the "markPrice" of the position `read` over REST in this very view, else GET
        /fapi/v1/premiumIndex; 0 when none can be had (the read refused or failed: a ban,
        an error). With 0 nothing is judged on the price this tick (trader/
        position_keeper.py gives the Tick no mark: no stuck-stop close, no trailing or
        breakeven move), said in the log. Never the book's middle: a book past a stop the
        mark has not reached closed positions Binance kept."""
        pushed = self.exchange.pushed_mark(symbol, QUOTE_MAX_AGE)
        if pushed is not None and pushed > ZERO:
            if self.no_mark.since:
                self._mark_again(symbol)
            return pushed
        if read is not None and read.mark_price and read.mark_price > ZERO:
            mark = read.mark_price
        else:
            try:
                mark = await self.executor.read(self.exchange.mark_price, symbol)
            except (ExchangeError, UnknownOutcome) as exc:
                self.no_mark.failed(symbol, "no mark price this tick symbol={} error={}: "
                                    "nothing is judged on the price (stuck stop, exit rules) "
                                    "until one is read (said once until then)", symbol, exc)
                return ZERO
        if self.no_mark.since:
            self._mark_again(symbol)
        self._read_marks[symbol] = (mark, self.clock.now())
        return mark

    def _mark_again(self, symbol: str) -> None:
        self.no_mark.ended(symbol, "mark price read again symbol={}: the price is judged "
                           "again; none was to be had", symbol)

    def last_mark(self, symbol: str) -> Decimal:
        """The mark to show now (/status, /positions): pushed within QUOTE_MAX_AGE, else the
        one the last tick read over REST within READ_MARK_MAX_AGE (the market streams
        silent), else the position's at the last look (a REST position read carries
        `markPrice`; Binance's ACCOUNT_UPDATE carries none, and is sent on balance or
        position changes only), else 0 (no price known). Each of them Binance's mark."""
        pushed = self.exchange.pushed_mark(symbol, QUOTE_MAX_AGE)
        if pushed is not None and pushed > ZERO:
            return pushed
        read = self._read_marks.get(symbol)
        if read is not None and self.clock.now() - read[1] <= READ_MARK_MAX_AGE:
            return read[0]
        seen = self.tracker.position(symbol)
        return seen.mark_price if seen is not None and seen.mark_price else ZERO

    def pushed_book(self, symbol: str) -> BookTicker | None:
        """The top of book when one was pushed and is fresh (no REST read), whatever the
        mark's age, else None."""
        return self.exchange.pushed_book(symbol, QUOTE_MAX_AGE)

    async def book(self, symbol: str) -> BookTicker | None:
        """The top of book: pushed if fresh, else over REST; None when the exchange has none
        to give now (no price yet, a refused read: the spread breaker skips this tick)."""
        pushed = self.exchange.pushed_book(symbol, QUOTE_MAX_AGE)
        if pushed is not None:
            return pushed
        try:
            return await self.executor.read(self.exchange.book_ticker, symbol)
        except ExchangeError as exc:
            logger.info("no book this tick symbol={} error={}", symbol, exc)
            return None
