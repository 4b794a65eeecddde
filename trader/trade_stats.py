"""Statistics of closed trades alone (no equity curve): counts, PnL sums, profit factor,
expectancy, SQN, results by exit reason, and the per-symbol table with its TOTAL row.

Pure functions over `TradeRecord` values (trader/metrics.py defines the units;
a trade wins when its net PnL > 0 and loses when < 0, a trade at exactly 0 is neither).

    rows = by_symbol(trades)              # one TradeSummary per symbol, by symbol name
    total = summarize("TOTAL", trades)    # the same figures over every trade
"""

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trader.close_record import traded_size
from trader.domain import ZERO
from trader.fast_init import fast_init
from trader.position import Position

TOTAL = "TOTAL"


@fast_init          # one or two per trade
@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed position, as the report and /pnl count it."""
    symbol: str
    side: str                 # LONG / SHORT
    opened_at: datetime
    closed_at: datetime
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    gross_pnl: Decimal
    fees: Decimal
    funding: Decimal
    net_pnl: Decimal
    reason: str               # a CloseReason value

    @classmethod
    def from_position(cls, pos: Position, funding: Decimal = ZERO) -> "TradeRecord":
        """The record of a closed position; `funding` is what it received (+) or paid (-)."""
        if pos.closed_at is None or pos.exit_price is None:
            raise ValueError(f"position {pos.symbol}/{pos.key} is not closed "
                             f"(closed_at={pos.closed_at}, exit_price={pos.exit_price})")
        funding = Decimal(funding)
        return cls(
            symbol=pos.symbol,
            side=pos.side.label,
            opened_at=pos.opened_at,
            closed_at=pos.closed_at,
            quantity=traded_size(pos),
            entry_price=pos.entry_price,
            exit_price=pos.exit_price,
            gross_pnl=pos.realized_pnl,
            fees=pos.fees,
            funding=funding,
            net_pnl=pos.realized_pnl - pos.fees + funding,
            reason=pos.close_reason.value if pos.close_reason else "UNKNOWN",
        )


@dataclass(frozen=True, slots=True)
class TradeSummary:
    """One row of the per-symbol table (`label` is the symbol, or TOTAL). Money in the quote
    asset (USDT); `win_rate` a fraction."""
    label: str
    trades: int
    wins: int
    losses: int
    win_rate: float
    gross_pnl: Decimal
    fees: Decimal
    funding: Decimal
    net_pnl: Decimal
    expectancy: Decimal             # mean net PnL per trade
    profit_factor: float | None     # None when nothing was lost
    sqn: float                      # 0.0 when undefined (fewer than 2 trades, no spread)
    best: Decimal                   # best net PnL of one trade (0 without trades)
    worst: Decimal                  # worst net PnL of one trade (0 without trades)


def summarize(label: str, trades: Sequence[TradeRecord]) -> TradeSummary:
    """The figures of `trades` under one label."""
    nets = [trade.net_pnl for trade in trades]
    wins = sum(1 for net in nets if net > 0)
    return TradeSummary(
        label=label, trades=len(nets), wins=wins, losses=sum(1 for net in nets if net < 0),
        win_rate=wins / len(nets) if nets else 0.0,
        gross_pnl=sum((trade.gross_pnl for trade in trades), ZERO),
        fees=sum((trade.fees for trade in trades), ZERO),
        funding=sum((trade.funding for trade in trades), ZERO),
        net_pnl=sum(nets, ZERO), expectancy=expectancy(trades),
        profit_factor=profit_factor(trades), sqn=sqn(trades),
        best=max(nets, default=ZERO), worst=min(nets, default=ZERO))


def by_symbol(trades: Sequence[TradeRecord]) -> list[TradeSummary]:
    """One summary per symbol that traded, in symbol order."""
    symbols = sorted({trade.symbol for trade in trades})
    return [summarize(symbol, [t for t in trades if t.symbol == symbol]) for symbol in symbols]


def expectancy(trades: Sequence[TradeRecord]) -> Decimal:
    """Mean net PnL per trade; 0 without trades."""
    if not trades:
        return ZERO
    return sum((trade.net_pnl for trade in trades), ZERO) / len(trades)


def expectancy_ratio(trades: Sequence[TradeRecord]) -> float | None:
    """Expectancy in units of the mean loss (0.25 = a quarter of an average loser won per
    trade); None when nothing was lost."""
    losses = [-trade.net_pnl for trade in trades if trade.net_pnl < 0]
    if not losses:
        return None
    return float(expectancy(trades) / (sum(losses, ZERO) / len(losses)))


def sqn(trades: Sequence[TradeRecord]) -> float:
    """sqrt(n) x mean / sample stdev of the trades' net PnL; 0.0 when undefined."""
    if len(trades) < 2:
        return 0.0
    nets = [float(trade.net_pnl) for trade in trades]
    deviation = statistics.stdev(nets)
    if not deviation > 0:
        return 0.0
    value = math.sqrt(len(nets)) * statistics.fmean(nets) / deviation
    return value if math.isfinite(value) else 0.0


def profit_factor(trades: Sequence[TradeRecord]) -> float | None:
    """Sum of winning net PnL over the sum of losing net PnL; None when nothing was lost."""
    won = sum((trade.net_pnl for trade in trades if trade.net_pnl > 0), ZERO)
    lost = -sum((trade.net_pnl for trade in trades if trade.net_pnl < 0), ZERO)
    return float(won / lost) if lost > 0 else None


def exit_counts(trades: Sequence[TradeRecord]) -> dict[str, int]:
    """Close reason -> number of trades, most frequent first, ties by name."""
    counts = Counter(trade.reason for trade in trades)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def exit_pnl(trades: Sequence[TradeRecord]) -> dict[str, Decimal]:
    """Close reason -> summed net PnL, in the order of `exit_counts`."""
    return {reason: sum((t.net_pnl for t in trades if t.reason == reason), ZERO)
            for reason in exit_counts(trades)}
