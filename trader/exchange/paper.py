"""The in-process paper exchange: the `Exchange` protocol on top of the matching simulator.

Its whole state (balance, positions, orders, fills) is saved in the database's key-value
state after every mutating call, and on candles every `persist_every` candles (0: never on
candles; the default 1 keeps a live paper session exact across restarts). `save_state=False`
never saves it (a backtest whose database is thrown away: the engine's own intents,
orders, fills and positions are still recorded). A new `PaperExchange` on the same database
continues where the last one stopped.

Layout: "paper:sim" holds the account (balances, positions, prices, live orders); the
history of terminal orders and fills is journaled in chunks under "paper:sim:orders:<n>"
and "paper:sim:fills:<n>", so a save writes what changed, not the ~0.5 MB history kept.
A "paper:sim" written whole by an older version is read as before and journaled anew.

    paper = PaperExchange(store, clock, SimConfig(balance=Decimal("10000")))
    await paper.start(["BTCUSDT"], leverage=5)
    paper.feed_candle(candle)                 # the replay driver moves the market
    order = await paper.place(request)        # raises ExchangeError like Binance
"""

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from storage import SaveStateFailure, Store
from trader.clock import Clock
from trader.config import INTERVAL_SECONDS
from trader.domain import (
    SETTLEMENT_ASSET,
    Balance,
    BookTicker,
    Candle,
    ExchangePosition,
    Fill,
    Order,
    OrderRequest,
)
from trader.exchange.base import (
    CircuitState,
    ExchangeError,
    ExchangeEvent,
    FundingIncome,
    Quote,
    UnknownOutcome,
)
from trader.exchange.errors import Outcome, classify
from trader.exchange.sim import SimConfig, SimEvent, Simulator
from trader.exchange.sim_path import candle_problem
from trader.exchange.sim_state import SimHistory, account_json
from trader.symbol_rules import SymbolRules

STATE_KEY = "paper:sim"
ORDERS_PREFIX = "paper:sim:orders:"
FILLS_PREFIX = "paper:sim:fills:"
MAX_EVENTS = 10_000
MAX_CANDLES_KEPT = 1500
CLOSED_CIRCUIT = CircuitState(None)


