"""The engine's trading steps: entry, entry confirmation, management, flatten, finalize.

Each step decides with the pure modules (strategy, regime, risk, management, lifecycle)
and acts through the executor. Positions are saved after every change; a failed save
raises the SAVE_STATE_FAILURE path in the engine and protection goes on regardless.
"""

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from storage.codec import dump
from trader import guards, management
from trader.alerts import Alert, AlertName
from trader.domain import (
    ZERO,
    ClientId,
    CloseReason,
    IntentStatus,
    OrderRole,
    OrderStatus,
    Position,
    PositionState,
    exchange_close_reason,
    position_key,
)
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.exchange.errors import Outcome
from trader.intents import entry_intent, exit_intent
from trader.lifecycle import Snapshot, check_flatten, close_reason, closed, confirm_entry
from trader.risk import EntryPlan, SignalDecision, SizingInput, decide, plan_entry, risk_fraction
from trader.strategy.base import Strategy, aggregate, combine
from trader.strategy.regime import adjustment, read_regime

if TYPE_CHECKING:
    from trader.engine import Engine

FLATTEN_ATTEMPTS = 3
HIGHER_TIMEFRAME = 5      # the confirming timeframe, in trading candles (1m -> 5m)
TAKER_FEE = Decimal("0.0005")


class Trading:
    def __init__(self, engine: "Engine", strategy: Strategy) -> None:
        self.engine = engine
        self.strategy = strategy
        self.last_signal_candle: dict[str, object] = {}
        self.spreads: dict[str, list[Decimal]] = {}
        self.problems: list[str] = []   # what the last finalize could not do (reported)

    @property
    def now(self):  # type: ignore[no-untyped-def]
        return self.engine.clock.now()

    async def refresh_balance(self) -> None:
        engine = self.engine
        engine.balance = await engine.executor.read(engine.exchange.balance)
        risk = engine.store.get("risk", {})
        peak = max(Decimal(risk.get("peak", "0")), engine.balance.equity)
        current = Decimal(risk.get("fraction", str(engine.settings.risk_base)))
        fraction = risk_fraction(engine.balance.equity, peak, current, base=engine.settings.risk_base)
        if str(peak) != risk.get("peak") or str(fraction) != risk.get("fraction"):
            engine.persist(lambda: engine.store.put("risk", {"peak": str(peak), "fraction": str(fraction)},
                                                    self.now), "risk state")
        for symbol in engine.symbols:
            engine.counters.set(symbol, "risk_fraction_active", str(fraction))

    # --- entry --------------------------------------------------------------------
    async def maybe_enter(self, symbol: str, snap: Snapshot) -> None:
        engine = self.engine
        history = engine.candles[symbol]
        if len(history) < self.strategy.warmup or not history:
            return
        last = history[-1]
        if self.last_signal_candle.get(symbol) == last.open_time:
            return   # decide once per closed candle
        self.last_signal_candle[symbol] = last.open_time
        closed_candles = list(history)
        signal = self._confirmed_signal(closed_candles)
        decision, why = decide(snap.position.side, signal)
        if decision is not SignalDecision.OPEN or signal is None:
            if decision is SignalDecision.REFUSE:
                logger.warning("entry refused symbol={} reason={}", symbol, why)
            return
        plan = self._plan(symbol, snap, signal, closed_candles)
        if plan is None:
            return
        await self.enter(symbol, snap, signal, plan, last.open_time)

    def _confirmed_signal(self, closed_candles):  # type: ignore[no-untyped-def]
        """The trading timeframe's signal, unless the higher timeframe (5x) disagrees."""
        signal = self.strategy.signal(closed_candles)
        if signal is None:
            return None
        higher = aggregate(closed_candles, HIGHER_TIMEFRAME)
        if len(higher) < self.strategy.warmup:
            return signal
        combined = combine([signal, self.strategy.signal(higher)])
        if combined is None:
            logger.info("timeframes disagree, no entry symbol={}", closed_candles[-1].symbol)
        return combined

    def _plan(self, symbol, snap, signal, closed_candles) -> EntryPlan | None:  # type: ignore[no-untyped-def]
        engine = self.engine
        reading = read_regime(closed_candles)
        if reading is None:
            return None
        engine.counters.set(symbol, "regime_state", reading.regime.value)
        balance = engine.balance
        if balance is None:
            return None
        risk = engine.store.get("risk", {})
        open_risk = sum((p.risk_amount() for p in engine.positions.values()), ZERO)
        result = plan_entry(SizingInput(
            symbol=symbol, side=signal.side, price=snap.mark, equity=balance.equity,
            free_margin=balance.available,
            risk_fraction=Decimal(risk.get("fraction", str(engine.settings.risk_base))),
            signal=signal, regime=adjustment(reading), rules=engine.exchange.rules(symbol),
            leverage=engine.settings.leverage, open_risk=open_risk,
            max_heat=engine.settings.max_heat, max_position_pct=engine.settings.max_position_pct))
        if not isinstance(result, EntryPlan):
            logger.info("entry skipped symbol={} reason={}", symbol, result.reason)
            return None
        return result

    async def enter(self, symbol, snap, signal, plan: EntryPlan, candle_time) -> None:  # type: ignore[no-untyped-def]
        engine = self.engine
        position = Position(
            symbol=symbol, key=position_key(candle_time), side=signal.side,
            state=PositionState.ENTERING, quantity=plan.quantity, entry_price=snap.mark,
            leverage=engine.settings.leverage, opened_at=self.now, sl_price=plan.sl_price,
            tp_price=plan.tp_price, initial_quantity=plan.quantity, initial_sl_price=plan.sl_price,
            time_limit=min(signal.time_limit,
                           timedelta(minutes=engine.settings.time_in_trade_minutes)),
            cooldown=max(signal.cooldown, timedelta(minutes=engine.settings.cooldown_minutes)),
            trail_activation=signal.trail_activation)
        if await self._entry_already_sent(position):
            return
        position, intent = entry_intent(position, self.now)
        result = await engine.executor.submit(intent)
        if result.outcome is Outcome.UNKNOWN or result.ok:
            engine.save_position(position)
            engine.persist(lambda: engine.store.append_event(self.now, "entry_sent", symbol, {
                "client_id": intent.client_id, "side": signal.side.value, "qty": str(plan.quantity),
                "sl": str(plan.sl_price), "tp": str(plan.tp_price), "reason": signal.reason}), "event")
        if not result.ok:
            if result.outcome is not Outcome.UNKNOWN:
                logger.info("entry not placed symbol={} outcome={} reason={}", symbol,
                            result.outcome, result.reason)
            return
        fresh = await engine.observe(symbol)
        confirmed = await self.resolve_entry(position, fresh)
        if confirmed is not None and confirmed.state is PositionState.ATTACHING:
            await engine.protect_and_manage(confirmed, await engine.observe(symbol))

    async def _entry_already_sent(self, position: Position) -> bool:
        """A MARKET entry is filled at once, so Binance's duplicate-id check cannot help:
        ask for the deterministic id before sending (fresh disk, replayed signal)."""
        _, client_id = position.next_client_id(OrderRole.ENTRY)
        known = self.engine.store.intent(client_id)
        if known is not None:
            return True
        existing = await self.engine.executor.read(self.engine.exchange.order_by_client_id,
                                                   position.symbol, client_id)
        if existing is not None:
            logger.warning("entry already on the exchange, not re-sending client_id={}", client_id)
            return True
        return False

    async def resolve_entry(self, position: Position, snap: Snapshot) -> Position | None:
        """ENTERING: confirm by the exchange's position before any exit is attached."""
        engine = self.engine
        confirmed = confirm_entry(position, snap)
        if confirmed is not None:
            engine.save_position(confirmed)
            engine.alerter.publish(Alert(
                AlertName.FILL, f"{position.symbol}: {position.side.label} {confirmed.quantity} "
                f"filled at {confirmed.entry_price}; SL {position.sl_price}, TP {position.tp_price}",
                position.symbol, dedup_key=f"fill:{position.symbol}:{position.key}"), self.now)
            return confirmed
        intents = [i for i in engine.store.intents_for(position.symbol, position.key)
                   if i.role is OrderRole.ENTRY]
        pending = [i for i in intents if i.status is IntentStatus.SENT]
        for intent in pending:
            intent = await engine.executor.probe(intent)
        if any(i.status is IntentStatus.SENT for i in intents) and pending:
            still = [engine.store.intent(i.client_id) for i in pending]
            if any(i is not None and i.status is IntentStatus.SENT for i in still):
                return position   # outcome unknown: keep waiting, never re-send
        logger.info("entry never filled, dropping symbol={} key={}", position.symbol, position.key)
        abandoned = replace(position, state=PositionState.CLOSED, quantity=ZERO,
                            closed_at=self.now, close_reason=CloseReason.UNKNOWN)
        engine.save_position(abandoned)
        return None

    # --- management -----------------------------------------------------------------
    async def manage(self, position: Position, snap: Snapshot) -> Position | None:
        engine = self.engine
        if position.state is not PositionState.PROTECTED:
            return position
        if management.time_exit_due(position, self.now):
            await self.flatten(position, CloseReason.TIME_EXIT)
            return None
        if self._signal_says_close(position):
            await self.flatten(position, CloseReason.SIGNAL_CLOSE)
            return None
        rules = engine.exchange.rules(position.symbol)
        if not position.partial_taken and management.should_take_partial(position, snap.mark):
            position = await self._take_partial(position, rules)
        if position.partial_taken and not position.breakeven_done:
            moved = await self._move_to_breakeven(position, rules)
            if moved is None:
                return None
            position = moved
        trail = management.trailing_stop(position, snap.mark, rules)
        if trail is not None and position.sl_price is not None and _tighter(position, trail):
            if management.stop_crossed(position.side, trail, snap.mark):
                await self.flatten(position, CloseReason.TRAILING_STOP)
                return None
            return await self.replace_stop(position, trail, trailing=True)
        return position

    def _signal_says_close(self, position: Position) -> bool:
        """An opposite signal on an open position closes it; it never flips (no REVERSE)."""
        history = self.engine.candles[position.symbol]
        if len(history) < self.strategy.warmup or not history:
            return False
        last = history[-1]
        if self.last_signal_candle.get(position.symbol) == last.open_time:
            return False
        self.last_signal_candle[position.symbol] = last.open_time
        decision, why = decide(position.side, self.strategy.signal(list(history)))
        if decision is SignalDecision.CLOSE:
            logger.info("opposite signal closes symbol={} reason={}", position.symbol, why)
            return True
        return False

    async def _take_partial(self, position: Position, rules) -> Position:  # type: ignore[no-untyped-def]
        quantity = management.partial_quantity(position, rules)
        position = replace(position, partial_taken=True)
        if quantity <= 0:
            self.engine.save_position(position)
            return position
        position, intent = exit_intent(position, OrderRole.PARTIAL_TP, quantity, self.now)
        self.engine.save_position(position)
        result = await self.engine.executor.submit(intent)
        if result.ok:
            self.engine.counters.incr(position.symbol, "partial_fills_count")
            after = await self.engine.executor.read(self.engine.exchange.position, position.symbol)
            if after.side is position.side:
                position = replace(position, quantity=after.size)
                self.engine.save_position(position)
        return position

    async def _move_to_breakeven(self, position: Position, rules) -> Position | None:  # type: ignore[no-untyped-def]
        if position.breakeven_attempts >= self.engine.settings.breakeven_attempts:
            return position
        target = management.breakeven_price(position, TAKER_FEE, rules)
        position = replace(position, breakeven_attempts=position.breakeven_attempts + 1)
        moved = await self.replace_stop(position, target)
        if moved is None:
            return None
        if moved.sl_price == target:
            moved = replace(moved, breakeven_done=True)
        elif moved.breakeven_attempts >= self.engine.settings.breakeven_attempts:
            self.engine.alerter.publish(Alert(
                AlertName.PROTECTION, f"{position.symbol}: could not move the stop to breakeven "
                f"after {moved.breakeven_attempts} attempts; the original stop stays",
                position.symbol), self.now)
        self.engine.save_position(moved)
        return moved

    async def replace_stop(self, position: Position, price: Decimal, trailing: bool = False) -> Position | None:
        """Move the stop without ever leaving the position naked.

        Cancel -> verify -> act: the old stop is read first; if it already filled, the
        position is finalized and no new order is sent. Otherwise the new stop is placed and
        confirmed, and only then the old one is cancelled (and verified).
        Returns None when the position turned out to be closed.
        """
        engine = self.engine
        old = position.sl_client_id
        if old is not None:
            current = await engine.executor.read(engine.exchange.order_by_client_id,
                                                 position.symbol, old)
            if current is not None and current.status is OrderStatus.FILLED:
                logger.warning("stop filled before the move symbol={} client_id={}",
                               position.symbol, old)
                await self.finalize(position, await engine.observe(position.symbol))
                return None
        moved, intent = exit_intent(position, OrderRole.STOP_LOSS, position.quantity, self.now, price)
        engine.save_position(moved)
        result = await engine.executor.submit(intent)
        if not result.ok:
            logger.warning("stop move failed symbol={} target={} reason={}", position.symbol,
                           price, result.reason)
            return moved
        placed = await engine.executor.read(engine.exchange.order_by_client_id, position.symbol,
                                            intent.client_id)
        if placed is None or not placed.status.live:
            return moved
        if old is not None:
            previous = await engine.executor.cancel_and_verify(position.symbol, old)
            if previous is not None and previous.status is OrderStatus.FILLED:
                logger.warning("old stop filled during the move symbol={}", position.symbol)
                await self.finalize(moved, await engine.observe(position.symbol))
                return None   # finalize cancelled the new stop as a sibling
        moved = replace(moved, sl_client_id=intent.client_id, sl_price=price,
                        trailing_active=moved.trailing_active or trailing)
        engine.save_position(moved)
        return moved

    # --- closing ------------------------------------------------------------------
    async def flatten(self, position: Position, reason: CloseReason) -> list[str]:
        """Market reduce-only close, then post-market verify (rebalance a late flip)."""
        engine = self.engine
        report: list[str] = []
        position = replace(position, state=PositionState.CLOSING)
        engine.save_position(position)
        engine.persist(lambda: engine.store.put(f"closing:{position.symbol}", reason.value, self.now),
                       "closing reason")
        for _ in range(FLATTEN_ATTEMPTS):
            current = await engine.executor.read(engine.exchange.position, position.symbol)
            check = check_flatten(position.side, current)
            if check.done:
                break
            side_qty = check.remainder or check.flipped
            target = position if check.remainder else replace(position, side=position.side.opposite)
            target, intent = exit_intent(replace(target, quantity=side_qty), OrderRole.FLATTEN,
                                         side_qty, self.now)
            position = replace(position, seq=target.seq)
            engine.save_position(position)
            if check.flipped:
                engine.alerter.publish(Alert(AlertName.RECONCILE_MISMATCH,
                                             f"{position.symbol}: a late fill flipped the position "
                                             f"({check.flip_side} {check.flipped}); rebalancing "
                                             "reduce-only", position.symbol), self.now)
            result = await engine.executor.submit(intent)
            report.append(f"{position.symbol}: market close {side_qty} -> {result.outcome.value}")
        snap = await engine.observe(position.symbol)
        if snap.position.side is None:
            await self.finalize(position, snap, reason)
            report += [f"{position.symbol}: {line}" for line in self.problems]
        else:
            report.append(f"{position.symbol}: still open ({snap.position.quantity}) after "
                          f"{FLATTEN_ATTEMPTS} attempts; protection stays")
            engine.alerter.publish(Alert(AlertName.POSITION_UNPROTECTED, report[-1],
                                         position.symbol), self.now)
        return report

    async def finalize(self, position: Position, snap: Snapshot,
                       reason: CloseReason | None = None) -> Position:
        """Record the close, cancel siblings with verification, start the cooldown, alert.

        The close is recorded even when a sibling cannot be cancelled right now (the failure is
        reported in `self.problems`; the next tick's sweep cancels what is left on the flat
        symbol), so one failed request never leaves the record open or the process down.
        """
        engine = self.engine
        self.problems = []
        pending = reason or _pending_reason(engine, position.symbol)
        stop = await self._final_order(position, position.sl_client_id, "stop-loss")
        take = await self._final_order(position, position.tp_client_id, "take-profit")
        keep = {order.client_id for order in (stop, take) if order is not None}
        for order in engine.our_orders(snap):
            if order.client_id not in keep or order.status.live:
                await self._cancel_leftover(position.symbol, order.client_id, order.role)
        for intent in engine.store.intents_for(position.symbol, position.key):
            if not intent.status.resolved:
                await self._best_effort(f"refresh intent {intent.client_id}",
                                        engine.executor.refresh(position.symbol, intent.client_id))
        fills = await self._position_fills(position)
        why = close_reason(position, stop, take, pending, fills)
        final = closed(position, self.now, why, fills)
        engine.save_position(final)
        engine.sentinel.forget(position)
        loss = final.realized_pnl - final.fees < 0
        engine.save_guards(guards.start_cooldown(engine.guard_state, position.symbol, self.now, loss,
                                                 engine.guard_config, base=position.cooldown))
        engine.persist(lambda: engine.store.delete(f"closing:{position.symbol}"), "closing reason")
        engine.persist(lambda: engine.store.append_event(self.now, "position_closed", position.symbol,
                                                         {"reason": why.value, "pnl": str(final.realized_pnl),
                                                          "fees": str(final.fees)}), "event")
        self._alert_close(position, final, why)
        return final

    def _alert_close(self, position: Position, final: Position, why: CloseReason) -> None:
        net = final.realized_pnl - final.fees
        symbol = position.symbol
        if why.exchange_initiated:
            text = (f"{symbol}: {position.side.label} {position.quantity} closed BY THE EXCHANGE "
                    f"({why.value}) at {final.exit_price}; PnL {net:+.2f} USDT (fees "
                    f"{final.fees:.2f}). Check the account's margin before trading on.")
            name = AlertName.EXCHANGE_CLOSE
        else:
            text = (f"{symbol}: {position.side.label} closed ({why.value}) at "
                    f"{final.exit_price}; PnL {net:+.2f} USDT (fees {final.fees:.2f})")
            name = AlertName.CLOSE
        if self.problems:
            text += "\n" + "\n".join(self.problems)
        self.engine.alerter.publish(Alert(name, text, symbol,
                                          dedup_key=f"close:{symbol}:{position.key}"), self.now)

    async def _final_order(self, position: Position, client_id: str | None, what: str):  # type: ignore[no-untyped-def]
        if client_id is None:
            return None
        return await self._best_effort(f"read the {what} {client_id}",
                                       self.engine.executor.refresh(position.symbol, client_id))

    async def _cancel_leftover(self, symbol: str, client_id: str, role) -> None:  # type: ignore[no-untyped-def]
        what = {OrderRole.STOP_LOSS: "stop-loss", OrderRole.TAKE_PROFIT: "take-profit"}.get(
            role, "order")
        await self._best_effort(f"cancel the {what} {client_id}",
                                self.engine.executor.cancel_and_verify(symbol, client_id),
                                consequence="will retry on the next tick")

    async def _position_fills(self, position: Position) -> list:  # type: ignore[type-arg]
        """The position's fills from the exchange, journaled; the journal if it cannot answer."""
        engine = self.engine
        fills = await self._best_effort(
            "read the fills", engine.executor.read(engine.exchange.fills, position.symbol,
                                                   position.opened_at),
            consequence="PnL taken from the fills already journaled")
        if fills is None:
            return engine.store.fills(position.symbol, position.opened_at)
        for fill in fills:
            engine.persist(lambda fill=fill: engine.store.record_fill(fill), "fill")
        return fills

    async def _best_effort(self, what: str, work, consequence: str = ""):  # type: ignore[no-untyped-def]
        """One exchange step of a close that must not stop the close from being recorded."""
        try:
            return await work
        except (ExchangeError, UnknownOutcome) as exc:
            line = f"could not {what}: {exc}" + (f"; {consequence}" if consequence else "")
            logger.warning("finalize step failed {}", line)
            self.problems.append(line)
            return None

    def note_events(self, events: list) -> None:  # type: ignore[type-arg]
        """Journal the fills the user-data stream reported (liquidation fills included: their
        client id names who closed the position)."""
        engine = self.engine
        for event in events:
            fill = getattr(event, "fill", None)
            if fill is None or fill.symbol not in engine.candles:
                continue
            engine.persist(lambda fill=fill: engine.store.record_fill(fill), "fill")
            if exchange_close_reason(fill.client_id) is not None:
                logger.critical("exchange-initiated fill symbol={} client_id={} qty={} price={}",
                                fill.symbol, fill.client_id, fill.quantity, fill.price)

    async def describe_reduction(self, position: Position, new_quantity: Decimal) -> None:
        """A position got smaller without a close of ours: say who did it (the exchange: ADL,
        liquidation; our own stop or take-profit filling partly; somebody by hand)."""
        engine = self.engine
        fills = await self._best_effort("read the fills", engine.executor.read(
            engine.exchange.fills, position.symbol, position.opened_at)) or []
        closing = [f for f in fills if f.side is position.side.opposite]
        exchange = sorted({r.value for f in closing if (r := exchange_close_reason(f.client_id))})
        ours = sorted({role.name.lower().replace("_", "-") for f in closing
                       if (role := _role(f.client_id)) in (OrderRole.STOP_LOSS,
                                                            OrderRole.TAKE_PROFIT)})
        if exchange:
            who = f"by the exchange ({', '.join(exchange)})"
        elif ours:
            who = f"by a partial fill of its {' and '.join(ours)}"
        else:
            who = "outside the agent (by hand or another program)"
        engine.alerter.publish(Alert(
            AlertName.POSITION_REDUCED, f"{position.symbol}: {position.side.label} reduced {who} "
            f"from {position.quantity} to {new_quantity}; protection follows the new size",
            position.symbol, dedup_key=f"reduced:{position.symbol}:{new_quantity}"), self.now)

    # --- breakers -----------------------------------------------------------------
    async def check_breakers(self, symbol: str, snap: Snapshot, state):  # type: ignore[no-untyped-def]
        engine = self.engine
        events: list = []
        cfg = engine.guard_config
        book = await engine.executor.read(engine.exchange.book_ticker, symbol)
        history = self.spreads.setdefault(symbol, [])
        if history:
            state, found = guards.check_spread(state, symbol, book.spread_pct, history, self.now, cfg)
            events += found
        history.append(book.spread_pct)
        del history[:-100]
        closed_candles = list(engine.candles[symbol])
        state, found = guards.check_crash(state, symbol, closed_candles, self.now, cfg)
        events += found
        reading = read_regime(closed_candles)
        if reading is not None:
            state, found = guards.check_regime(state, symbol, reading.regime, self.now, cfg)
            events += found
        return state, events

    def write_emergency_backup(self) -> None:
        """When the database fails, keep what we know in a plain file next to it."""
        engine = self.engine
        path = Path(str(engine.settings.db_path) + ".emergency.json")
        body = {"at": self.now.isoformat(), "positions": [dump(p) for p in engine.positions.values()],
                "guards": guards.dump_state(engine.guard_state)}
        try:
            path.write_text(json.dumps(body, indent=1))
            logger.warning("emergency backup written path={}", path)
        except OSError as exc:
            logger.error("emergency backup failed path={} error={}", path, exc)


def _role(client_id: str) -> OrderRole | None:
    parsed = ClientId.parse(client_id)
    return parsed.role if parsed else None


def _pending_reason(engine: "Engine", symbol: str) -> CloseReason | None:
    raw = engine.store.get(f"closing:{symbol}")
    return CloseReason(raw) if raw else None


def _tighter(position: Position, stop: Decimal) -> bool:
    assert position.sl_price is not None
    return stop > position.sl_price if position.side.sign > 0 else stop < position.sl_price

