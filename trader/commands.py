"""Operator commands and the views the engine answers them with.

Commands (from Telegram or the CLI) are values put on the engine's queue; the engine is
the single writer and resolves each command's future with a `CommandResult`. Read-only
commands (status, positions, pnl, history tables, logs, ...) are answered from the engine's
current view without waiting for the tick. A command id makes a repeated button press a no-op.

Money is in USDT; every PnL the operator sees is realised NET: gross - fees + funding.
Fractions (`*_fraction`) are plain ratios (0.0049 = 0.49 %).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class CommandKind(StrEnum):
    STATUS = "status"
    POSITIONS = "positions"
    BALANCE = "balance"
    PNL = "pnl"              # period: day | week | month | all
    DAILY = "daily"          # count: how many days (table)
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    PERFORMANCE = "performance"
    TRADES = "trades"        # count: the last n closed trades
    CHART = "chart"
    ALERTS = "alerts"
    LOGS = "logs"            # count: the last n warnings and errors
    VERSION = "version"
    CONFIG = "config"
    CLOSE = "close"          # symbol or ALL
    SHUTDOWN = "shutdown"    # flatten or keep protected; then sleep
    WAKE = "wake"
    PAUSE = "pause"          # entries only; optional symbol and duration
    RESUME = "resume"        # optional symbol
    LONG = "long"            # symbol: a manual entry, planned and protected like a signal's
    SHORT = "short"
    UNLOCK = "unlock"        # symbol: end its cooldown, clear its breakers
    SL = "sl"                # symbol, price: move the stop-loss

    @property
    def mutating(self) -> bool:
        return self in MUTATING


MUTATING = frozenset({CommandKind.CLOSE, CommandKind.SHUTDOWN, CommandKind.WAKE,
                      CommandKind.PAUSE, CommandKind.RESUME, CommandKind.LONG,
                      CommandKind.SHORT, CommandKind.UNLOCK, CommandKind.SL})
PERIOD_KINDS = {CommandKind.DAILY: "day", CommandKind.WEEKLY: "week",
                CommandKind.MONTHLY: "month"}


ALL_SYMBOLS = "ALL"


@dataclass(frozen=True, slots=True)
class Command:
    kind: CommandKind
    command_id: str                      # unique per user action; repeats are ignored
    issued_at: datetime
    symbol: str | None = None            # CLOSE: a symbol or ALL_SYMBOLS; LONG/SHORT/UNLOCK,
                                         # PAUSE/RESUME of one symbol
    flatten: bool = False                # SHUTDOWN: close everything first
    duration: timedelta | None = None    # PAUSE
    period: str = "day"                  # PNL: day | week | month | all
    count: int | None = None             # DAILY/WEEKLY/MONTHLY, TRADES, LOGS: how many rows
    price: Decimal | None = None         # SL: the new stop-loss trigger price
    auto: bool = False                   # SL: back to the agent's own level (no price)
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
    take_profit_trigger: Decimal | None   # the target (TP2 of the two-TP plan)
    take_profit_attached: bool
    state: str
    opened_at: datetime
    leverage: int
    age: timedelta | None = None          # time in trade when the view was taken
    first_target_trigger: Decimal | None = None   # the two-TP plan's TP1, until it fills
    first_target_attached: bool = False
    # Where the stop is being moved while the live one (`stop_trigger`) still protects: a
    # replacement not yet live (new-first: refused and retried, or placed this tick).
    stop_moving_to: Decimal | None = None
    stop_past_liquidation: bool = False   # the stop cannot trigger before the liquidation
    # Stop placements sent whose answer is not in while no stop protects (lost ones not
    # known never placed yet: trader/stop_backup.py): what the agent is waiting for.
    stop_unanswered: int = 0
    # the size is the user-data stream's word, told inside a Retry-After (an IP ban): the
    # position is read over REST once requests resume (trader/exchange_view.py `heard_size`)
    size_heard: bool = False
    # a position on the account the agent does not manage (trader/account_positions.py):
    # no targets, no state of the agent's; `seen_ago`, how old the exchange's word on it is
    managed: bool = True
    seen_ago: timedelta | None = None

    @property
    def pnl_fraction(self) -> Decimal:
        """The price move in the position's favour since entry (0.0049 = +0.49 %)."""
        if self.entry_price <= 0:
            return Decimal(0)
        sign = -1 if self.side == "SHORT" else 1
        return (self.mark_price - self.entry_price) / self.entry_price * sign

    def move_to(self, trigger: Decimal | None) -> Decimal | None:
        """How far the mark must move to reach `trigger`, as a signed fraction of the mark
        (a long's stop below: negative)."""
        if trigger is None or self.mark_price <= 0:
            return None
        return (trigger - self.mark_price) / self.mark_price


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
    paused_symbols: dict[str, datetime | None] = field(default_factory=dict)  # None: /resume
    exchange_failures: int = 0        # units of work failed on the exchange in a row (the
                                      # view is older: trader/guard_state.py `api_failures`)
    # when `equity` was read (the exchange's, at its marks then; the positions' PnL is at the
    # mark of `now`); None: not read yet
    equity_read_at: datetime | None = None
    now: datetime | None = None
    # a position closed after `equity` was read (not read again since: a Retry-After)
    equity_before_close: bool = False
    # why entries are refused on a symbol where no line above says it: a leftover order of
    # ours the exchange still lists and will not cancel (trader/position_keeper.py)
    entry_blocks: list[str] = field(default_factory=list)
    last_error_at: datetime | None = None     # when `last_error` happened
    # the exchange's REST API not answering now: "Binance REST not answering since 12:08:46
    # UTC (HTTP 503 x 30); last: open orders: code=-1000 ..." (trader/exchange/rest_answers.py)
    exchange_outage: str | None = None


