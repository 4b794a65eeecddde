"""Typed alerts: names, what each severity means, which all-clear ends which trouble, and
the values that carry them (no I/O here; the outbox, the throttle and the merging of trip /
clear pairs are in trader/alerter.py, the per-deployment routing in trader/alert_routing.py).

Severity means something (README, "Alerts"):
- CRITICAL: the operator must act (or at least look now). Sent with sound, at once, never
  held, merged, silenced or turned off.
- WARN: unusual, the agent is handling it; worth hearing about. Sent with sound.
- INFO: routine, or what the operator asked for. Sent silently (Telegram's
  `disable_notification`), except an all-clear for a trouble that was heard.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from trader.fast_init import fast_init


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
    EXCHANGE_UNREACHABLE = "EXCHANGE_UNREACHABLE"   # REST not answering (5xx, timeouts)
    EXCHANGE_REACHABLE = "EXCHANGE_REACHABLE"       # all-clear after EXCHANGE_UNREACHABLE
    EXCHANGE_CLOSE = "EXCHANGE_CLOSE"        # liquidation, ADL or settlement by the exchange
    MARGIN_CALL = "MARGIN_CALL"              # the exchange's margin call: liquidation is near
    ACCOUNT_MODE = "ACCOUNT_MODE"            # Multi-Assets mode on: cross margin only
    ACCOUNT_MODE_RESTORED = "ACCOUNT_MODE_RESTORED"   # all-clear: Single-Asset mode again
    MARGIN_TYPE = "MARGIN_TYPE"              # a symbol's ISOLATED margin refused, or on cross
    POSITION_REDUCED = "POSITION_REDUCED"    # size reduced outside the agent (ADL, by hand)
    SYMBOL_RULES = "SYMBOL_RULES"            # tick/step/notional or trading status changed
    PROTECTION_RESTORED = "PROTECTION_RESTORED"   # all-clear after SL_MISSING / unprotected
    RECONCILE_MISMATCH = "RECONCILE_MISMATCH"
    EMERGENCY_DONE = "EMERGENCY_DONE"
    SECOND_INSTANCE = "SECOND_INSTANCE"
    FILL = "FILL"
    ENTRY_NOT_FILLED = "ENTRY_NOT_FILLED"    # an entry known unfilled only later (answer lost)
    CLOSE = "CLOSE"
    PROTECTION = "PROTECTION"
    BREAKER_TRIPPED = "BREAKER_TRIPPED"
    BREAKER_CLEARED = "BREAKER_CLEARED"
    STALE_DATA = "STALE_DATA"
    DATA_RESUMED = "DATA_RESUMED"            # all-clear after STALE_DATA
    STARTUP = "STARTUP"
    SHUTDOWN = "SHUTDOWN"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    UNAUTHORIZED = "UNAUTHORIZED"
    DAILY_SUMMARY = "DAILY_SUMMARY"
    ERROR = "ERROR"
    REPLY = "REPLY"   # a command's reply Telegram did not take in time, delivered later
    # The live invariant monitor (trader/invariant_monitor.py): one name per kind, one all-clear
    INVARIANT_NO_STOP = "INVARIANT_NO_STOP"
    INVARIANT_EXTRA_STOP = "INVARIANT_EXTRA_STOP"
    INVARIANT_TAKE_PROFIT = "INVARIANT_TAKE_PROFIT"
    INVARIANT_FLAT_ORDERS = "INVARIANT_FLAT_ORDERS"
    INVARIANT_DUPLICATE_ID = "INVARIANT_DUPLICATE_ID"
    INVARIANT_UNJOURNALED_FILL = "INVARIANT_UNJOURNALED_FILL"
    INVARIANT_ALERT_BACKLOG = "INVARIANT_ALERT_BACKLOG"
    INVARIANT_STUCK_INTENT = "INVARIANT_STUCK_INTENT"
    INVARIANT_POSITION_MISMATCH = "INVARIANT_POSITION_MISMATCH"
    INVARIANT_STREAM_SILENT = "INVARIANT_STREAM_SILENT"
    INVARIANT_CLEARED = "INVARIANT_CLEARED"


_C, _W, _I = Severity.CRITICAL, Severity.WARN, Severity.INFO
DEFAULT_SEVERITY: dict[AlertName, Severity] = {
    # CRITICAL: the operator must act.
    AlertName.SAVE_STATE_FAILURE: _C,    # the disk fails: free space, or /shutdown
    AlertName.SL_MISSING: _C,            # a leveraged position has no stop-loss right now
    AlertName.POSITION_UNPROTECTED: _C,  # a stop-loss cannot be placed (margin? level passed?)
    AlertName.RECONCILE_MISMATCH: _C,    # a position the agent did not open is on the account
    AlertName.SECOND_INSTANCE: _C,       # another process trades the account: stop it, /wake
    AlertName.EXCHANGE_CLOSE: _C,        # liquidated / ADL / delisted: check margin, leverage
    AlertName.MARGIN_CALL: _C,           # the exchange warns of a liquidation near
    AlertName.ACCOUNT_MODE: _C,          # Multi-Assets mode: no entries until switched off
    # WARN: unusual; the agent copes, the operator should hear of it.
    AlertName.API_CIRCUIT_OPEN: _W,      # rate-limited: nothing sent until Retry-After
    AlertName.EXCHANGE_UNREACHABLE: _W,  # Binance REST silent: nothing checked or sent
    AlertName.POSITION_REDUCED: _W,      # ADL, a hand reduced a position (a partial
                                         # liquidation: CRITICAL, trader/lifecycle.py)
    AlertName.PROTECTION: _W,            # a take-profit refused, a stop move given up
    AlertName.SYMBOL_RULES: _W,          # the exchange changed a symbol's rules or status
    AlertName.MARGIN_TYPE: _W,           # no entries on a symbol ISOLATED was refused for
    AlertName.STALE_DATA: _W,            # no candles: entries blocked on that symbol
    AlertName.ERROR: _W,                 # a bug skipped one unit of work
    AlertName.UNAUTHORIZED: _W,          # a stranger tried to command the bot
    # INFO: routine, asked for, or an all-clear.
    AlertName.SAVE_STATE_RECOVERED: _I,
    AlertName.API_CIRCUIT_CLOSED: _I,
    AlertName.ACCOUNT_MODE_RESTORED: _I,
    AlertName.EXCHANGE_REACHABLE: _I,
    AlertName.PROTECTION_RESTORED: _I,
    AlertName.DATA_RESUMED: _I,
    AlertName.EMERGENCY_DONE: _I,        # the operator's own /shutdown (or `tradebot shutdown`)
    AlertName.FILL: _I,
    AlertName.ENTRY_NOT_FILLED: _I,      # FILL's twin: what became of an entry, nothing open
    AlertName.CLOSE: _I,
    AlertName.BREAKER_TRIPPED: _I,       # entries pause by themselves for a few minutes
    AlertName.BREAKER_CLEARED: _I,
    AlertName.STARTUP: _I,               # including its own position picked up after a restart
    AlertName.SHUTDOWN: _I,              # the host restarts workers daily
    AlertName.PAUSED: _I,
    AlertName.RESUMED: _I,
    AlertName.DAILY_SUMMARY: _I,
    AlertName.REPLY: _I,
    # The invariant monitor (a violation two checks in a row saw), graded like the alerts the
    # engine raises for the same trouble: a naked position (SL_MISSING), a position that is
    # not what the records say (RECONCILE_MISMATCH), an order sent twice are CRITICAL.
    AlertName.INVARIANT_NO_STOP: _C,
    AlertName.INVARIANT_POSITION_MISMATCH: _C,
    AlertName.INVARIANT_DUPLICATE_ID: _C,
    AlertName.INVARIANT_EXTRA_STOP: _W,       # a second stop (by hand?): cancel one
    AlertName.INVARIANT_TAKE_PROFIT: _W,      # like PROTECTION: a target missing or one too many
    AlertName.INVARIANT_FLAT_ORDERS: _W,      # a leftover the sweep cannot cancel
    AlertName.INVARIANT_UNJOURNALED_FILL: _W,
    AlertName.INVARIANT_ALERT_BACKLOG: _W,
    AlertName.INVARIANT_STUCK_INTENT: _W,
    AlertName.INVARIANT_STREAM_SILENT: _W,    # the agent polls meanwhile
    AlertName.INVARIANT_CLEARED: _I,
}

ALL_CLEAR: dict[AlertName, AlertName] = {
    # trouble -> the alert that says it is over (published by the code that sees it end)
    AlertName.SL_MISSING: AlertName.PROTECTION_RESTORED,
    AlertName.POSITION_UNPROTECTED: AlertName.PROTECTION_RESTORED,
    AlertName.PROTECTION: AlertName.PROTECTION_RESTORED,
    AlertName.SAVE_STATE_FAILURE: AlertName.SAVE_STATE_RECOVERED,
    AlertName.API_CIRCUIT_OPEN: AlertName.API_CIRCUIT_CLOSED,
    AlertName.EXCHANGE_UNREACHABLE: AlertName.EXCHANGE_REACHABLE,
    AlertName.STALE_DATA: AlertName.DATA_RESUMED,
    AlertName.ACCOUNT_MODE: AlertName.ACCOUNT_MODE_RESTORED,
    AlertName.BREAKER_TRIPPED: AlertName.BREAKER_CLEARED,
    **{name: AlertName.INVARIANT_CLEARED for name in AlertName
       if name.startswith("INVARIANT_") and name is not AlertName.INVARIANT_CLEARED},
}
"""Every trouble that can end, and the all-clear that follows it."""

ENDED_BY_CLOSE = frozenset({AlertName.SL_MISSING, AlertName.POSITION_UNPROTECTED,
                            AlertName.PROTECTION})
"""Protection troubles also end when their position closes (a stop level already passed is
closed at market): the close is their all-clear."""

CLOSES = frozenset({AlertName.CLOSE, AlertName.EXCHANGE_CLOSE})

ONE_SHOT: dict[AlertName, str] = {
    # CRITICAL facts with nothing to clear; why no all-clear follows them
    AlertName.EXCHANGE_CLOSE: "the position is already closed; the alert carries the loss",
    AlertName.RECONCILE_MISMATCH: "the foreign position is adopted and protected at once; "
                                  "what remains is the operator's decision about it",
    AlertName.SECOND_INSTANCE: "ends with the operator's /wake, whose reply confirms it",
    AlertName.MARGIN_CALL: "a warning from the exchange with no end it announces; the "
                           "position's close (or its liquidation: EXCHANGE_CLOSE) follows",
}

MERGED_PAIRS: dict[AlertName, AlertName] = {AlertName.BREAKER_TRIPPED: AlertName.BREAKER_CLEARED}
"""Trip -> clear pairs sent as one message when the clear comes soon (trader/alerter.py)."""


def troubles_ended_by(name: AlertName | str) -> frozenset[AlertName]:
    """The troubles an alert of this name ends: those it is the all-clear of, and the
    protection troubles when it is a close."""
    ended = {trouble for trouble, clear in ALL_CLEAR.items() if clear == name}
    if name in CLOSES:
        ended |= ENDED_BY_CLOSE
    return frozenset(ended)


@fast_init          # two or more per trade
@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. `subject` names what a trip and its clear are about (a breaker's name)
    so the two can be merged; `answered_in_reply` marks an alert whose text the operator
    who asked already got as the command's reply: kept for /alerts, not sent again."""
    name: AlertName
    text: str
    symbol: str = ""
    severity: Severity | None = None
    dedup_key: str = ""
    subject: str = ""
    answered_in_reply: bool = False

    @property
    def level(self) -> Severity:
        return self.severity or DEFAULT_SEVERITY[self.name]

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
    dedup_key: str = ""       # Alert.key: a REPLY's names the chat that asked (bot/alert_audience.py)


class AlertSink(Protocol):
    """Something that delivers alerts (Telegram, or the log when headless)."""

    def wake(self) -> None:
        """New alerts are waiting; deliver them soon. Must not block."""

    async def start(self) -> None:
        """Begin delivering (a rejected Telegram token raises ConfigError)."""

    async def stop(self) -> None:
        """Deliver what is pending (bounded), then stop."""
