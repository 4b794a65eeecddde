"""Typed alerts: names, severities, and the values that carry them (no I/O here; the
outbox and the throttle are in trader/alerter.py)."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


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
    PROTECTION_RESTORED = "PROTECTION_RESTORED"   # all-clear after SL_MISSING / unprotected
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

    async def start(self) -> None:
        """Begin delivering (a rejected Telegram token raises ConfigError)."""

    async def stop(self) -> None:
        """Deliver what is pending (bounded), then stop."""
