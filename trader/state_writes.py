"""The engine's own writes (equity snapshots, the tick marker) and the storage gate's health
reported from the tick: SAVE_STATE_FAILURE with entries blocked, SAVE_STATE_RECOVERED."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from loguru import logger

from storage import SaveStateFailure
from storage.health import WriteHealth
from trader import guards
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.guard_book import GuardBook
from trader.position import Position
from trader.position_journal import PositionJournal
from trader.save_alerts import Said, SaveAlerts, failure_text
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
        self.save_alerts = SaveAlerts(alerter.throttle)
        self.said_count = 0

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
        """Report what the storage gate saw: every failed write blocks entries within one
        tick and writes the emergency backup, the first good one after allows them again;
        what the operator hears of it is `SaveAlerts`' to decide (a disk failing and working
        by turns is not a message per tick)."""
        health = self.store.health
        flagged = health.take_alert()
        if flagged:
            self.guards.set(guards.set_save_failure(self.guards.state, True))
            self.journal.write_emergency_backup(self.positions(), self.db_path)
        if health.take_recovery():
            self.guards.set(guards.set_save_failure(self.guards.state, False))
        now = self.clock.now()
        for what in self.save_alerts.step(now, flagged, health.failing):
            self._say(what, health, now)

    def _say(self, what: Said, health: WriteHealth, now: datetime) -> None:
        note = self.save_alerts.said_now(what, now, health.total_failures,
                                         health.total_recoveries)
        if what is Said.FAILURE:
            alert = Alert(AlertName.SAVE_STATE_FAILURE, failure_text(health))
        else:
            alert = Alert(AlertName.SAVE_STATE_RECOVERED,
                          "database writes work again; entries allowed")
        if note:
            alert = replace(alert, text=f"{alert.text}\n{note}")
        # SaveAlerts is the throttle of these two: a key of their own per message, so the
        # alerter's (per key, 5 min, doubling for a recurring INFO) cannot drop a recovery
        # and leave "entries blocked" the last word while writes work.
        self.alerter.publish(replace(alert, dedup_key=f"save:{self.said_count}"), now)
        self.said_count += 1

    def probe_if_failing(self) -> None:
        """While the database is failing, one small write per tick to see it recover."""
        if self.store.health.failing:
            now = self.clock.now()
            self.persist(lambda: self.store.put("last_tick", now, now), "tick marker")
