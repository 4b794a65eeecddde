"""The engine: the single writer of trading state, and the tick in the order that matters.

One tick, per symbol, in this order (finalization first):
  1. observe           exchange snapshot (position, live orders, mark)
  2. terminal first    position gone on the exchange -> finalize, nothing else this tick
  3. protection        the sentinel keeps a stop-loss and a take-profit on the exchange
  4. management        partial take-profit, breakeven, trailing stop, time exit
  5. guards            breakers, cooldowns, pause/sleep (entries only, never exits)
  6. entry             signal -> regime -> sizing -> intent -> order -> confirm -> attach

Operator commands wait on a queue and run between ticks (see trader/control.py).
"""

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from loguru import logger

from storage import SaveStateFailure, Store
from trader import guards
from trader.alerts import Alert, Alerter, AlertName
from trader.clock import Clock
from trader.commands import Command, CommandResult
from trader.config import Settings
from trader.domain import CLIENT_ID_PREFIX, Balance, Candle, Position
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.executor import Executor
from trader.housekeeping import Housekeeping
from trader.lifecycle import Snapshot, is_terminal, resized
from trader.sentinel import Sentinel
from trader.strategy.base import Strategy
from trader.strategy.default import DefaultStrategy
from trader.telemetry import Counters
from trader.trading import Trading

T = TypeVar("T")
CANDLE_HISTORY = 1000    # enough for a 5x higher timeframe of a 120-candle warm-up
BALANCE_REFRESH = timedelta(seconds=10)


