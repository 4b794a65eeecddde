"""Writing positions down: each step in one transaction, a close (final record, its fills,
the journal entry and the cooldown) in one transaction, and the alerts that go with them.

A failed write is counted by the store's write health (SAVE_STATE_FAILURE, entries
blocked) and never stops protection: the engine goes on from its memory, and the exchange
keeps the truth (a restart rebuilds from it). A close, a stream fill or a funding payment
that did not reach the disk (its write failed, or the engine's unit of work rolled it back)
is written again by the next tick.
"""

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from loguru import logger

from storage import SaveStateFailure, codec
from trader import cooldowns
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.close_record import AFTER_EXCHANGE_CLOSE, exit_text, lost
from trader.closing import Finalized
from trader.display import duration, money, quantity
from trader.domain import ZERO, Fill
from trader.events import (
    CloseRequested,
    EntryFailed,
    EntryFilled,
    Event,
    FlattenResult,
    LegFilled,
    LegGone,
    LegPlaced,
    LegRejected,
    PositionGone,
    PositionSizeChanged,
)
from trader.exchange.base import ExchangeEvent, FundingApplied, OrderUpdate
from trader.fee_value import amounts, fees_text, unvalued
from trader.funding_backfill import MATCH_WINDOW, already_read_back
from trader.guard_book import STATE_KEY, GuardBook, dump_state
from trader.guard_state import GuardState
from trader.position import Position
from trader.symbol_rules import SymbolRules
from trader.trade_history import trade_funding
from trader.trade_store import FundingPayment, TradeStore

JOURNALED = (EntryFilled, EntryFailed, LegPlaced, LegRejected, LegGone, LegFilled,
             PositionSizeChanged, PositionGone, CloseRequested, FlattenResult)


