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
                (2-4 for one position: trader/position_keeper.py)
  5. guards     breakers and cooldowns (entries only, never exits)
  6. entry      signal -> regime -> sizing -> entry order -> its fill -> legs (trader/entry.py)

Inside a Retry-After (the rate-limit circuit open) no symbol is ticked; only 2-3 run, on the
stream's view, for a position the user-data stream shows gone or of another size
(`_heard_in_ban`): its close, or the record taking the size, needs no request
(trader/closing.py, trader/position_keeper.py `follow_heard`).

Each symbol's tick runs inside its own boundary (trader/containment.py). Around the symbols:
the balance read when due (trader/balance_keeper.py), the rate-limit circuit and rules-change
alerts (trader/exchange_health.py), the second-instance check (trader/second_instance.py)
and the database's write health (trader/state_writes.py); these parts are wired in
trader/engine_parts.py. Operator commands wait on a queue and run between ticks
(trader/control.py); the periodic duties are in trader/housekeeping.py, boot and periodic
reconciliation in trader/startup.py.
"""

import asyncio
from collections.abc import Awaitable
from datetime import datetime

from loguru import logger

from trader import guards
from trader.domain import ZERO, Candle, CloseReason, ExchangePosition, Side
from trader.engine_parts import EngineParts
from trader.entry import Account
from trader.events import CloseRequested
from trader.exchange.base import Quote
from trader.margin_call import margin_call_alerts
from trader.observe import SymbolView
from trader.position import Position, PositionState

# Read once: a member read on its class goes through 3.11's `EnumType.__getattr__` (~900
# instructions), and an open position's tick compares with it every candle.
_PROTECTED = PositionState.PROTECTED


class Engine(EngineParts):
    """Owns positions, guards and the command queue; the only task that mutates them. Its
    collaborators, and their state under the names the rest of the code reads, are wired in
    trader/engine_parts.py; here the tick and the operations the commands ask for."""

    # --- feed ---------------------------------------------------------------------
    def on_candle(self, candle: Candle) -> None:
        history = self.candles.get(candle.symbol)
        if history is None or not candle.closed:
            return
        if history and candle.open_time <= history[-1].open_time:
            return
        history.append(candle)
        self.housekeeping.on_candle(candle)

    def warm_up(self, candle: Candle) -> None:
        """A candle from before a backtest's --from (trader/backtest_warmup.py): into the
        symbol's history, with the breakers that read the closed candles (crash, EXTREME
        regime) applied at its close as that candle's tick would have; no tick: nothing is
        traded, no balance read, no order sent, the feed watchdog not told."""
        history = self.candles.get(candle.symbol)
        if history is None or (history and candle.open_time <= history[-1].open_time):
            return
        history.append(candle)
        now = candle.close_time
        # no book before --from: the spread breaker waits for the window's first quote
        self.breakers.check(candle.symbol, None, ZERO, history, now)
        self.guards.expire(now)

    # --- the tick -----------------------------------------------------------------
    def tick(self) -> Awaitable[None]:
        """One pass over every symbol, then guards, housekeeping and the health reports, to
        await (`await engine.tick()`).

        One unit of work (storage/unit_of_work.py): its writes are committed before each
        order request leaves, whenever the tick waits, and at its end. Each part runs
        inside its own boundary (trader/containment.py): one symbol's failure skips that
        symbol for this tick. While the rate-limit circuit is open nothing is asked.
        A plain method handing out the unit's awaitable (a coroutine: `_tick` itself inside
        a replay batch, else the unit's): no coroutine of its own around it, every candle.
        """
        return self.store.unit.run(self._tick())     # Store.unit_of_work, one call less

    async def _tick(self) -> None:
        self.ticks += 1
        boundary = self.boundary
        exchange = self.exchange
        health = self.exchange_health
        # The collaborators' own first tests, inline (every tick, every replayed candle):
        # each skipped call would have returned at once, having changed nothing.
        # `ExchangeHealth.watch_circuit`: a closed circuit with no opening alerted.
        if exchange.circuit().open_until is not None or health.circuit_alerted is not None:
            health.watch_circuit(self.positions)
        events = exchange.drain_events()
        if events:
            self.view.on_events(events)
            self.journal.record_stream_fills(events, self.symbols)
            self.journal.record_funding(events, self.symbols)
            self.entries.on_leverage_changes(events)
            self.margin.on_events(events, self.positions.__contains__)
            self.risk.on_money_moved(events)     # before the balance read below shows it
            for alert in margin_call_alerts(events, self.symbols):
                self.alerter.publish(alert, self.clock.now())
        if not self.executor.circuit_open():
            if self.balance_keeper.due(bool(events)):
                try:
                    balance = await self.balance_keeper.refresh()
                    self.risk.update_fraction(balance, self.symbols)
                except Exception as exc:  # the balance read's boundary
                    if not boundary.failed("balance", exc):
                        raise     # a backtest ends here (Containment.fail_fast)
            for symbol in self.symbols:
                try:
                    await self.tick_symbol(symbol)
                except Exception as exc:  # the symbol's boundary: the next one still runs
                    if not boundary.failed(f"tick {symbol}", exc, symbol):
                        raise
            if self.taken_over:     # a /close of a symbol not traded under way: rarely
                await self.tick_taken_over()
        else:
            await self._heard_in_ban()
        if exchange.circuit().open_until is not None or health.circuit_alerted is not None:
            health.watch_circuit(self.positions)
        self.guards.expire(self.clock.now())
        await self.housekeeping.run(self.interpreter.positions, self.balance_keeper.balance)
        if health.rest_answers is not None:     # an exchange sending REST requests
            await health.watch_rest(self.positions, self.executor.circuit_open())
        if self.executor.rules_changes:     # `report_rules_changes`: none (nearly every tick)
            health.report_rules_changes()
        rewrites = self.store.unit.rewrites
        if rewrites.lost:   # what a failed or rolled-back write lost: storage/unit_of_work.py
            rewrites.write_again(boundary.failed)
        self.writes.after_tick()

    async def _heard_in_ban(self) -> None:
        """Inside a Retry-After no symbol is ticked (nothing may be sent), but a position the
        user-data stream says is gone (its stop or take-profit filled, closed by hand,
        liquidated) is closed now from what the stream told, and one it says is of another
        size (a partial fill of its stop, changed by hand) takes that size: /status and the
        phone must not show what is no longer held until an IP ban ends (2 minutes to 3
        days). Everything else waits for the window's end."""
        keeper = self.keeper
        for symbol, position in list(self.interpreter.positions.items()):
            if not position.state.open:
                continue        # an entry's outcome needs a read
            try:
                if keeper.unexplained and symbol in keeper.unexplained:
                    await keeper.tell_cause(position)  # from the fills the stream told
                view = self.view.streamed_view(symbol)
                if view is None or (view.position.side is position.side
                                    and view.position.size == position.quantity):
                    continue        # polling, or held as recorded: as it was
                await keeper.follow_heard(position, view)
            except Exception as exc:  # the symbol's boundary: the next one still runs
                if not self.boundary.failed(f"close heard {symbol}", exc, symbol):
                    raise

    async def tick_symbol(self, symbol: str) -> None:
        history = self.candles[symbol]
        # The `regime_state` gauge, every tick for every symbol (asleep too): the regime of
        # the last closed candle, read once per candle (trader/breakers.py); "" until enough.
        reading = self.breakers.reading(symbol, history)
        self.counters.set(symbol, "regime_state", reading.gauge)
        # The position and the pushed quote; the view is built from them when something
        # uses it (a flat tick only needs the position's side), with the tracker's orders
        # as they were here (nothing awaited in between). Over REST: the view itself. The
        # top of book of the same quote, None when the view came over REST or the tick
        # awaited before the breakers (read again then).
        view: SymbolView | None
        pushed = self.view.pushed_quote(symbol)
        position = self.interpreter.positions.get(symbol)
        if pushed is not None:
            seen, quote = pushed
            at, view, pushed_book = self.clock.now(), None, quote.book
        else:
            # A flat symbol with no record takes its mark only for an entry to plan
            # (`priced` below): premiumIndex's weight is not spent on every tick of it
            view = await self.view.view(symbol, priced=position is not None)
            seen, quote, at, pushed_book = view.position, None, view.at, None
        if self.second_instance.booted:     # else `check` does nothing (a backtest never boots)
            self.second_instance.check(symbol)
        guard_book = self.guards
        if guard_book.state.api_failures:   # else `record_api_success` has nothing to reset
            guard_book.record_api_success(at)
        position = self.interpreter.positions.get(symbol)    # the view may have awaited
        if position is not None or seen.side is not None or self.tracker.has_live(symbol):
            view = self._built(symbol, view, at, seen, quote)
            if position is None and seen.side is not None:
                await self.adopt(symbol, view)
                return
            keeper = self.keeper
            if position is not None:
                position = await keeper.protect(position, view)     # `Engine.protect`
                pushed_book = None            # it may have waited: the book is read again
            # else nothing to sweep: no live order (most flat ticks), or the legs and
            # orders the last sweep found clean (most in-position ticks): no coroutine
            if not keeper.orphans.nothing_to_sweep(symbol, position):
                await keeper.orphans.sweep(symbol, position)
                pushed_book = None
        if guard_book.state.asleep:
            return                        # asleep: nothing but protection runs
        # The entry breakers on the top of book (None: none this tick) and the closed
        # candles' reading (trader/breakers.py). A flat tick has awaited nothing since
        # the view: its quote's book is what `pushed_book` would read now.
        book = pushed_book or self.view.pushed_book(symbol) or await self.view.book(symbol)
        self.breakers.check(symbol, book, self.exchange.rules(symbol).tick_size, history,
                            at, reading)
        if position is None:
            # The desk asks the strategy once per closed candle: between two candles there
            # is nothing to decide, and no reason to read the guards and the account
            # (the account is built only for a signal to plan).
            if self.balance_keeper.balance is not None \
                    and self.entries.desk.would_ask(symbol, history) \
                    and self.entry_allowed(symbol):
                signal = self.entries.candle_signal(symbol, history)
                if signal is not None:      # most candles: none, and nothing to await
                    view = await self.view.priced(self._built(symbol, view, at, seen, quote))
                    await self.entries.enter_on_signal(symbol, signal, view, history.closed(),
                                                       self._account)
        elif position.state is _PROTECTED \
                and self.entries.says_close(position, history.closed()):
            await self.interpreter.apply(position, CloseRequested(CloseReason.SIGNAL_CLOSE))

    async def tick_taken_over(self) -> None:
        """The symbols not traded whose position a /close took over (`take_in`): their
        protection and their close only (a close refused for now sent again, one taken and
        not read back settled: trader/position_keeper.py), never the breakers, the strategy
        or an entry; dropped once their record is closed."""
        keeper = self.keeper
        for symbol in list(self.taken_over):
            position = self.interpreter.positions.get(symbol)
            try:
                if position is not None:
                    view = await self.view.view(symbol)
                    position = self.interpreter.positions.get(symbol)  # the view awaited
                    if position is not None:
                        position = await keeper.protect(position, view)
                if not keeper.orphans.nothing_to_sweep(symbol, position):
                    await keeper.orphans.sweep(symbol, position)
            except Exception as exc:  # the symbol's boundary: the next one still runs
                if not self.boundary.failed(f"tick {symbol}", exc, symbol):
                    raise
                continue
            if symbol not in self.interpreter.positions:
                self.taken_over.remove(symbol)
                logger.info("symbol taken over no longer ticked: its record is closed "
                            "symbol={}", symbol)

    def _built(self, symbol: str, view: SymbolView | None, at: datetime,
               seen: ExchangePosition, quote: Quote | None) -> SymbolView:
        """`view`, or, when the tick took none (`tick_symbol`), the one of the pushed
        `seen` position and `quote` at `at`."""
        if view is not None:
            return view
        assert quote is not None        # no view was taken: the pushed quote was read
        return self.view.view_of(symbol, at, seen, quote)

    # --- account ----------------------------------------------------------------------
    def _account(self) -> Account | None:
        return self.entries.account(self.balance, self.positions.values())

    # --- guards -------------------------------------------------------------------
    def entry_allowed(self, symbol: str) -> bool:
        reason = self.entry_refusal(symbol)
        if reason:
            logger.debug("entry blocked symbol={} reason={}", symbol, reason)
        return not reason

    def entry_refusal(self, symbol: str) -> str:
        """Why no new entry on `symbol` is allowed now; "" when one is."""
        if self.stopping:
            return "the agent is stopping"
        executor = self.executor
        if executor.circuit_open():
            return "the exchange rate-limited us; requests are paused"
        # Asked only when some symbol is throttled, or some is stale or not trading (nearly
        # never): `symbol_throttled` and `entries_blocked` answer False for none at all.
        if executor.throttled_until and executor.symbol_throttled(symbol):
            return f"{symbol} is throttled after an order rejection"
        housekeeping = self.housekeeping
        if (housekeeping.stale or housekeeping.untradable) \
                and housekeeping.entries_blocked(symbol):
            return f"{symbol}: market data stale or symbol not trading"
        leftover = self.keeper.orphans.leftover_refusal(symbol) \
            or self.margin.entry_refusal(symbol)
        if leftover:
            return leftover
        return guards.allow_entry(self.guards.state, symbol, self.clock.now())[1]

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
