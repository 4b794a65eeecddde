"""Typed alerts and the outbox they go through.

The engine publishes alerts; they are written to the database outbox first (so nothing is
lost while Telegram is down or the process restarts) and an `AlertSink` (the Telegram bot,
or the log when headless) delivers them in order. Repeats of one dedup key are throttled.
If the database itself fails, alerts are kept in memory and still handed to the sink.
"""

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from loguru import logger

from storage import SaveStateFailure, Store


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    WARN = "WARN"
    INFO = "INFO"


class AlertName(StrEnum):
    SAVE_STATE_FAILURE = "SAVE_STATE_FAILURE"
    SAVE_STATE_RECOVERED = "SAVE_STATE_RECOVERED"
    SL_MISSING = "SL_MISSING"
    POSITION_UNPROTECTED = "POSITION_UNPROTECTED"
    API_CIRCUIT_OPEN = "API_CIRCUIT_OPEN"
    API_CIRCUIT_CLOSED = "API_CIRCUIT_CLOSED"
    EXCHANGE_CLOSE = "EXCHANGE_CLOSE"        # liquidation, ADL or settlement by the exchange
    POSITION_REDUCED = "POSITION_REDUCED"    # size reduced outside the agent (ADL, by hand)
    SYMBOL_RULES = "SYMBOL_RULES"            # tick/step/notional or trading status changed
    RECONCILE_MISMATCH = "RECONCILE_MISMATCH"
    EMERGENCY_DONE = "EMERGENCY_DONE"
    SECOND_INSTANCE = "SECOND_INSTANCE"
    ORDER_FAILED = "ORDER_FAILED"
    FILL = "FILL"
    CLOSE = "CLOSE"
    PROTECTION = "PROTECTION"
    BREAKER_TRIPPED = "BREAKER_TRIPPED"
    BREAKER_CLEARED = "BREAKER_CLEARED"
    STALE_DATA = "STALE_DATA"
    STARTUP = "STARTUP"
    SHUTDOWN = "SHUTDOWN"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    UNAUTHORIZED = "UNAUTHORIZED"
    DAILY_SUMMARY = "DAILY_SUMMARY"
    ERROR = "ERROR"
    REPLY = "REPLY"   # a command's reply Telegram did not take in time, delivered later


DEFAULT_SEVERITY = {
    AlertName.SAVE_STATE_FAILURE: Severity.CRITICAL,
    AlertName.SL_MISSING: Severity.CRITICAL,
    AlertName.POSITION_UNPROTECTED: Severity.CRITICAL,
    AlertName.API_CIRCUIT_OPEN: Severity.CRITICAL,
    AlertName.RECONCILE_MISMATCH: Severity.CRITICAL,
    AlertName.EMERGENCY_DONE: Severity.CRITICAL,
    AlertName.SECOND_INSTANCE: Severity.CRITICAL,
    AlertName.EXCHANGE_CLOSE: Severity.CRITICAL,
    AlertName.POSITION_REDUCED: Severity.WARN,
    AlertName.SYMBOL_RULES: Severity.WARN,
    AlertName.ORDER_FAILED: Severity.WARN,
    AlertName.BREAKER_TRIPPED: Severity.WARN,
    AlertName.STALE_DATA: Severity.WARN,
    AlertName.ERROR: Severity.WARN,
    AlertName.UNAUTHORIZED: Severity.WARN,
}


@dataclass(frozen=True, slots=True)
class Alert:
    name: AlertName
    text: str
    symbol: str = ""
    severity: Severity | None = None
    dedup_key: str = ""

    @property
    def level(self) -> Severity:
        return self.severity or DEFAULT_SEVERITY.get(self.name, Severity.INFO)

    @property
    def key(self) -> str:
        return self.dedup_key or f"{self.name}:{self.symbol}"


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    """An alert ready for delivery; `outbox_id` is None when the database was down."""
    outbox_id: int | None
    created_at: datetime
    name: str
    severity: str
    symbol: str
    text: str


class AlertSink(Protocol):
    """Something that delivers alerts (Telegram, or the log when headless)."""

    def wake(self) -> None:
        """New alerts are waiting; deliver them soon. Must not block."""


class Alerter:
    """Throttles, records and hands alerts to the sink. Never blocks the engine."""

    def __init__(self, store: Store, throttle: timedelta = timedelta(minutes=5)) -> None:
        self.store = store
        self.throttle = throttle
        self.sink: AlertSink | None = None
        self._last_sent: dict[str, datetime] = {}
        self._unsaved: deque[OutgoingAlert] = deque(maxlen=1000)

    def publish(self, alert: Alert, now: datetime) -> bool:
        """Queue an alert; False if it was throttled as a repeat of the same key."""
        last = self._last_sent.get(alert.key)
        if last is not None and now - last < self.throttle:
            logger.info("alert throttled name={} key={}", alert.name, alert.key)
            return False
        self._last_sent[alert.key] = now
        if len(self._last_sent) > 2000:   # keys carry ids and dates: forget old ones
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.throttle}
        logger.log("WARNING" if alert.level is not Severity.INFO else "INFO",
                   "alert name={} severity={} symbol={} text={}",
                   alert.name, alert.level, alert.symbol or "-", alert.text.replace("\n", " | "))
        try:
            self.store.enqueue_alert(now, alert.name.value, alert.level.value, alert.symbol,
                                     alert.key, alert.text)
        except SaveStateFailure as exc:
            logger.error("alert kept in memory (database down) name={} error={}", alert.name, exc)
            self._unsaved.append(OutgoingAlert(None, now, alert.name.value, alert.level.value,
                                               alert.symbol, alert.text))
        if self.sink is not None:
            self.sink.wake()
        return True

    def take_unsaved(self) -> list[OutgoingAlert]:
        """Alerts that could not be written to the outbox, oldest first (then forgotten)."""
        taken = list(self._unsaved)
        self._unsaved.clear()
        return taken

    def pending(self, limit: int = 50) -> list[OutgoingAlert]:
        return [OutgoingAlert(a.id, a.created_at, a.name, a.severity, a.symbol, a.text)
                for a in self.store.pending_alerts(limit)]