@dataclass(frozen=True, slots=True)
class PnlView:
    """Realised PnL of a period: trades closed in it, funding paid or received in it."""
    period: str
    gross: Decimal            # price PnL of the trades closed in the period
    fees: Decimal             # their trading fees (positive = paid)
    funding: Decimal          # funding in the period (positive = received)
    trades: int
    wins: int                 # trades whose net PnL (with their own funding) is > 0
    unknown: int = 0          # closed in the period, result unknown (fills not read): not counted
    # fees of the counted trades charged in BNB whose price could not be read at their close
    # ("0.0416 BNB"; trader/fee_value.py): in neither `fees` nor `net`; "" when none
    unvalued_fees: str = ""

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def net(self) -> Decimal:
        """Realised, net of fees and funding: the one meaning of "realised" everywhere."""
        return self.gross - self.fees + self.funding


@dataclass(frozen=True, slots=True)
class BalanceView:
    wallet: Decimal           # cash: deposits + realised PnL - fees + funding
    unrealized_pnl: Decimal
    equity: Decimal
    free_margin: Decimal
    read_at: datetime | None  # when the exchange was last asked (None: not yet)
    today: PnlView            # realised since 00:00 UTC
    open_positions: int


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """One row of /daily, /weekly, /monthly."""
    start: date               # first day of the period (UTC)
    trades: int
    net: Decimal              # realised net of fees and funding
    fraction: Decimal | None  # net / wallet at the period's start; None when unknown


@dataclass(frozen=True, slots=True)
class PeriodTable:
    unit: str                 # day | week | month
    rows: list[PeriodRow]     # newest first


@dataclass(frozen=True, slots=True)
class PerformanceRow:
    """One symbol's closed trades (/performance); `symbol` "" = funding no trade explains."""
    symbol: str
    trades: int
    wins: int
    net: Decimal
    fees: Decimal
    funding: Decimal
    best: Decimal
    worst: Decimal
    # fees charged in another asset whose price was not read at the close ("0.0416 BNB"):
    # not in `net` nor `fees`, and their trades not counted in `wins` (trader/fee_value.py)
    unvalued_fees: str = ""


@dataclass(frozen=True, slots=True)
class TradeView:
    """One closed trade (/trades); prices rounded to the symbol's tick. The exit price and the
    result are None when the closing fills could not be read (trader/closing.py)."""
    symbol: str
    side: str
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal | None
    opened_at: datetime
    closed_at: datetime
    net: Decimal | None           # gross - fees + the funding paid while it was open
    net_fraction: Decimal | None  # net / entry notional
    reason: str
    unvalued_fees: str = ""       # fees in BNB not valued in USDT, not in `net` ("0.0416 BNB")


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    level: str                # WARNING / ERROR / CRITICAL
    origin: str               # module
    message: str


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
    balance: BalanceView | None = None
    table: PeriodTable | None = None
    performance: list[PerformanceRow] | None = None
    trades: list[TradeView] | None = None
    logs: list[LogLine] | None = None
    settings: dict[str, str] | None = None     # /config: env name -> value (masked)
    png: bytes | None = None
    duplicate: bool = False
    waiting: bool = False     # not done yet, and the agent finishes it by itself (a close
                              # held back by the exchange's Retry-After is sent after it)
    unchanged: bool = False   # ok, and nothing needed doing (a /wake while awake)


@dataclass(frozen=True, slots=True)
class StopCheck:
    """A /sl judged (trader/control_stop.py `judge_stop`): `refusal` when the stop cannot
    move to that level, `already` when it is there; either is said at once, nothing to
    confirm. Else the question's `distance` from the mark ("4.2 % below the mark") and
    `warning` when the agent's own rules move the stop at the next tick ("the trailing stop
    is on (...): the next tick moves the stop back to 100,694; it only tightens"). All empty
    when the agent cannot tell yet."""
    refusal: str = ""
    already: str = ""
    distance: str = ""
    warning: str = ""
    level: Decimal | None = None     # /sl auto: the agent's level the stop goes back to

    @property
    def answer(self) -> str:
        """What is said at once instead of the question ("" when the question is asked)."""
        return self.refusal or self.already


class EngineControl(Protocol):
    """What the Telegram bot (and the CLI) may do with the engine."""

    symbols: list[str]

    async def execute(self, command: Command) -> CommandResult: ...

    def closable(self, symbol: str) -> list[str]:
        """The symbols a /close of `symbol` (or ALL_SYMBOLS) could act on, as the agent last
        saw them; [] answers "nothing to close" without a confirmation."""
        ...

    def check_stop(self, symbol: str, price: Decimal | None) -> StopCheck:
        """/sl `symbol` `price` (None: /sl `symbol` auto) judged from what the agent saw
        last, before the confirmation: answered at once (`StopCheck.answer`), or asked with its distance
        from the mark and what the agent's own rules then do to it. The same judgement
        runs again when the button is pressed."""
        ...

    def already_decided(self, kind: CommandKind, symbol: str | None) -> list[str]:
        """What a command that asks for a confirmation would answer now, when its outcome
        is already decided (a /long while asleep, an /unlock with nothing locked; /sl:
        `check_stop`): said
        at once instead of the question. [] when the question is worth asking. The same
        check runs again when the button is pressed (the state may change in between)."""
        ...
