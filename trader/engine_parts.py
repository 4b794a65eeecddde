"""The engine's parts: its collaborators wired from the settings (the executor and the order
tracker, the exchange view, the guards, the journal, the interpreter with its policy, the
entry sender, the position keeper, housekeeping, the balance, the health checks), and their
state under the names the rest of the code reads (the positions, the guards' state, the
balance, the boundary's last error, the boot's flags) and sets (the operator's commands,
boot, backtests). `Engine` (trader/engine.py) is these parts plus the tick, the only code
that runs it."""

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from loguru import logger

from trader import guards
from trader.alerter import Alerter
from trader.balance_keeper import BalanceKeeper
from trader.breakers import Breakers
from trader.clock import Clock
from trader.close_readback import CloseReadback
from trader.closing import Finalizer
from trader.config import Settings
from trader.containment import Containment
from trader.domain import Balance
from trader.entry import HIGHER_TIMEFRAME
from trader.entry_sender import EntrySender
from trader.events import Policy
from trader.exchange.base import Exchange
from trader.exchange_actions import ActionRunner
from trader.exchange_health import ExchangeHealth
from trader.exchange_view import ExchangeView
from trader.executor import PROBE_GRACE, Executor
from trader.funding_backfill import FundingBackfill
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig, GuardState
from trader.housekeeping import Housekeeping
from trader.interpreter import Interpreter
from trader.management import TrailingDistance
from trader.margin_watch import MarginWatch
from trader.market.history import CandleHistory
from trader.observe import SymbolView
from trader.order_tracker import OrderTracker
from trader.position import Position
from trader.position_journal import PositionJournal
from trader.position_keeper import PositionKeeper
from trader.risk_state import RiskState
from trader.second_instance import SecondInstanceCheck
from trader.slow_answers import answer_bound
from trader.state_writes import StateWrites
from trader.strategy.base import Strategy
from trader.strategy.default import DefaultStrategy
from trader.strategy.regime import DEFAULT_THRESHOLDS
from trader.telemetry import Counters, ProtectionTelemetry
from trader.trade_store import TradeStore
from trader.transfer_backfill import TransferBackfill

T = TypeVar("T")
CANDLE_HISTORY = 1000    # enough for a 5x higher timeframe of a 120-candle warm-up


def new_history() -> CandleHistory:
    """A symbol's closed candles with the higher timeframe and the regime's true ranges
    kept up to date as candles close (trader/market/history.py)."""
    return CandleHistory(CANDLE_HISTORY, HIGHER_TIMEFRAME, DEFAULT_THRESHOLDS.lookback - 1)


