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
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from loguru import logger

from storage import SaveStateFailure
from trader import guards, protection
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.breakers import Breakers
from trader.clock import Clock
from trader.closing import Finalizer
from trader.config import Settings
from trader.domain import Balance, Candle, CloseReason, OrderRole, Side
from trader.entry import HIGHER_TIMEFRAME
from trader.entry_sender import EntrySender
from trader.events import (
    CloseRequested,
    EntryFilled,
    LegSeen,
    Policy,
    PositionGone,
    PositionSizeChanged,
    Tick,
)
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.exchange_actions import ActionRunner
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.guard_book import GuardBook
from trader.guards import GuardConfig, GuardState
from trader.housekeeping import Housekeeping
from trader.interpreter import Interpreter
from trader.management import TrailingDistance, trail_atr
from trader.market.history import CandleHistory
from trader.observe import SymbolView, observe
from trader.order_tracker import OrderTracker
from trader.position import Position, PositionState
from trader.position_journal import PositionJournal
from trader.reconcile import adopted_position, recover_key, reduction_cause
from trader.strategy.base import Strategy
from trader.strategy.default import DefaultStrategy
from trader.strategy.regime import DEFAULT_THRESHOLDS
from trader.telemetry import Counters
from trader.trade_store import TradeStore

T = TypeVar("T")
CANDLE_HISTORY = 1000    # enough for a 5x higher timeframe of a 120-candle warm-up
IDS_KEPT_UNBOOTED = 2000  # client ids kept for the second-instance check before boot


