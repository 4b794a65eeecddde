"""The engine's own writes (equity snapshots, the tick marker) and the storage gate's health
reported from the tick: SAVE_STATE_FAILURE with entries blocked, SAVE_STATE_RECOVERED."""

from collections.abc import Callable
from pathlib import Path

from loguru import logger

from storage import SaveStateFailure
from trader import guards
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.guard_book import GuardBook
from trader.position import Position
from trader.position_journal import PositionJournal
from trader.trade_store import TradeStore


class StateWrites:
    """`persist(write, what)` runs one write; `check_health()` reports what the store's write
    health saw since the last check (every failed write: outbox, intents, orders, fills,
    positions, guards, events, state)."""

    def __init__(self, store: TradeStore, guard_book: GuardBook, journal: PositionJournal,
                 alerter: Alerter, clock: Clock, db_path: Path,
                 positions: Callable[[], dict[str, Position]]) -> None:
        self.store = store
        self.guards = guard_book
        self.journal = journal
        self.alerter = alerter
        self.clock = clock
        self.db_path = db_path
        self.positions = positions     # the open records, for the emergency backup

    def persist(self, write: Callable[[], object], what: str) -> bool:
        """Run one write; a failure is counted by the store's write health (reported by
        `check_health`: SAVE_STATE_FAILURE, entries blocked) and the tick goes on.
        False when it failed."""
        try:
            write()
        except SaveStateFailure as exc:
            logger.error("state not saved what={} error={}", what, exc)
            self.check_health()
            return False
        return True

    def after_tick(self) -> None:
        """The tick's end: `probe_if_failing`, then `check_health`. Both act only while
        writes fail (`in_a_row`) or on a pending alert or recovery (each `take_` returns its
        flag and clears it), so nearly every tick asks three fields and nothing more."""
        health = self.store.health
        if health.in_a_row or health.pending_alert or health.pending_recovery:
            self.probe_if_failing()
            self.check_health()

    def check_health(self) -> None:
        """Report what the storage gate saw: every failed write raises SAVE_STATE_FAILURE
        within one tick, the first good one after SAVE_STATE_RECOVERED."""
        health = self.store.health
        if health.take_alert():
            self.guards.set(guards.set_save_failure(self.guards.state, True))
            self.journal.report_save_failure(health, self.positions(), self.db_path)
        if health.take_recovery():
            self.guards.set(guards.set_save_failure(self.guards.state, False))
            self.alerter.publish(Alert(AlertName.SAVE_STATE_RECOVERED,
                                       "database writes work again; entries allowed"),
                                 self.clock.now())

    def probe_if_failing(self) -> None:
        """While the database is failing, one small write per tick to see it recover."""
        if self.store.health.failing:
            now = self.clock.now()
            self.persist(lambda: self.store.put("last_tick", now, now), "tick marker")