class EngineParts:
    """The engine's collaborators and the state they hold; the engine's tick changes it."""

    def __init__(self, settings: Settings, exchange: Exchange, store: TradeStore, clock: Clock,
                 alerter: Alerter, strategy: Strategy | None = None) -> None:
        self.settings = settings
        self.symbols = list(settings.symbols)
        # Symbols not traded whose position a /close took over (`take_in`), ticked for its
        # protection and its close only until its record is closed (trader/engine.py
        # `tick_taken_over`); empty in nearly every tick.
        self.taken_over: list[str] = []
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.alerter = alerter
        self.counters = Counters()
        self.tracker = OrderTracker()
        self.executor = Executor(exchange, store, clock, self.tracker,
                                 recv_window=timedelta(milliseconds=settings.recv_window_ms))
        # Only a stream across a network can fall silent without closing; the paper
        # exchange's events come from its own simulator (trader/exchange_view.py).
        verify_every = timedelta(seconds=settings.stream_verify_seconds) \
            if exchange.name == "binance" else None
        self.view = ExchangeView(exchange, self.executor, self.tracker, clock, verify_every)
        self.guards = GuardBook(store, alerter, clock, self.counters, GuardConfig(
            breaker_minutes=settings.breaker_minutes, cooldown_minutes=settings.cooldown_minutes,
            spread_min_ticks=settings.spread_min_ticks))
        self.breakers = Breakers(self.guards)
        self.journal = PositionJournal(store, alerter, self.guards, clock, exchange.rules)
        self.boundary = Containment(self.guards, alerter, clock)
        self.writes = StateWrites(store, self.guards, self.journal, alerter, clock,
                                  settings.db_path, positions=lambda: self.positions)
        self.balance_keeper = BalanceKeeper(exchange, self.executor, store, clock, self.writes)
        self.journal.close_listeners.append(self.balance_keeper.mark_due)
        self.interpreter = Interpreter(
            ActionRunner(exchange, self.executor, self.tracker, clock,
                         self.balance_keeper.available_margin,
                         stop_backup_after=answer_bound(settings.stop_backup_after_seconds,
                                                        exchange)),
            Finalizer(exchange, self.executor, self.tracker, store, clock), self.journal,
            alerter, clock, Policy(debounce_seconds=settings.sentinel_debounce_seconds,
                                   debounce_cycles=settings.sentinel_debounce_cycles,
                                   breakeven_attempts=settings.breakeven_attempts,
                                   trigger_grace_seconds=settings.trigger_grace_seconds,
                                   trailing_distance=TrailingDistance.parse(
                                       settings.trailing_distance),
                                   placement_expiry_seconds=(self.executor.recv_window
                                                             + PROBE_GRACE).total_seconds()),
            ProtectionTelemetry(self.counters))
        self.candles: dict[str, CandleHistory] = {s: new_history() for s in self.symbols}
        self.margin = MarginWatch(exchange, alerter, clock, self.symbols)
        self.risk = RiskState(settings.risk_base, store, self.counters, clock, exchange)
        self.entries = EntrySender(settings, exchange, self.executor, store, self.interpreter,
                                   self.counters, clock, strategy or DefaultStrategy(),
                                   self.margin, self.risk, view=self.view)
        self.entries.desk.history = self.candles    # correlated heat reads every symbol's candles
        self.entries.maker.held = self._entries_held   # a hold or a breaker stops its quotes
        self.keeper = PositionKeeper(settings, exchange, self.executor, self.tracker, store,
                                     self.view, self.interpreter, self.entries, self.breakers,
                                     self.candles, alerter, clock, self.balance_keeper)
        self.exchange_health = ExchangeHealth(exchange, self.executor, alerter, clock,
                                              settings.tick_seconds)
        self.second_instance = SecondInstanceCheck(self.tracker, self.executor, self.guards,
                                                   alerter, clock)
        self.started_at = clock.now()
        self.stopping = False
        self.ticks = 0
        self.wakeup = asyncio.Event()
        self.resync_due = False   # the user-data stream came back: what it missed is re-read
        self.housekeeping = Housekeeping(settings, exchange, self.executor, store, alerter,
                                         clock, self.guards, self.candles, self.counters,
                                         self.boundary, self.tracker)
        exchange.on_stream_reconnect(self._stream_reconnected)
        self.funding_backfill = FundingBackfill(exchange, store, clock, self.symbols)
        self.transfer_backfill = TransferBackfill(exchange, self.risk, clock)
        self.close_readback = CloseReadback(exchange, self.executor, store, alerter, clock,
                                            self.guards)
        self.journal.close_listeners.append(self.close_readback.mark_due)

    # --- what the parts were handed to call back ----------------------------------------
    def _entries_held(self, symbol: str) -> str:
        return guards.entries_held(self.guards.state, symbol, self.clock.now()) \
            or self.housekeeping.entries_held(symbol) or self.margin.entry_refusal(symbol)

    def _stream_reconnected(self) -> None:
        logger.info("user-data stream back: symbol rules and orders are re-read over REST")
        self.tracker.invalidate()
        self.housekeeping.due_at.pop("rules", None)
        self.entries.leverage_set.clear()   # a change by hand in the gap went unheard
        self.resync_due = True

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
        """The open records, a symbol's not traded too: a close a /close took over and left
        under way is carried on (its symbol taken in at boot: trader/startup.py)."""
        self.interpreter.positions = {p.symbol: p for p in self.store.open_positions()}
        self.taken_over = [s for s in self.positions if s not in self.symbols]
        self.guards.load()
        logger.info("state loaded positions={} asleep={} paused={}", len(self.positions),
                    self.guard_state.asleep, self.guard_state.paused)

    # --- the collaborators' state under the names the rest of the code reads -----------
    @property
    def balance(self) -> Balance | None:
        return self.balance_keeper.balance

    @property
    def balance_at(self) -> datetime | None:
        return self.balance_keeper.read_at

    @balance_at.setter
    def balance_at(self, at: datetime | None) -> None:   # None: read again on the next tick
        self.balance_keeper.read_at = at

    @property
    def last_error(self) -> str | None:
        return self.boundary.last_error

    @property
    def fail_fast(self) -> bool:
        return self.boundary.fail_fast

    @fail_fast.setter
    def fail_fast(self, fail_fast: bool) -> None:   # backtests: trader/containment.py
        self.boundary.fail_fast = fail_fast

    @property
    def booted(self) -> bool:
        return self.second_instance.booted

    @booted.setter
    def booted(self, booted: bool) -> None:   # boot: trader/startup.py
        self.second_instance.booted = booted

    @property
    def known_orders(self) -> set[str]:
        return self.second_instance.known_orders

    @known_orders.setter
    def known_orders(self, client_ids: set[str]) -> None:   # boot: trader/startup.py
        self.second_instance.known_orders = client_ids

    # --- the collaborators' operations under the names commands and boot call -----------
    async def protect(self, position: Position, view: SymbolView,
                      notes: list[str] | None = None,
                      entry_in_reply: bool = False) -> Position | None:
        """Observe, step, manage: terminal detection first. None once it is closed
        (trader/position_keeper.py; `entry_in_reply`: a command's reply tells what the
        entry did)."""
        return await self.keeper.protect(position, view, notes, entry_in_reply)

    async def adopt(self, symbol: str, view: SymbolView, to_close: bool = False
                    ) -> Position | None:
        """A position the agent holds no record of, adopted and protected when the settings
        allow or a /close asks for it (trader/position_keeper.py)."""
        return await self.keeper.adopt(symbol, view, to_close)

    async def take_in(self, symbol: str) -> bool:
        """A symbol the agent does not trade, whose position a /close takes over to close
        it: its rules read from the exchange and an empty candle history (no regime), and
        it is ticked for its protection and its close only (never an entry) until its
        record is closed. False when the exchange does not list it."""
        if symbol not in self.candles:
            if not await self.exchange.learn_rules(symbol):
                return False
            self.candles[symbol] = new_history()
        if symbol not in self.symbols and symbol not in self.taken_over:
            self.taken_over.append(symbol)
            logger.info("symbol taken over to close its position symbol={}", symbol)
        return True

    async def sweep_orphans(self, symbol: str, position: Position | None) -> list[str]:
        """Cancel orders of ours that outlived their reason; one line each
        (trader/position_keeper.py)."""
        return await self.keeper.orphans.sweep(symbol, position)

    async def contained(self, what: str, work: Awaitable[T], symbol: str = "") -> T | None:
        """Run one unit of work (a symbol's tick, a command, a job) inside its boundary
        (trader/containment.py); None when it failed, `last_error` says why."""
        return await self.boundary.contained(what, work, symbol)

    # --- equity and uptime -----------------------------------------------------------
    def record_equity(self) -> None:
        """Equity snapshot at most once a minute of engine time (chart, risk fraction)."""
        self.balance_keeper.record_equity()

    def equity(self) -> Decimal:
        return self.balance_keeper.equity()

    def uptime(self, now: datetime) -> timedelta:
        return now - self.started_at