def new_history() -> CandleHistory:
    """A symbol's closed candles with the higher timeframe and the regime's true ranges
    kept up to date as candles close (trader/market/history.py)."""
    return CandleHistory(CANDLE_HISTORY, HIGHER_TIMEFRAME, DEFAULT_THRESHOLDS.lookback - 1)


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
            breaker_minutes=settings.breaker_minutes, cooldown_minutes=settings.cooldown_minutes,
            spread_min_ticks=settings.spread_min_ticks))
        self.breakers = Breakers(self.guards)
        self.journal = PositionJournal(store, alerter, self.guards, clock, exchange.rules)
        self.interpreter = Interpreter(
            ActionRunner(exchange, self.executor, self.tracker, clock, self._available_margin),
            Finalizer(exchange, self.executor, self.tracker, store, clock), self.journal,
            alerter, clock, Policy(debounce_seconds=settings.sentinel_debounce_seconds,
                                   debounce_cycles=settings.sentinel_debounce_cycles,
                                   breakeven_attempts=settings.breakeven_attempts,
                                   trailing_distance=TrailingDistance.parse(
                                       settings.trailing_distance)))
        self.candles: dict[str, CandleHistory] = {s: new_history() for s in self.symbols}
        self.entries = EntrySender(settings, exchange, self.executor, store, self.interpreter,
                                   self.counters, clock, strategy or DefaultStrategy(),
                                   view=self.view)
        self.entries.desk.history = self.candles    # correlated heat reads every symbol's candles
        self.balance: Balance | None = None
        self.balance_at: datetime | None = None
        self.started_at = clock.now()
        self.last_error: str | None = None
        # Backtests set it: an unexpected error ends the run instead of skipping the unit
        # (a replayed tick cannot be retried; a report over skipped ticks never happened).
        self.fail_fast = False
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
                                         self.contained, self.tracker)
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
        # The operator's commands (trader/control.py) set the guards here: even an unchanged
        # sleep/pause is their decision (trader/intent_keeper.py records it).
        self.guards.set(state, by_command=True)

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
        self.journal.record_funding(events, self.symbols)
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
        self._read_regime(symbol)
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
        history = self.candles[symbol]
        candles = history.closed()
        if position is None:
            if self.entry_allowed(symbol):
                await self.entries.maybe_enter(symbol, view, candles, self._account(),
                                               history.higher)
        elif position.state is PositionState.PROTECTED and self.entries.says_close(position, candles):
            await self.interpreter.apply(position, CloseRequested(CloseReason.SIGNAL_CLOSE))

    async def protect(self, position: Position, view: SymbolView,
                      notes: list[str] | None = None) -> Position | None:
        """Observe, step, manage: terminal detection first. None once it is closed."""
        if position.state is PositionState.ENTERING or self.entries.entry_working(position, view):
            position = await self._resolve_entry(position, view, notes)   # + maker quotes
            if position.state is PositionState.CLOSED:
                return None
        for event in observe(position, view):
            if isinstance(event, LegSeen) and protection.confirms(position, event):
                continue        # nothing new about a steady leg: its step would be a no-op
            if isinstance(event, PositionSizeChanged) and event.quantity < position.quantity:
                event = replace(event, cause=await self._who_reduced(position))
            position = await self.interpreter.apply(position, event, notes)
            if position.state is PositionState.CLOSED:
                return None
        tick = Tick(self.clock.now(), view.mark or None, self.exchange.rules(position.symbol),
                    self.breakers.regime(position.symbol, self.candles[position.symbol]),
                    atr=self._trail_atr(position.symbol))
        position = await self.interpreter.apply(position, tick, notes)
        return None if position.state is PositionState.CLOSED else position

    def _trail_atr(self, symbol: str) -> Decimal | None:
        """ATR(14) for an ATR trailing distance (TRADEBOT_TRAILING_DISTANCE=1.5atr), else None."""
        if not self.interpreter.policy.trailing_distance.in_atr:
            return None
        return trail_atr(self.candles[symbol].closed())

    async def _resolve_entry(self, position: Position, view: SymbolView,
                             notes: list[str] | None) -> Position:
        """The entry whose answer was lost: filled, failed or still unknown. Filled while the
        exchange holds nothing on our side means it was opened and closed while nobody
        watched (a restart): confirmed by a fresh read, it is finalized, never protected
        (protecting it would send its legs again). A maker-first entry's quotes move on
        here too, open or not (trader/maker_quoter.py)."""
        position, event = await self.entries.resolve(position, view)
        if isinstance(event, EntryFilled) and view.position.side is not position.side:
            fresh = await self.view.view(position.symbol, fresh=True)
            if fresh.position.side is not position.side:
                event = PositionGone(entry=event)
        return position if event is None else await self.interpreter.apply(position, event,
                                                                            notes)

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
            time_limit=timedelta(minutes=self.settings.time_in_trade_minutes),
            cooldown=timedelta(minutes=self.settings.cooldown_minutes))
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
        except Exception as exc:  # the boundary: log with traceback, alert, go on
            if self.fail_fast:
                raise     # a backtest: it ends with one line (trader/backtest.py)
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

    def _available_margin(self) -> Decimal | None:
        """The available balance as last read (a leg's margin estimate: trader/risk.py)."""
        return self.balance.available if self.balance is not None else None

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
            if len(self.known_orders) + len(self.executor.placed) > IDS_KEPT_UNBOOTED:
                self._forget_unbooted_ids()
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

    def _forget_unbooted_ids(self) -> None:
        """Before boot (a backtest never boots) the check does not run and boot starts the
        known ids afresh: ids the tracker no longer knows (finished long ago) need not be
        kept, or a year's replay would keep every client id it ever placed."""
        self.known_orders = {cid for cid in self.known_orders if self.tracker.get(cid)}
        self.executor.placed = {cid for cid in self.executor.placed if self.tracker.get(cid)}

    # --- guards -------------------------------------------------------------------
    async def _run_breakers(self, symbol: str, view: SymbolView) -> None:
        book = await self.view.book(symbol)
        self.breakers.check(symbol, book, self.exchange.rules(symbol).tick_size,
                            self.candles[symbol], view.at)

    def _read_regime(self, symbol: str) -> None:
        """The `regime_state` gauge, every tick for every symbol (asleep too): the regime of
        the last closed candle, read once per candle (trader/breakers.py); "" until enough
        candles."""
        regime = self.breakers.regime(symbol, self.candles[symbol])
        self.counters.set(symbol, "regime_state", regime.value if regime else "")

    def entry_allowed(self, symbol: str) -> bool:
        reason = self.entry_refusal(symbol)
        if reason:
            logger.debug("entry blocked symbol={} reason={}", symbol, reason)
        return not reason

    def entry_refusal(self, symbol: str) -> str:
        """Why no new entry on `symbol` is allowed now; "" when one is."""
        if self.stopping:
            return "the agent is stopping"
        if self.executor.circuit_open():
            return "the exchange rate-limited us; requests are paused"
        if self.executor.symbol_throttled(symbol):
            return f"{symbol} is throttled after an order rejection"
        if self.housekeeping.entries_blocked(symbol):
            return f"{symbol}: market data stale or symbol not trading"
        return guards.allow_entry(self.guard_state, symbol, self.clock.now())[1]

    # --- operations for commands ---------------------------------------------------
    async def close(self, symbol: str, reason: CloseReason) -> list[str]:
        """Close one position at market now (/close, /shutdown flatten); what was done."""
        position = self.positions.get(symbol)
        if position is None:
            return [f"{symbol}: no open position"]
        notes: list[str] = []
        await self.interpreter.apply(position, CloseRequested(reason), notes)
        return notes

    async def enter_by_hand(self, symbol: str, side: Side, reason: str) -> Position | str:
        """/long, /short: one entry now on a flat `symbol` the guards allow, planned and
        protected like a signal's (trader/entry_sender.py). The position, or why not."""
        if symbol in self.positions:
            return f"{symbol} already has an open position; /close it first"
        refusal = self.entry_refusal(symbol)
        if refusal:
            return refusal
        view = await self.view.view(symbol, fresh=True)
        if view.position.side is not None:
            return "the exchange holds a position the agent does not track yet; the next tick adopts it"
        return await self.entries.enter_by_hand(symbol, side, view, list(self.candles[symbol]),
                                                self._account(), reason)

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
