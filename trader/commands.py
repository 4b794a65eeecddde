"""Operator commands and the views the engine answers them with.

Commands (from Telegram or the CLI) are values put on the engine's queue; the engine is
the single writer and resolves each command's future with a `CommandResult`. Read-only
commands (status, positions, pnl, chart, alerts) are answered from the engine's current
view without waiting for the tick. A command id makes a repeated button press a no-op.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class CommandKind(StrEnum):
    STATUS = "status"
    POSITIONS = "positions"
    PNL = "pnl"
    CHART = "chart"
    ALERTS = "alerts"
    CLOSE = "close"          # symbol or ALL
    SHUTDOWN = "shutdown"    # flatten or keep protected; then sleep
    WAKE = "wake"
    PAUSE = "pause"          # entries only, optional duration
    RESUME = "resume"

    @property
    def mutating(self) -> bool:
        return self in (CommandKind.CLOSE, CommandKind.SHUTDOWN, CommandKind.WAKE,
                        CommandKind.PAUSE, CommandKind.RESUME)


ALL_SYMBOLS = "ALL"


@dataclass(frozen=True, slots=True)
class Command:
    kind: CommandKind
    command_id: str                      # unique per user action; repeats are ignored
    issued_at: datetime
    symbol: str | None = None            # CLOSE: a symbol or ALL_SYMBOLS
    flatten: bool = False                # SHUTDOWN: close everything first
    duration: timedelta | None = None    # PAUSE
    period: str = "day"                  # PNL: day | week | all
    source: str = "telegram"


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    side: str                 # LONG / SHORT
    quantity: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    stop_trigger: Decimal | None
    stop_attached: bool
    take_profit_trigger: Decimal | None
    take_profit_attached: bool
    state: str
    opened_at: datetime
    leverage: int


@dataclass(frozen=True, slots=True)
class StatusView:
    mode: str                         # paper / live (testnet) / live (MAINNET)
    run_state: str                    # running / paused / asleep / stopping
    equity: Decimal
    free_margin: Decimal
    positions: list[PositionView]
    regimes: dict[str, str]
    breakers: list[str]               # human-readable, with "until"
    cooldowns: dict[str, datetime]    # symbol -> entries allowed again at
    last_error: str | None
    uptime: timedelta
    paused_until: datetime | None = None
    save_failures: int = 0
    counters: dict[str, dict[str, int | str]] = field(default_factory=dict)
    feed: str = ""
    api_circuit: str | None = None    # "rate limited ... until 12:03:04 UTC" while open


@dataclass(frozen=True, slots=True)
class PnlView:
    period: str
    realized: Decimal
    fees: Decimal
    funding: Decimal
    trades: int
    wins: int

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def net(self) -> Decimal:
        return self.realized - self.fees + self.funding


@dataclass(frozen=True, slots=True)
class AlertView:
    created_at: datetime
    name: str
    severity: str
    symbol: str
    text: str


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The engine's answer. `lines` report exactly what was done, one fact per line."""
    ok: bool
    lines: list[str] = field(default_factory=list)
    status: StatusView | None = None
    positions: list[PositionView] | None = None
    pnl: PnlView | None = None
    alerts: list[AlertView] | None = None
    png: bytes | None = None
    duplicate: bool = False


class EngineControl(Protocol):
    """What the Telegram bot (and the CLI) may do with the engine."""

    symbols: list[str]

    async def execute(self, command: Command) -> CommandResult: ...
