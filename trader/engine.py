"""The engine: the single writer of trading state, and the tick in the order that matters.

One tick, per symbol, in this order (finalization first):
  1. view       the exchange's side of the symbol: the order tracker while the user-data
                stream is trusted, a REST snapshot otherwise (trader/exchange_view.py)
  2. observe    compare the record with the view; terminal detection first: a position gone
                on the exchange is finalized and nothing else runs (trader/observe.py)
  3. step       every event goes through `trader.lifecycle.step`, the only code that changes
                a position; the interpreter performs its actions and feeds their results back
                (trader/interpreter.py); each step is one transaction
  4. manage     a Tick event: protection timers, breakeven, trailing stop, time exit
  5. guards     breakers and cooldowns (entries only, never exits)
  6. entry      signal -> regime -> sizing -> entry order -> its fill -> legs (trader/entry.py)

Operator commands wait on a queue and run between ticks (trader/control.py); the periodic
duties are in trader/housekeeping.py, boot and periodic reconciliation in trader/startup.py.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from loguru import logger

from storage import SaveStateFailure
from trader import guards
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.breakers import Breakers
from trader.clock import Clock
from trader.closing import Finalizer
from trader.config import Settings
from trader.domain import Balance, Candle, CloseReason, OrderRole
from trader.entry_sender import EntrySender
from trader.events import CloseRequested, Policy, PositionSizeChanged, Tick
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.exchange_actions import ActionRunner
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.guard_book import GuardBook
from trader.guards import GuardConfig, GuardState
from trader.housekeeping import Housekeeping
from trader.interpreter import Interpreter
from trader.observe import SymbolView, observe
from trader.order_tracker import OrderTracker
from trader.position import Position, PositionState
from trader.position_journal import PositionJournal
from trader.reconcile import adopted_position, recover_key, reduction_cause
from trader.strategy.base import Strategy
from trader.strategy.default import DefaultStrategy
from trader.telemetry import Counters
from trader.trade_store import TradeStore

T = TypeVar("T")
CANDLE_HISTORY = 1000    # enough for a 5x higher timeframe of a 120-candle warm-up


class Engine:
    """Owns positions, guards and the command queue; the only task that mutates them."""

    def __init__(self, settings: Settings, exchange: Exchange, store: TradeStore, clock: Clock,
                 alerter: Alerter, strategy: Strategy | None = None) -> None:
        self.settings = settings
        self.symbols = list(settings.symbols)
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.alerter = alerter
        self.counters = Counters()
        self.executor = Executor(exchange, store, clock,
                                 recv_window=timedelta(milliseconds=settings.recv_window_ms))
        self.tracker = OrderTracker()
        self.view = ExchangeView(exchange, self.executor, self.tracker, clock)
        self.guards = GuardBook(store, alerter, clock, self.counters, GuardConfig(
            breaker_minutes=settings.breaker_minutes, cooldown_minutes=settings.cooldown_minutes))
        self.breakers = Breakers(self.guards)
        self.journal = PositionJournal(store, alerter, self.guards, clock)
        self.interpreter = Interpreter(
            ActionRunner(exchange, self.executor, self.tracker, clock),
            Finalizer(exchange, self.executor, self.tracker, store, clock), self.journal,
            alerter, clock, Policy(debounce_seconds=settings.sentinel_debounce_seconds,
                                   debounce_cycles=settings.sentinel_debounce_cycles,
                                   breakeven_attempts=settings.breakeven_attempts))
        self.candles: dict[str, deque[Candle]] = {s: deque(maxlen=CANDLE_HISTORY) for s in self.symbols}
        self.entries = EntrySender(settings, exchange, self.executor, store, self.interpreter,
                                   self.counters, clock, strategy or DefaultStrategy())
        self.balance: Balance | None = None
        self.balance_at: datetime | None = None
        self.started_at = clock.now()
        self.last_error: str | None = None
        self.stopping = False
        self.ticks = 0
        self.wakeup = asyncio.Event()
        self.booted = False
        self.known_orders: set[str] = set()
        self.last_equity_at: datetime | None = None
        self.circuit_alerted: datetime | None = None
        self.resync_due = False   # the user-data stream came back: what it missed is re-read
        self.housekeeping = Housekeeping(settings, exchange, self.executor, store, alerter,
                                         clock, self.guards, self.candles, self.counters,
                                         self.contained)
        exchange.on_stream_reconnect(self._stream_reconnected)

    # --- state kept across restarts ---------------------------------------------------
    @property
    def positions(self) -> dict[str, Position]:
        return self.interpreter.positions

    @property
    def guard_state(self) -> GuardState:
        return self.guards.state

    @guard_state.setter
    def guard_state(self, state: GuardState) -> None:
        self.guards.set(state)

    def load_state(self) -> None:
        self.interpreter.positions = {p.symbol: p for p in self.store.open_positions()
                                      if p.symbol in self.symbols}
        self.guards.load()
        logger.info("state loaded positions={} asleep={} paused={}", len(self.positions),
                    self.guard_state.asleep, self.guard_state.paused)

    def persist(self, write, what: str) -> bool:  # type: ignore[no-untyped-def]
        """Run one write; a failure is counted by the store's write health (reported by
        `check_write_health`: SAVE_STATE_FAILURE, entries blocked) and the tick goes on."""
        try:
            write()
        except SaveStateFailure as exc:
            logger.error("state not saved what={} error={}", what, exc)
            self.check_write_health()
            return False
        return True

    def check_write_health(self) -> None:
        """Report what the storage gate saw: every failed write (outbox, intents, orders,
        fills, positions, guards, events, state) raises SAVE_STATE_FAILURE within one tick."""
        health = self.store.health
        if health.take_alert():
            self.guards.set(guards.set_save_failure(self.guard_state, True))
            self.journal.report_save_failure(health, self.positions, self.settings.db_path)
        if health.take_recovery():
            self.guards.set(guards.set_save_failure(self.guard_state, False))
            self.alerter.publish(Alert(AlertName.SAVE_STATE_RECOVERED,
                                       "database writes work again; entries allowed"),
                                 self.clock.now())

    # --- feed ---------------------------------------------------------------------
    def on_candle(self, candle: Candle) -> None:
        history = self.candles.get(candle.symbol)
        if history is None or not candle.closed:
            return
        if history and candle.open_time <= history[-1].open_time:
            return
        history.append(candle)
        self.housekeeping.on_candle(candle)

    # --- the tick -----------------------------------------------------------------
    async def tick(self) -> None:
        """One pass over every symbol, then guards, housekeeping and the health reports.

        Each unit of work runs inside its own boundary (`contained`): one symbol's failure
        skips that symbol for this tick and never reaches the loop. While the exchange's
        rate-limit circuit is open nothing is asked of it.
        """
        self.ticks += 1
        self._watch_circuit()
        events = self.exchange.drain_events()
        self.view.on_events(events)
        self.journal.record_stream_fills(events, self.symbols)
        if not self.executor.circuit_open():
            await self.contained("balance", self._refresh_balance_if_due(bool(events)))
            for symbol in self.symbols:
                await self.contained(f"tick {symbol}", self.tick_symbol(symbol), symbol)
        self._watch_circuit()
        self.guards.apply(guards.expire, self.clock.now())
        await self.housekeeping.run(self.positions, self.balance)
        self._report_rules_changes()
        if self.store.health.failing:
            # While the database is failing, try one small write per tick to see it recover.
            self.persist(lambda: self.store.put("last_tick", self.clock.now(), self.clock.now()),
                         "tick marker")
        self.check_write_health()

    async def tick_symbol(self, symbol: str) -> None:
        view = await self.view.view(symbol)
        self._check_second_instance(symbol)
        self.guards.apply(guards.record_api_result, True, view.at, self.guards.config)
        position = self.positions.get(symbol)
        if position is None and view.position.side is not None:
            await self.adopt(symbol, view)
            return
        if position is not None:
            position = await self.protect(position, view)
        await self.sweep_orphans(symbol, position)
        if self.guard_state.asleep:
            return                        # asleep: nothing but protection runs
        await self._run_breakers(symbol, view)
        candles = list(self.candles[symbol])
        if position is None:
            if self.entry_allowed(symbol):
                await self.entries.maybe_enter(symbol, view, candles, self._account())
        elif position.state is PositionState.PROTECTED and self.entries.says_close(position, candles):
            await self.interpreter.apply(position, CloseRequested(CloseReason.SIGNAL_CLOSE))

    async def protect(self, position: Position, view: SymbolView,
                      notes: list[str] | None = None) -> Position | None:
        """Observe, step, manage: terminal detection first. None once it is closed."""
        if position.state is PositionState.ENTERING:
            position = await self.entries.resolve(position)
        for event in observe(position, view):
            if isinstance(event, PositionSizeChanged) and event.quantity < position.quantity:
                event = replace(event, cause=await self._who_reduced(position))
            position = await self.interpreter.apply(position, event, notes)
            if position.state is PositionState.CLOSED:
                return None
        tick = Tick(self.clock.now(), view.mark or None, self.exchange.rules(position.symbol))
        position = await self.interpreter.apply(position, tick, notes)
        return None if position.state is PositionState.CLOSED else position

    async def adopt(self, symbol: str, view: SymbolView) -> Position | None:
        """A position the agent holds no record of (a lost database, or opened by hand)."""
        if not self.settings.adopt_positions:
            logger.warning("untracked position left alone symbol={} qty={}", symbol,
                           view.position.quantity)
            return None
        journaled = self.store.fills(symbol)
        key, seq = recover_key(symbol, self.tracker.ours_live(symbol), journaled)
        known = self.store.position(symbol, key) if key else None
        position = adopted_position(
            view, self.exchange.rules(symbol), self.clock.now(), key=key, seq=seq, known=known,
            leverage=self.settings.leverage,
            time_limit=timedelta(minutes=self.settings.time_in_trade_minutes))
        ours = key is not None
        self.interpreter.adopt(position)
        if ours:
            text = (f"{symbol}: picked up its own {position.side.label} {position.quantity} "
                    f"({position.key}) again; protecting it")
            alert = Alert(AlertName.STARTUP, text, symbol, dedup_key=f"adopted:{position.key}")
        else:
            text = (f"{symbol}: a {position.side.label} {position.quantity} the agent did not "
                    "open is on the exchange: adopted and protected (1 % stop, 1.5 % target)")
            alert = Alert(AlertName.RECONCILE_MISMATCH, text, symbol,
                          dedup_key=f"adopted:{position.key}")
        self.alerter.publish(alert, self.clock.now())
        return await self.protect(position, view)

    async def _who_reduced(self, position: Position) -> str:
        """Who made the position smaller: the exchange (ADL, liquidation), a partial fill of
        its own stop or take-profit, or somebody else (by hand). "" when unknown."""
        try:
            fills = await self.executor.read(self.exchange.fills, position.symbol,
                                             position.opened_at)
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("fills unavailable to explain a size change error={}", exc)
            return "outside the agent"
        return reduction_cause(position, fills)

    async def sweep_orphans(self, symbol: str, position: Position | None) -> list[str]:
        """No order of ours outlives its reason: on a flat symbol every one is a leftover (a
        take-profit would act on the next position); on an open one, anything its legs no
        longer reference (a superseded stop whose cancel failed)."""
        wanted: set[str | None] = set()
        if position is not None:
            if position.state is PositionState.ENTERING:
                return []
            for leg in position.legs:
                wanted |= {leg.pending, leg.order.client_id if leg.order else None}
        lines = []
        for order in self.tracker.ours_live(symbol):
            if order.client_id in wanted or (position is not None and order.role is
                                             OrderRole.ENTRY and position.owns(order.client_id)):
                continue   # a leg, or the rest of this position's own entry
            final = await self.executor.cancel_and_verify(symbol, order.client_id)
            if final is not None:
                self.tracker.on_order(final, self.clock.now())
            else:
                self.tracker.on_missing(order.client_id, self.clock.now())
            line = (f"{symbol}: leftover order {order.client_id} cancelled -> "
                    f"{final.status.value if final else 'gone'}")
            logger.warning("{}", line)
            lines.append(line)
        return lines

    # --- boundaries ------------------------------------------------------------------
    async def contained(self, what: str, work: Awaitable[T], symbol: str = "") -> T | None:
        """Run one unit of work (a symbol's tick, a command, a job); what escapes it is
        logged, counted and alerted here and goes no further. None when it failed."""
        try:
            return await work
        except (ExchangeError, UnknownOutcome) as exc:
            # Expected trouble (the exchange said no, or did not answer): no fresh view this
            # tick for this unit; the API-failure breaker counts streaks.
            self._record_failure(what, exc, symbol)
        except Exception as exc:  # noqa: BLE001 - the boundary: log with traceback, alert, go on
            logger.opt(exception=exc).error("unexpected error in {} symbol={}", what,
                                            symbol or "-")
            self._record_failure(what, exc, symbol)
            self.alerter.publish(Alert(
                AlertName.ERROR, f"{what}: unexpected error {type(exc).__name__}: {exc}; "
                "skipped this time, protection keeps running", symbol,
                dedup_key=f"error:{what}:{type(exc).__name__}"), self.clock.now())
        return None

    def _record_failure(self, what: str, exc: BaseException, symbol: str) -> None:
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"
        logger.error("failed what={} symbol={} error={}", what, symbol or "-", exc)
        if isinstance(exc, ExchangeError | UnknownOutcome):
            self.guards.apply(guards.record_api_result, False, self.clock.now(),
                              self.guards.config)

    # --- account, circuit, rules ------------------------------------------------------
    async def _refresh_balance_if_due(self, account_events: bool) -> None:
        now = self.clock.now()
        every = timedelta(seconds=60 if self.exchange.streaming else 10)
        if account_events or self.balance_at is None or now - self.balance_at >= every:
            # the account endpoint is heavy (weight 5): read it when something happened
            self.balance_at = now
            self.balance = await self.executor.read(self.exchange.balance)
            self.entries.update_risk_fraction(self.balance, self.symbols)

    def _account(self):  # type: ignore[no-untyped-def]
        return self.entries.account(self.balance, self.positions.values())

    def _stream_reconnected(self) -> None:
        logger.info("user-data stream back: symbol rules and orders are re-read over REST")
        self.tracker.invalidate()
        self.housekeeping.last_run.pop("rules", None)
        self.resync_due = True

    def _watch_circuit(self) -> None:
        """API_CIRCUIT_OPEN when the exchange rate-limits us, an all-clear when it passes."""
        now = self.clock.now()
        circuit = self.exchange.circuit()
        if circuit.is_open(now) and circuit.opened_at != self.circuit_alerted:
            self.circuit_alerted = circuit.opened_at
            until = circuit.open_until
            assert until is not None
            self.alerter.publish(Alert(
                AlertName.API_CIRCUIT_OPEN, f"{circuit.reason}: no requests to the exchange "
                f"until {until:%H:%M:%S} UTC ({(until - now).total_seconds():.0f} s). Positions "
                "stay protected by their exchange-side orders.",
                dedup_key=f"circuit:{until.isoformat()}"), now)
        elif not circuit.is_open(now) and self.circuit_alerted is not None:
            self.circuit_alerted = None
            self.alerter.publish(Alert(AlertName.API_CIRCUIT_CLOSED,
                                       "rate-limit window over: requests to the exchange resume",
                                       dedup_key=f"circuit-closed:{now.isoformat()}"), now)

    def _report_rules_changes(self) -> None:
        changes, self.executor.rules_changes = self.executor.rules_changes, []
        for line in changes:
            self.alerter.publish(Alert(AlertName.SYMBOL_RULES, f"trading rules changed: {line}",
                                       line.split(":", 1)[0]), self.clock.now())

    def _check_second_instance(self, symbol: str) -> None:
        """An order with our prefix that this process neither placed nor found at boot means
        another instance trades the account (overlapping deploy): stop instead of fighting."""
        live = {o.client_id for o in self.tracker.ours_live(symbol)}
        if not self.booted:
            self.known_orders |= live
            return
        strangers = sorted(live - self.known_orders - self.executor.placed)
        if not strangers or self.guard_state.asleep:
            return
        logger.critical("second instance suspected symbol={} orders={}", symbol, strangers)
        self.guards.set(guards.sleep(self.guard_state))
        self.alerter.publish(Alert(
            AlertName.SECOND_INSTANCE, f"{symbol}: orders {', '.join(strangers)} carry this "
            "agent's prefix but were not placed by this process: another instance is trading "
            "this account. Trading stopped (asleep, protection only); stop the other instance, "
            "then /wake.", symbol), self.clock.now())

    # --- guards -------------------------------------------------------------------
    async def _run_breakers(self, symbol: str, view: SymbolView) -> None:
        book = await self.view.book(symbol)
        regime = self.breakers.check(symbol, book.spread_pct if book else None,
                                     list(self.candles[symbol]), view.at)
        if regime is not None:
            self.counters.set(symbol, "regime_state", regime)

    def entry_allowed(self, symbol: str) -> bool:
        if self.stopping or self.executor.circuit_open() or self.executor.symbol_throttled(symbol):
            return False
        if self.housekeeping.entries_blocked(symbol):   # stale market data, not TRADING
            return False
        allowed, reason = guards.allow_entry(self.guard_state, symbol, self.clock.now())
        if not allowed:
            logger.debug("entry blocked symbol={} reason={}", symbol, reason)
        return allowed

    # --- operations for commands ---------------------------------------------------
    async def close(self, symbol: str, reason: CloseReason) -> list[str]:
        """Close one position at market now (/close, /shutdown flatten); what was done."""
        position = self.positions.get(symbol)
        if position is None:
            return [f"{symbol}: no open position"]
        notes: list[str] = []
        await self.interpreter.apply(position, CloseRequested(reason), notes)
        return notes

    async def wait_next(self, stop: asyncio.Event, timeout: float) -> None:
        """Sleep until the next tick is due, an exchange event or a command arrives, or stop."""
        self.wakeup.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wakeup.wait()),
                   asyncio.ensure_future(self.exchange.wait_for_event(timeout))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def record_equity(self) -> None:
        """Equity snapshot at most once a minute of engine time (chart, risk fraction)."""
        if self.balance is None:
            return
        now = self.clock.now()
        if self.last_equity_at is not None and now - self.last_equity_at < timedelta(minutes=1):
            return
        self.last_equity_at = now
        balance = self.balance
        self.persist(lambda: self.store.record_equity(now, balance.equity, balance.wallet), "equity")

    def equity(self) -> Decimal:
        return self.balance.equity if self.balance else Decimal(0)

    def uptime(self, now: datetime) -> timedelta:
        return now - self.started_at
