"""Alert delivery without Telegram: with no bot token the agent runs headless and alerts only
go to the log. They still pass through the outbox (merged, held and turned off like for
Telegram), and are marked sent once logged; each line says whether Telegram would have rung
(`sound=yes|no`), which is how a replay counts audible alerts."""

import asyncio
import sqlite3

from loguru import logger

from storage import SaveStateFailure, Store
from trader.alert_routing import Loudness
from trader.alerter import Alerter
from trader.alerts import OutgoingAlert
from trader.clock import Clock


class LogAlertSink:
    """An `AlertSink` that writes each alert to the log and marks it sent."""

    def __init__(self, alerter: Alerter, store: Store, clock: Clock, batch: int = 100) -> None:
        self.alerter = alerter
        self.store = store
        self.clock = clock
        self.batch = batch
        self.loudness = Loudness(alerter.routing)
        self._scheduled = False

    async def start(self) -> None:
        logger.info("telegram disabled (no TELEGRAM_BOT_TOKEN): alerts go to the log only")
        self.deliver()

    async def stop(self) -> None:
        self.alerter.release_held()
        self.deliver()

    def wake(self) -> None:
        """Deliver soon, outside the publisher's call stack (never blocks the engine)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.deliver()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.deliver)

    def deliver(self) -> int:
        """Log every waiting alert, oldest first; returns how many were logged."""
        self._scheduled = False
        logged = 0
        for alert in self.alerter.take_unsaved():
            self._log(alert)
            logged += 1
        while True:
            try:
                pending = self.alerter.pending(self.batch)
            except (SaveStateFailure, sqlite3.Error) as exc:
                logger.error("alert outbox unreadable error={}", exc)
                return logged
            for alert in pending:
                self._log(alert)
                logged += 1
                if not self._mark_sent(alert):
                    return logged
            if len(pending) < self.batch:
                return logged

    def _mark_sent(self, alert: OutgoingAlert) -> bool:
        if alert.outbox_id is None:
            return True
        try:
            self.store.mark_alert(alert.outbox_id, "sent", self.clock.now())
        except SaveStateFailure as exc:
            logger.error("alert logged but not marked id={} error={}", alert.outbox_id, exc)
            return False
        return True

    def _log(self, alert: OutgoingAlert) -> None:
        level = "INFO" if alert.severity == "INFO" else "WARNING"
        sound = "no" if self.loudness.silent(alert) else "yes"
        logger.log(level, "alert (headless) id={} name={} severity={} sound={} symbol={} text={}",
                   alert.outbox_id, alert.name, alert.severity, sound, alert.symbol or "-",
                   alert.text.replace("\n", " | "))