class Engine:
    """Owns positions, guards and the command queue; the only task that mutates them."""

    def __init__(self, settings: Settings, exchange: Exchange, store: Store, clock: Clock,
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
        self.sentinel = Sentinel(self.executor, alerter, clock, self.counters,
                                 debounce=timedelta(seconds=settings.sentinel_debounce_seconds),
                                 debounce_cycles=settings.sentinel_debounce_cycles)
        self.trading = Trading(self, strategy or DefaultStrategy())
        self.positions: dict[str, Position] = {}
        self.candles: dict[str, deque[Candle]] = {s: deque(maxlen=CANDLE_HISTORY) for s in self.symbols}
        self.snapshots: dict[str, Snapshot] = {}
        self.guard_config = guards.GuardConfig(breaker_minutes=settings.breaker_minutes,
                                               cooldown_minutes=settings.cooldown_minutes)
        self.guard_state = guards.GuardState()
        self.balance: Balance | None = None
        self.started_at = clock.now()
        self.last_error: str | None = None
        self.stopping = False
        self.commands: asyncio.Queue[tuple[Command, asyncio.Future[CommandResult]]] = asyncio.Queue()
        self.command_results: dict[str, CommandResult] = {}
        self.ticks = 0
        self.housekeeping = Housekeeping(self)
        self.wakeup = asyncio.Event()
        self.booted = False
        self.known_orders: set[str] = set()
        self.last_equity_at: datetime | None = None
        self.balance_at: datetime | None = None
        self.circuit_alerted: datetime | None = None
        self.resync_due = False   # the user-data stream came back: what it missed is re-read
        exchange.on_stream_reconnect(self._stream_reconnected)

    # --- state kept across restarts ---------------------------------------------------
    def load_state(self) -> None:
        self.positions = {p.symbol: p for p in self.store.open_positions() if p.symbol in self.symbols}
        raw = self.store.get("guards")
        if raw:
            self.guard_state = guards.load_state(raw)
        logger.info("state loaded positions={} asleep={} paused={}", len(self.positions),
                    self.guard_state.asleep, self.guard_state.paused)

    def save_guards(self, state: "guards.GuardState") -> None:
        """Persist a guard change; breakers and sleep mode survive restarts."""
        self.guard_state = state
        self.persist(lambda: self.store.put("guards", guards.dump_state(state), self.clock.now()),
                     "guards")

    def save_position(self, position: Position) -> None:
        if position.state.open or position.state.name == "ENTERING":
            self.positions[position.symbol] = position
        else:
            self.positions.pop(position.symbol, None)
        self.persist(lambda: self.store.save_position(position), f"position {position.symbol}")

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
            self._report_save_failure()
        if health.take_recovery():
            self.guard_state = guards.set_save_failure(self.guard_state, False)
            self.alerter.publish(Alert(AlertName.SAVE_STATE_RECOVERED,
                                       "database writes work again; entries allowed"),
                                 self.clock.now())

    def _report_save_failure(self) -> None:
        health = self.store.health
        self.guard_state = guards.set_save_failure(self.guard_state, True)
        last = health.last
        text = (f"could not save {last.what if last else 'state'}: "
                f"{last.cause if last else ''}. New entries blocked; open "
                "positions stay protected.")
        if health.in_a_row >= 3:
            text += f" {health.in_a_row} failures in a row: consider /shutdown."
        self.trading.write_emergency_backup()
        self.alerter.publish(Alert(AlertName.SAVE_STATE_FAILURE, text,
                                   dedup_key=f"save:{health.total_failures}"), self.clock.now())

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
        if not self.executor.circuit_open():
            await self.contained("balance", self._refresh_balance_if_due())
            for symbol in self.symbols:
                await self.contained(f"tick {symbol}", self.tick_symbol(symbol), symbol)
        self._watch_circuit()
        self._expire_guards()
        await self.housekeeping.run()
        self._report_rules_changes()
        if self.store.health.failing:
            # While the database is failing, try one small write per tick to see it recover.
            self.persist(lambda: self.store.put("last_tick", self.clock.now(), self.clock.now()),
                         "tick marker")
        self.check_write_health()

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

    async def _refresh_balance_if_due(self) -> None:
        events = self.exchange.drain_events()
        now = self.clock.now()
        if events or self.balance_at is None or now - self.balance_at >= BALANCE_REFRESH:
            # the account endpoint is heavy (weight 5): read it when something happened
            self.balance_at = now
            await self.trading.refresh_balance()
        self.trading.note_events(events)

    def _stream_reconnected(self) -> None:
        logger.info("user-data stream back: symbol rules and orders are re-read over REST")
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

    async def tick_symbol(self, symbol: str) -> None:
        if self.guard_state.asleep:
            await self.protect_only(symbol)   # asleep: nothing but protection runs
            return
        snap = await self.observe(symbol)
        position = self.positions.get(symbol)
        if position is not None:
            if await self.finalize_if_terminal(position, snap):
                return
            position = await self.protect_and_manage(position, snap)
            if position is None:
                return
        elif snap.position.side is not None:
            await self.adopt_untracked(symbol, snap)
            return
        else:
            await self.sweep_orphans(symbol, snap)
        await self.run_guards(symbol, snap)
        if position is None and self.entry_allowed(symbol):
            await self.trading.maybe_enter(symbol, snap)

    async def protect_only(self, symbol: str) -> None:
        """Terminal detection and protection, nothing else (boot, sleep mode)."""
        position = self.positions.get(symbol)
        snap = await self.observe(symbol)
        if position is None:
            if snap.position.side is None:
                await self.sweep_orphans(symbol, snap)
            return
        if await self.finalize_if_terminal(position, snap):
            return
        if position.state.name == "ENTERING":
            position = await self.trading.resolve_entry(position, snap)
            if position is None or position.state.name == "ENTERING":
                return
        result = await self.sentinel.protect(position, snap)
        if result.position != position:
            self.save_position(result.position)
        if result.flatten is not None:
            await self.trading.flatten(result.position, result.flatten)

    async def sweep_orphans(self, symbol: str, snap: Snapshot) -> None:
        """A flat symbol keeps no order of ours: a leftover take-profit or stop (a cancel that
        failed while finalizing, a crash in between) would act on the next position."""
        if not self.our_orders(snap):
            return
        from trader.reconcile import cancel_orphans
        for line in await cancel_orphans(self, symbol, None):
            logger.warning("leftover order on a flat symbol {}", line)

    async def adopt_untracked(self, symbol: str, snap: Snapshot) -> None:
        """A position we hold no record of (opened by hand, or a lost database)."""
        from trader.reconcile import adopt
        if not self.settings.adopt_positions:
            logger.warning("untracked position left alone symbol={} qty={}", symbol,
                           snap.position.quantity)
            return
        position = await adopt(self, symbol, snap)
        self.alerter.publish(Alert(AlertName.RECONCILE_MISMATCH, f"{symbol}: untracked "
                                   f"{position.side.label} {position.quantity} adopted; protecting it",
                                   symbol), self.clock.now())
        await self.protect_only(symbol)

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

    async def observe(self, symbol: str) -> Snapshot:
        read = self.executor.read
        exchange_position = await read(self.exchange.position, symbol)
        orders = await read(self.exchange.open_orders, symbol)
        mark = exchange_position.mark_price
        if not mark:
            mark = await self._book_mid(symbol)
        snap = Snapshot(symbol, self.clock.now(), exchange_position, orders, mark)
        self.snapshots[symbol] = snap
        self._check_second_instance(snap)
        self.guard_state, events = guards.record_api_result(self.guard_state, True, snap.at,
                                                            self.guard_config)
        self.publish_guard_events(events)
        return snap

    async def _book_mid(self, symbol: str) -> Decimal:
        try:
            return (await self.executor.read(self.exchange.book_ticker, symbol)).mid
        except ExchangeError as exc:
            if exc.code != -2010:   # the paper exchange before its first candle
                raise
            logger.info("no market price yet symbol={}", symbol)
            return Decimal(0)

    def _check_second_instance(self, snap: Snapshot) -> None:
        """An order with our prefix that this process neither placed nor found at boot means
        another instance trades the account (overlapping deploy): stop instead of fighting."""
        if not self.booted:
            self.known_orders.update(o.client_id for o in self.our_orders(snap))
            return
        strangers = [o.client_id for o in self.our_orders(snap)
                     if o.client_id not in self.known_orders
                     and o.client_id not in self.executor.placed]
        if not strangers or self.guard_state.asleep:
            return
        logger.critical("second instance suspected symbol={} orders={}", snap.symbol, strangers)
        self.save_guards(guards.sleep(self.guard_state))
        self.alerter.publish(Alert(
            AlertName.SECOND_INSTANCE, f"{snap.symbol}: orders {', '.join(strangers)} carry this "
            "agent's prefix but were not placed by this process: another instance is trading "
            "this account. Trading stopped (asleep, protection only); stop the other instance, "
            "then /wake.", snap.symbol), self.clock.now())

    async def finalize_if_terminal(self, position: Position, snap: Snapshot) -> bool:
        """Terminal detection first: a position gone on the exchange is finalized, nothing else."""
        if position.state.name == "ENTERING":
            return False
        if not is_terminal(position, snap):
            return False
        await self.trading.finalize(position, snap)
        return True

    async def protect_and_manage(self, position: Position, snap: Snapshot) -> Position | None:
        if position.state.name == "ENTERING":
            position = await self.trading.resolve_entry(position, snap)
            if position is None or position.state.name == "ENTERING":
                return position
        changed = resized(position, snap)
        if changed is not None:
            logger.warning("position size changed on the exchange symbol={} was={} now={}",
                           position.symbol, position.quantity, changed.quantity)
            if changed.quantity < position.quantity and position.state.open:
                await self.trading.describe_reduction(position, changed.quantity)
            self.save_position(changed)
            position = changed
        result = await self.sentinel.protect(position, snap)
        if result.position != position:
            self.save_position(result.position)
        position = result.position
        if result.flatten is not None:
            await self.trading.flatten(position, result.flatten)
            return None
        return await self.trading.manage(position, snap)

    # --- guards -------------------------------------------------------------------
    async def run_guards(self, symbol: str, snap: Snapshot) -> None:
        state, events = await self.trading.check_breakers(symbol, snap, self.guard_state)
        if state != self.guard_state:
            self.save_guards(state)
        self.publish_guard_events(events)

    def entry_allowed(self, symbol: str) -> bool:
        if self.stopping or self.executor.circuit_open() or self.executor.symbol_throttled(symbol):
            return False
        if self.housekeeping.entries_blocked(symbol):   # stale market data
            return False
        allowed, reason = guards.allow_entry(self.guard_state, symbol, self.clock.now())
        if not allowed:
            logger.debug("entry blocked symbol={} reason={}", symbol, reason)
        return allowed

    def _expire_guards(self) -> None:
        state, events = guards.expire(self.guard_state, self.clock.now())
        if state != self.guard_state:
            self.save_guards(state)
        self.publish_guard_events(events)

    def publish_guard_events(self, events: list["guards.GuardEvent"]) -> None:
        for event in events:
            name = AlertName.BREAKER_TRIPPED if event.kind == "tripped" else AlertName.BREAKER_CLEARED
            if event.name in ("pause",):
                name = AlertName.PAUSED if event.kind == "tripped" else AlertName.RESUMED
            self.alerter.publish(Alert(name, event.text, event.symbol,
                                       dedup_key=f"{event.kind}:{event.name}:{event.symbol}"),
                                 self.clock.now())
            self.counters.set(event.symbol or "*", "circuit_breaker_active",
                              int(event.kind == "tripped"))

    def _record_failure(self, what: str, exc: BaseException, symbol: str) -> None:
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"
        logger.error("failed what={} symbol={} error={}", what, symbol or "-", exc)
        if isinstance(exc, ExchangeError | UnknownOutcome):
            self.guard_state, events = guards.record_api_result(
                self.guard_state, False, self.clock.now(), self.guard_config)
            self.publish_guard_events(events)

    # --- commands (single writer) ---------------------------------------------------
    async def execute(self, command: Command) -> CommandResult:
        from trader.control import answer_query
        if not command.kind.mutating:
            return answer_query(self, command)
        if command.command_id in self.command_results:
            return replace(self.command_results[command.command_id], duplicate=True)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        await self.commands.put((command, future))
        self.wakeup.set()
        return await future

    async def process_commands(self) -> int:
        """Run queued operator commands (and a CLI request), each inside its own boundary:
        a command that fails answers what happened instead of silence."""
        from trader.control import run_command, take_cli_request
        await self.contained("cli request", take_cli_request(self))
        done = 0
        while not self.commands.empty():
            command, future = self.commands.get_nowait()
            if command.command_id in self.command_results:
                result = replace(self.command_results[command.command_id], duplicate=True)
            else:
                result = await self.contained(f"command {command.kind.value}",
                                              run_command(self, command), command.symbol or "")
                if result is None:
                    result = CommandResult(False, [
                        f"{command.kind.value} failed: {self.last_error}",
                        "open positions keep their exchange-side stop-loss and take-profit; "
                        "/status shows what is open; send the command again to retry"])
                self.command_results[command.command_id] = result
            if not future.done():
                future.set_result(result)
            done += 1
        return done

    def our_orders(self, snap: Snapshot) -> list:  # type: ignore[type-arg]
        return [o for o in snap.orders if o.client_id.startswith(CLIENT_ID_PREFIX + "-")]

    def equity(self) -> Decimal:
        return self.balance.equity if self.balance else Decimal(0)

    def uptime(self, now: datetime) -> timedelta:
        return now - self.started_at