class PaperExchange:
    """Binance USD-M futures, simulated in process and persisted in the database."""

    name = "paper"

    def __init__(self, store: Store, clock: Clock, config: SimConfig,
                 rules: dict[str, SymbolRules] | None = None, latency: bool = False,
                 persist_every: int = 1,
                 funding_schedules: dict[str, list[tuple[datetime, Decimal]]] | None = None,
                 save_state: bool = True, stream: bool = True) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.latency_enabled = latency
        self.persist_every = persist_every
        self.save_state = save_state
        self.history = SimHistory(config.max_terminal_orders_kept, config.max_fills_kept)
        self.sim = self._restore(rules)
        if save_state:
            self.sim.history = self.history   # journal terminal orders and fills as they happen
        for symbol, schedule in (funding_schedules or {}).items():
            self.sim.set_funding_schedule(symbol, schedule)   # e.g. replay.load_bundled_funding()
        self._events: deque[ExchangeEvent] = deque(maxlen=MAX_EVENTS)
        self._event_waiting = asyncio.Event()
        self._candles: dict[str, deque[Candle]] = {}
        self._candles_since_persist = 0
        # per symbol: the last quote and the mark, moment, funding book's version and spread
        # setting it was made with (`quote`)
        self._quotes: dict[str, tuple[Quote, Decimal, datetime, int, Any]] = {}
        # True while the agent may trust the events (the Exchange protocol's `streaming`);
        # False (`stream=False` or `stream_live = False`) plays a user-data stream that is
        # down: the agent polls every read over REST. A plain attribute, not a property: the
        # engine reads it several times a candle
        self.streaming = stream

    def _restore(self, rules: dict[str, SymbolRules] | None) -> Simulator:
        state = self.store.get(STATE_KEY)
        if state is None:
            return Simulator(self.config, rules)
        if "terminal" in state["orders"]:   # saved whole, before the history was journaled
            sim = Simulator.from_state(state, self.config, rules)
            self.history.seed(sim)
        else:
            for number, raws in self._saved_chunks(ORDERS_PREFIX):
                self.history.load_orders(number, raws)
            for number, raws in self._saved_chunks(FILLS_PREFIX):
                self.history.load_fills(number, raws)
            sim = Simulator.from_state(self.history.full_state(state), self.config, rules)
        balance = sim.balance()
        logger.info("paper session restored wallet={} positions={} open_orders={}",
                    balance.wallet, len(sim.positions()), len(sim.open_orders()))
        return sim

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self, symbols: list[str], leverage: int) -> None:
        """Set the leverage of flat symbols (an open position keeps the one it has)."""
        for symbol in symbols:
            if self.sim.position(symbol).quantity == 0:
                self.sim.set_leverage(symbol, leverage)
        self._save()
        logger.info("paper exchange started symbols={} leverage={} wallet={}",
                    ",".join(symbols), leverage, self.sim.balance().wallet)

    async def close(self) -> None:
        self._save()

    def rules(self, symbol: str) -> SymbolRules:
        return self.sim.rules_for(symbol)

    async def refresh_rules(self) -> list[str]:
        """The simulator's rules never change under a running session."""
        return []

    async def learn_rules(self, symbol: str) -> bool:
        """The simulator has rules for any symbol (trader/exchange/sim_rules.py)."""
        return True

    def circuit(self) -> CircuitState:
        """The simulator never rate-limits: the circuit stays closed."""
        return CLOSED_CIRCUIT

    def on_circuit_open(self, callback: Callable[[CircuitState], None]) -> None:
        """The simulator never rate-limits: no circuit ever opens."""

    def restore_circuit(self, circuit: CircuitState) -> None:
        """The simulator is another exchange than the one that rate-limited (if any)."""

    def on_stream_reconnect(self, callback: Callable[[], None]) -> None:
        """The simulator's events never go missing: nothing to resync after."""

    def doubt_stream(self) -> None:
        """The simulator's events never go missing: nothing to check."""

    # --- the market (driven by the replay feed) -----------------------------------------
    def feed_candle(self, candle: Candle) -> list[SimEvent]:
        """Move the market by one closed candle: triggers, fills, funding. A candle the
        simulator refuses (a price <= 0: logged there) moves nothing and is not kept."""
        if candle_problem(candle) is not None:
            return self.sim.on_candle(candle)     # refused there (logged): nothing moves
        events = self.sim.walk_candle(candle)
        kept = self._candles.get(candle.symbol)
        if kept is None:
            kept = self._candles[candle.symbol] = deque(maxlen=MAX_CANDLES_KEPT)
        kept.append(candle)
        if events:                                # most candles: nothing happened
            self.publish(events)
        self._candles_since_persist += 1
        if 0 < self.persist_every <= self._candles_since_persist:
            self._save()
        return events

    def funding_total(self) -> Decimal:
        """Funding paid (< 0) or received (> 0) since the session began."""
        return self.sim.ledger.funding

    # --- orders -------------------------------------------------------------------------
    async def place(self, request: OrderRequest) -> Order:
        if self.latency_enabled:            # the simulated latency (no coroutine when off)
            await self.clock.sleep(self.sim.latency())
        try:
            order, events = self.sim.place(request, self.clock.now())
        except ExchangeError as error:
            logger.info("paper order rejected symbol={} client_id={} code={} message={}",
                        request.symbol, request.client_id, error.code, error.message)
            raise
        self.publish(events)
        if self.save_state:
            self._persist(f"place {request.client_id}")
        else:           # what `_save` does when nothing is saved (it cannot fail then)
            self._candles_since_persist = 0
        return order

    async def cancel(self, symbol: str, client_id: str) -> Order | None:
        if self.latency_enabled:            # the simulated latency (no coroutine when off)
            await self.clock.sleep(self.sim.latency())
        try:
            order, events = self.sim.cancel(symbol, client_id, self.clock.now())
        except ExchangeError as error:
            if classify(error, sending=False).outcome is not Outcome.NOOP:
                raise
            logger.info("paper cancel: no live order symbol={} client_id={}", symbol, client_id)
            return None
        self.publish(events)
        if self.save_state:
            self._persist(f"cancel {client_id}")
        else:           # what `_save` does when nothing is saved (it cannot fail then)
            self._candles_since_persist = 0
        return order

    async def order_by_client_id(self, symbol: str, client_id: str) -> Order | None:
        return self.sim.order(symbol, client_id)

    async def open_orders(self, symbol: str) -> list[Order]:
        return self.sim.open_orders(symbol)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        self.sim.set_leverage(symbol, leverage)
        self._persist(f"leverage {symbol}")

    async def set_isolated_margin(self, symbol: str) -> None:
        """Nothing: the simulator margins every position on its own."""

    async def multi_assets_mode(self) -> bool:
        return False

    # --- account and market reads -------------------------------------------------------
    async def position(self, symbol: str) -> ExchangePosition:
        return self.sim.position(symbol)

    async def balance(self) -> Balance:
        return self.sim.balance()

    @property
    def balance_current(self) -> Callable[[Balance], bool]:
        """`balance_current(balance)`: whether `balance` (an answer of `balance()`) is still
        what it answers: the simulator knows when nothing moved it (trader/balance_keeper.py
        skips the read). The simulator's own method, no call of ours around it (the
        balance keeper asks every replayed candle)."""
        return self.sim.balance_current

    async def fills(self, symbol: str, since: datetime) -> list[Fill]:
        return self.sim.fills(symbol, since)

    async def klines(self, symbol: str, interval: str, start: datetime | None = None,
                     limit: int = 500) -> list[Candle]:
        """Candles fed so far (the paper exchange has no other history)."""
        seconds = INTERVAL_SECONDS.get(interval)
        wanted = timedelta(seconds=seconds) if seconds else None
        candles = [c for c in self._candles.get(symbol, ())
                   if (wanted is None or c.interval == wanted)
                   and (start is None or c.open_time >= start)]
        return candles[:limit] if start is not None else candles[-limit:]

    async def book_ticker(self, symbol: str) -> BookTicker:
        return self.sim.book(symbol)

    async def funding_rate(self, symbol: str) -> Decimal:
        return self.sim.funding_rate(symbol, self.clock.now())

    async def asset_price(self, asset: str) -> Decimal:
        """The simulator charges every fee in USDT: no other asset has a price here."""
        if asset == SETTLEMENT_ASSET:
            return Decimal(1)
        raise ExchangeError(0, f"the paper exchange charges fees in USDT, not {asset}")

    async def funding_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """None to read back: the simulator's funding events never go missing."""
        return []

    async def transfer_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """None: no money moves in or out of the simulated account."""
        return []

    def quote(self, symbol: str, max_age: timedelta) -> Quote | None:
        """The simulator's book and mark, stamped now (never stale); None before the first
        price of `symbol` (the simulator's -2010)."""
        now = self.clock.now()
        sim = self.sim
        mark = sim.prices.get(symbol)
        if mark is None:
            return None
        # A tick asks several times (mark, book, funding) at one moment and one price: the
        # quote made for its first read answers the others. Kept while the moment is equal,
        # the mark and the spread setting are the very same objects (not equal ones: 0.5 and
        # 0.50 are equal, but the quote carries the mark's own digits and its book is
        # rounded from them) and no funding rate or schedule changed (the funding book's
        # version).
        kept = self._quotes.get(symbol)
        funding = sim.funding
        spread = sim.config.spread
        if kept is not None and kept[1] is mark and kept[2] == now \
                and kept[3] == funding.version and kept[4] is spread:
            return kept[0]
        book = sim.book_at_mark(symbol, mark)      # == sim.book(symbol): its mark is `mark`
        quote = Quote(symbol, book.bid, book.ask, mark, funding.rate(symbol, now), now, book)
        self._quotes[symbol] = (quote, mark, now, funding.version, spread)
        return quote

    def pushed_book(self, symbol: str, max_age: timedelta) -> BookTicker | None:
        """The simulator's book, as `quote` gives it (never stale)."""
        quote = self.quote(symbol, max_age)
        return quote.book if quote is not None else None

    def pushed_mark(self, symbol: str, max_age: timedelta) -> Decimal | None:
        """The simulator's mark, as `quote` gives it (never stale); None before its first
        price."""
        quote = self.quote(symbol, max_age)
        return quote.mark if quote is not None else None

    def pushed_funding_rate(self, symbol: str, max_age: timedelta) -> Decimal | None:
        """The simulator's funding rate, as `quote` gives it."""
        quote = self.quote(symbol, max_age)
        return quote.funding_rate if quote is not None else None

    async def mark_price(self, symbol: str) -> Decimal:
        """The simulator's mark, as Binance's GET /fapi/v1/premiumIndex answers "markPrice"
        (https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
        rest-api/Mark-Price); before its first price the simulator's -2010."""
        return self.sim.mark_price(symbol)

    # --- push side ----------------------------------------------------------------------
    def drain_events(self) -> list[ExchangeEvent]:
        if not self._events:   # most ticks: nothing happened
            # and the waiting event is clear already: only `publish` sets it, as it adds
            # events, and only this method takes them, clearing it (no call to clear it)
            return []
        drained = list(self._events)
        self._events.clear()
        self._event_waiting.clear()
        return drained

    async def wait_for_event(self, timeout: float) -> bool:
        if self._events:
            return True
        try:
            await asyncio.wait_for(self._event_waiting.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def stream_live(self) -> bool:
        """`streaming`, under the name the tests switch it by (False: the stream is down)."""
        return self.streaming

    @stream_live.setter
    def stream_live(self, live: bool) -> None:
        self.streaming = live

    # --- internals ----------------------------------------------------------------------
    def publish(self, events: list[SimEvent]) -> None:
        """Push what the simulator did to the agent's event queue, as Binance's user-data
        stream would (also for what happens outside the agent: a stop cancelled by hand)."""
        if not events:
            return
        dropped = len(self._events) + len(events) - MAX_EVENTS
        if dropped > 0:
            logger.warning("paper event queue full, dropping oldest dropped={}", dropped)
        self._events.extend(events)
        self._event_waiting.set()

    def _save(self) -> None:
        """Save the simulator's state; raises SaveStateFailure."""
        self._candles_since_persist = 0
        if not self.save_state:
            return
        now = self.clock.now()
        changes = [(prefix, log, *log.pending()) for prefix, log in
                   ((ORDERS_PREFIX, self.history.orders), (FILLS_PREFIX, self.history.fills))]
        with self.store.transaction("paper state"):
            self.store.put_json(STATE_KEY, account_json(self.sim, self.history.live_orders), now)
            for prefix, _, written, deleted in changes:
                for number, text in written.items():
                    self.store.put_json(f"{prefix}{number:08d}", text, now)
                for number in deleted:
                    self.store.delete(f"{prefix}{number:08d}")
        # The exchange's own state is durable when its answer is given (a real exchange's
        # outlives our crash), and the logs below must not count rolled-back chunks as
        # saved: inside the engine's unit of work, committed here (storage/unit_of_work.py).
        self.store.commit_point("paper state")
        for _, log, written, deleted in changes:
            log.saved(written, deleted)

    def _saved_chunks(self, prefix: str) -> list[tuple[int, list[dict[str, Any]]]]:
        return [(int(key[len(prefix):]), self.store.get(key)) for key in self.store.keys(prefix)]

    def _persist(self, action: str) -> None:
        """Save after a mutating call. The action already happened in the simulator, so a
        failed save is reported as an unknown outcome: the engine then probes by client
        id, as it would after a timeout on Binance."""
        try:
            self._save()
        except SaveStateFailure as exc:
            logger.error("paper state not saved action={} error={}", action, exc)
            raise UnknownOutcome(f"paper state not saved after {action}: {exc}") from exc