class PositionJournal:
    def __init__(self, store: TradeStore, alerter: Alerter, guard_book: GuardBook,
                 clock: Clock, rules: Callable[[str], SymbolRules] | None = None) -> None:
        self.store = store
        self.alerter = alerter
        self.guards = guard_book
        self.clock = clock
        self.rules = rules          # the symbol's tick and step, for the texts
        self.close_listeners: list[Callable[[], None]] = []    # after each close
        # A close, a stream fill or a funding payment whose write did not reach the disk
        # (it failed, or the engine's unit of work rolled it back after it was written) is
        # written again by the next tick (storage/unit_of_work.py `Rewrites`): no later
        # step would write it (the closed position has left the engine's memory; a fill
        # or a payment is an append-only row). A step is not kept: the position stays in
        # memory and its next step writes the whole record (a restart rebuilds it).
        self.rewrites = store.unit.rewrites

    def commit(self, before: Position | None, after: Position, event: Event | None) -> None:
        """One step: the position as it is now, and the event if it matters later."""
        if before is not None and same_record(after, before):     # `after == before`
            return
        try:
            if not isinstance(event, JOURNALED):
                self.store.save_position(after)      # one write: a transaction of its own
                return
            # the entry: the text of {"key": after.key, **codec.dump(event)}, without the dict
            self.store.save_step(f"step {after.symbol} {type(event).__name__}", after,
                                 self.clock.now(), _kind(event),
                                 codec.dumps_with(event, "key", after.key))
        except SaveStateFailure as exc:
            logger.error("step not saved symbol={} error={}", after.symbol, exc)

    def close(self, final: Finalized) -> None:
        """The close, in one transaction: the record, its fills, the journal, the cooldown."""
        position = final.position
        now = self.clock.now()
        # No closing fill read yet: neither a loss nor a win until the close read-back
        # counts it (trader/close_readback.py); a zero PnL would reset the loss streak. A
        # fee in BNB whose price could not be read: not a win on a net that leaves it out.
        loss = lost(position)
        cooldown = cooldowns.start_cooldown(self.guards.state, position.symbol, now, loss,
                                         self.guards.config, base=position.cooldown)
        self._write_close(final, now, cooldown)
        self.guards.state = cooldown
        self._alert_close(final)
        for listener in self.close_listeners:
            listener()

    def _write_close(self, final: Finalized, now: datetime,
                     cooldown: GuardState | None = None) -> None:
        """The close's one transaction; `cooldown` None: the guards as they are now (a
        close written again)."""
        position = final.position
        if cooldown is None:
            cooldown = self.guards.state
        key = ("close", position.symbol, position.key)
        again = partial(self._write_close, final, now)
        try:
            with self.store.transaction(f"close {position.symbol} {position.key}"):
                self.store.save_position(position)
                for fill in final.fills:
                    self.store.record_fill(fill)
                self.store.append_event(now, "position_closed", position.symbol, {
                    "key": position.key, "reason": position.close_reason.value
                    if position.close_reason else "", "pnl": str(position.realized_pnl),
                    "fees": str(position.fees)})
                self.store.put_later(STATE_KEY, partial(dump_state, cooldown), now)
        except SaveStateFailure as exc:
            logger.error("close not saved symbol={} error={}", position.symbol, exc)
            self.rewrites.failed(key, again)
        else:
            self.rewrites.written(key, again)

    def _alert_close(self, final: Finalized) -> None:
        position = final.position
        why = position.close_reason
        symbol = position.symbol
        qty = position.traded_quantity      # its own part of the closing fills (close_record)
        tick, step = self._grid(symbol)
        # No closing fill read (the read failed: `final.problems` says so): neither the exit
        # price nor the PnL is known, and a zero would read as a known result.
        at = exit_text(position, tick)
        if why is not None and why.exchange_initiated:
            size = f" {quantity(qty, step)}" if qty else ""
            text = (f"{symbol}: {position.side.label}{size} closed BY THE EXCHANGE "
                    f"({why.value}){at}; {self.pnl_text(position)}. {AFTER_EXCHANGE_CLOSE[why]}")
            name = AlertName.EXCHANGE_CLOSE
        else:
            text = (f"{symbol}: {position.side.label} closed ({why.value if why else '?'})"
                    f"{at}; {self.pnl_text(position)}")
            name = AlertName.CLOSE
        if final.problems:
            text += "\n" + "\n".join(final.problems)
        self.alerter.publish(Alert(name, text, symbol, dedup_key=f"close:{symbol}:{position.key}"),
                             self.clock.now())

    def pnl_text(self, position: Position) -> str:
        """"PnL +1.23 USDT net (fees 0.40, funding -0.05), held 35 min": realised means net
        of fees and funding everywhere (trader/trade_history.py). "exit price and PnL unknown
        (no closing fill was read), held 35 min" when no closing fill is known."""
        held = duration(position.closed_at - position.opened_at) if position.closed_at else "?"
        if position.exit_price is None:
            return f"exit price and PnL unknown (no closing fill was read), held {held}"
        try:
            funding = trade_funding(position, self.store.funding_payments(position.opened_at))
        except sqlite3.Error as exc:   # the alert still goes out, without the funding
            logger.error("funding not read for the close alert symbol={} error={}",
                         position.symbol, exc)
            funding = ZERO
        net = position.realized_pnl - position.fees + funding
        fees = fees_text(position.fees, position.fees_in_kind)
        missing = unvalued(position.fees_in_kind)
        # a fee in BNB whose price could not be read: the net leaves it out, said first
        before = f" before {amounts(missing)} of fees" if missing else ""
        return (f"PnL {money(net, signed=True)} USDT net{before} (fees {fees}, "
                f"funding {money(funding, signed=True)}), held {held}")

    def _grid(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        if self.rules is None:
            return None, None
        try:
            rules = self.rules(symbol)
        except KeyError:            # a symbol no longer configured: shown unrounded
            return None, None
        return rules.tick_size, rules.step_size

    def record_funding(self, events: list[ExchangeEvent], symbols: list[str]) -> None:
        """Journal the funding the exchange booked (per-period realised PnL counts it),
        unless it was read back from the income history first (trader/funding_backfill.py)."""
        for event in events:
            if isinstance(event, FundingApplied) and (event.symbol in symbols or not event.symbol):
                self._journal_funding(event)

    def _journal_funding(self, event: FundingApplied) -> None:
        """One payment; asked again whether it was read back when it is written again (the
        income backfill may have journaled it meanwhile: never twice)."""
        payment = FundingPayment(event.time, event.symbol, event.amount)
        if self._read_back_already(payment):
            logger.info("funding already read back from the income history symbol={} "
                        "amount={} at={}", event.symbol, event.amount, event.time.isoformat())
            return
        key = ("funding", event.symbol, event.time, event.amount)
        again = partial(self._journal_funding, event)
        try:
            self.store.record_funding(payment, event.rate)
        except SaveStateFailure as exc:   # counted by the store's write health
            logger.error("funding not saved symbol={} amount={} error={}",
                         event.symbol, event.amount, exc)
            self.rewrites.failed(key, again)
        else:
            self.rewrites.written(key, again)

    def _read_back_already(self, payment: FundingPayment) -> bool:
        try:
            journal = self.store.funding_journal(payment.at - MATCH_WINDOW)
        except sqlite3.Error as exc:   # journaled all the same: a loss is worse than a twin
            logger.error("funding journal unreadable symbol={} error={}", payment.symbol, exc)
            return False
        return already_read_back(payment, journal)

    def record_stream_fills(self, events: list[ExchangeEvent], symbols: list[str]) -> None:
        """Journal the fills the user-data stream reported (liquidation fills included:
        their client id names who closed the position)."""
        for event in events:
            if isinstance(event, OrderUpdate) and event.fill is not None \
                    and event.fill.symbol in symbols:
                self._record_fill(event.fill)

    def _record_fill(self, fill: Fill) -> None:
        key = ("fill", fill.symbol, fill.trade_id)
        try:
            self.store.record_fill(fill)
        except SaveStateFailure as exc:
            logger.error("fill not saved trade_id={} error={}", fill.trade_id, exc)
            self.rewrites.failed(key, partial(self._record_fill, fill))
        else:
            self.rewrites.written(key, partial(self._record_fill, fill))

    def write_emergency_backup(self, positions: dict[str, Position], db_path: Path) -> None:
        """When the database fails, keep what we know in a plain file next to it."""
        path = Path(str(db_path) + ".emergency.json")
        body: dict[str, Any] = {"at": self.clock.now().isoformat(),
                                "positions": [codec.dump(p) for p in positions.values()],
                                "guards": dump_state(self.guards.state)}
        try:
            path.write_text(json.dumps(body, indent=1))
            logger.warning("emergency backup written path={}", path)
        except OSError as exc:
            logger.error("emergency backup failed path={} error={}", path, exc)


# The fields a step changes most, compared first by `same_record`; then all the others.
_CHANGED_FIRST = ("best_price", "stop", "take_profit", "state", "seq", "quantity",
                  "take_profit_1", "close_attempts", "closing_reason")


def _record_comparison() -> Callable[[Position, Position], bool]:
    """`same_record`, generated from Position's fields (a field added later is compared
    too): each field `a.f is b.f or a.f == b.f`, as the tuple comparison of the dataclass's
    `__eq__` takes each pair (identity first), stopping at the first field that differs."""
    names = [field.name for field in dataclasses.fields(Position)]
    ordered = [name for name in _CHANGED_FIRST if name in names] \
        + [name for name in names if name not in _CHANGED_FIRST]
    tests = " and ".join(f"(a.{name} is b.{name} or a.{name} == b.{name})"
                         for name in ordered)
    namespace: dict[str, Any] = {"_Position": Position}
    exec("def same_record(a, b):\n"         # only field names go into the generated text
         "    if a.__class__ is not _Position or b.__class__ is not _Position:\n"
         "        return a == b\n"
         f"    return {tests}\n", namespace)
    compare: Callable[[Position, Position], bool] = namespace["same_record"]
    return compare


# `before == after` for two positions (what a step returned equals what it was given):
# Position's `__eq__` builds the tuple of its 36 fields for each (~11,000 instructions per
# step saved); this decides at the first field that differs (most steps: the first few).
same_record = _record_comparison()


_kinds: dict[type, str] = {}     # event type -> its journal kind; types never change


def _kind(event: Event) -> str:
    """"LegPlaced" -> "leg_placed"."""
    kind = _kinds.get(type(event))
    if kind is None:
        name = type(event).__name__
        kind = _kinds[type(event)] = "".join(f"_{c.lower()}" if c.isupper() else c
                                             for c in name).lstrip("_")
    return kind
