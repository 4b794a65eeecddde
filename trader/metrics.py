"""Performance statistics of a run: closed trades, the equity curve, and what they add up to.

Pure functions over values (no I/O, no clock): the backtest report, /pnl and /chart use them.

Conventions
- Money is `Decimal`. `funding` is a signed cash flow: positive = received, negative = paid.
  A trade's net PnL is `gross_pnl - fees + funding` (as in `commands.PnlView.net`).
- `win_rate` is a fraction (0.6 = 60 %); every `*_pct` field is in percent (12.5 = 12.5 %).
- Sharpe and Sortino use simple per-period returns of the equity curve, risk-free rate 0.
  The period is the median spacing of the curve's points; crypto futures trade around the
  clock, so a year is 365 days of such periods: `ratio = mean / deviation * sqrt(periods
  per year)`. Sharpe divides by the sample standard deviation (n - 1); Sortino by the
  downside deviation `sqrt(sum(min(r, 0)^2) / n)`. When a ratio is undefined (fewer than
  two returns, no variation, no losing period) it is 0.0, never NaN or infinity.
"""

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from trader.domain import ZERO
from trader.position import Position

YEAR = timedelta(days=365)


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
            quantity=pos.initial_quantity if pos.initial_quantity > 0 else pos.quantity,
            entry_price=pos.entry_price,
            exit_price=pos.exit_price,
            gross_pnl=pos.realized_pnl,
            fees=pos.fees,
            funding=funding,
            net_pnl=pos.realized_pnl - pos.fees + funding,
            reason=pos.close_reason.value if pos.close_reason else "UNKNOWN",
        )


@dataclass(frozen=True, slots=True)
class EquityPoint:
    at: datetime
    equity: Decimal


@dataclass(frozen=True, slots=True)
class Performance:
    """What a run adds up to. See the module docstring for units and definitions."""
    trades: int
    wins: int                 # net PnL > 0
    losses: int               # net PnL < 0 (a trade at exactly 0 is neither)
    win_rate: float           # fraction of trades that won
    gross_pnl: Decimal
    fees: Decimal
    funding: Decimal
    net_pnl: Decimal          # gross - fees + funding
    start_equity: Decimal
    end_equity: Decimal
    return_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float   # deepest fall below a running peak, percent of that peak
    max_drawdown: Decimal     # deepest fall below a running peak, in money
    exposure_pct: float       # share of the period with at least one position open
    profit_factor: float | None   # won / lost; None when nothing was lost
    avg_trade: Decimal        # mean net PnL per trade
    exits: dict[str, int]     # close reason -> count, most frequent first
    period_start: datetime | None
    period_end: datetime | None


class PeriodPnl(NamedTuple):
    """Realised results of the trades closed in a period (unpacks as a 5-tuple)."""
    realized: Decimal         # gross realised PnL
    fees: Decimal
    funding: Decimal
    trades: int
    wins: int


def performance(curve: Sequence[EquityPoint], trades: Sequence[TradeRecord],
                funding: Decimal = ZERO) -> Performance:
    """Statistics of a run. `funding` is funding not attributed to any trade record (it is
    added to the trades' own funding, and to the net PnL)."""
    points = sorted(curve, key=lambda point: point.at)
    period_start, period_end = _period(points, trades)
    returns = period_returns(points)
    periods_per_year = _periods_per_year(points)
    gross = sum((trade.gross_pnl for trade in trades), ZERO)
    fees = sum((trade.fees for trade in trades), ZERO)
    total_funding = sum((trade.funding for trade in trades), ZERO) + Decimal(funding)
    wins = sum(1 for trade in trades if trade.net_pnl > 0)
    start_equity = points[0].equity if points else ZERO
    end_equity = points[-1].equity if points else ZERO
    drawdown_fraction, drawdown_money = max_drawdown(points)
    return Performance(
        trades=len(trades),
        wins=wins,
        losses=sum(1 for trade in trades if trade.net_pnl < 0),
        win_rate=wins / len(trades) if trades else 0.0,
        gross_pnl=gross,
        fees=fees,
        funding=total_funding,
        net_pnl=gross - fees + total_funding,
        start_equity=start_equity,
        end_equity=end_equity,
        return_pct=_return_pct(start_equity, end_equity),
        sharpe=sharpe_ratio(returns, periods_per_year),
        sortino=sortino_ratio(returns, periods_per_year),
        max_drawdown_pct=drawdown_fraction * 100,
        max_drawdown=drawdown_money,
        exposure_pct=exposure_fraction(trades, period_start, period_end) * 100,
        profit_factor=profit_factor(trades),
        avg_trade=_average_net(trades),
        exits=exit_counts(trades),
        period_start=period_start,
        period_end=period_end,
    )


def period_returns(curve: Sequence[EquityPoint]) -> list[float]:
    """Simple returns between consecutive points. A period that starts at zero or negative
    equity has no defined return and is left out."""
    return [float(after.equity / before.equity) - 1.0
            for before, after in zip(curve, curve[1:], strict=False)
            if before.equity > 0]


def _periods_per_year(curve: Sequence[EquityPoint]) -> float:
    """How many of the curve's periods (its median point spacing) fit in 365 days."""
    gaps = [after.at - before.at for before, after in zip(curve, curve[1:], strict=False)]
    positive = [gap for gap in gaps if gap > timedelta(0)]
    if not positive:
        return 0.0
    return YEAR / statistics.median(positive)


def sharpe_ratio(returns: Sequence[float], periods_per_year: float) -> float:
    """Annualised mean / sample standard deviation; 0.0 when undefined."""
    if len(returns) < 2 or periods_per_year <= 0:
        return 0.0
    deviation = statistics.stdev(returns)
    if not deviation > 0:
        return 0.0
    return _finite(statistics.fmean(returns) / deviation * math.sqrt(periods_per_year))


def sortino_ratio(returns: Sequence[float], periods_per_year: float) -> float:
    """Annualised mean / downside deviation (target 0); 0.0 when undefined."""
    if len(returns) < 2 or periods_per_year <= 0:
        return 0.0
    downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    if not downside > 0:
        return 0.0
    return _finite(statistics.fmean(returns) / downside * math.sqrt(periods_per_year))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def drawdown_series(curve: Sequence[EquityPoint]) -> list[tuple[datetime, float]]:
    """For each point, the fraction of equity below the running peak (0.1 = 10 % down)."""
    series: list[tuple[datetime, float]] = []
    peak: Decimal | None = None
    for point in curve:
        peak = point.equity if peak is None else max(peak, point.equity)
        fraction = float((peak - point.equity) / peak) if peak > 0 else 0.0
        series.append((point.at, fraction))
    return series


def max_drawdown(curve: Sequence[EquityPoint]) -> tuple[float, Decimal]:
    """(deepest fraction below a running peak, largest money fall from a running peak).
    The two can come from different dips: a small account's deep dip and a big one's
    shallow dip."""
    fraction = max((value for _, value in drawdown_series(curve)), default=0.0)
    money = ZERO
    peak: Decimal | None = None
    for point in curve:
        peak = point.equity if peak is None else max(peak, point.equity)
        money = max(money, peak - point.equity)
    return fraction, money


def exposure_fraction(trades: Sequence[TradeRecord], start: datetime | None,
                      end: datetime | None) -> float:
    """Share of [start, end] during which at least one trade was open (overlaps count once)."""
    if start is None or end is None or end <= start:
        return 0.0
    intervals = sorted((max(trade.opened_at, start), min(trade.closed_at, end))
                       for trade in trades)
    covered = timedelta(0)
    run_start: datetime | None = None
    run_end: datetime | None = None
    for opened, closed in intervals:
        if closed <= opened:
            continue
        if run_end is None or opened > run_end:
            if run_start is not None and run_end is not None:
                covered += run_end - run_start
            run_start, run_end = opened, closed
        else:
            run_end = max(run_end, closed)
    if run_start is not None and run_end is not None:
        covered += run_end - run_start
    return covered / (end - start)


def profit_factor(trades: Sequence[TradeRecord]) -> float | None:
    """Sum of winning net PnL over the sum of losing net PnL; None when nothing was lost."""
    won = sum((trade.net_pnl for trade in trades if trade.net_pnl > 0), ZERO)
    lost = -sum((trade.net_pnl for trade in trades if trade.net_pnl < 0), ZERO)
    return float(won / lost) if lost > 0 else None


def exit_counts(trades: Sequence[TradeRecord]) -> dict[str, int]:
    """Close reason -> number of trades, most frequent first, ties by name."""
    counts = Counter(trade.reason for trade in trades)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def pnl_for_period(trades: Sequence[TradeRecord], since: datetime | None) -> PeriodPnl:
    """Realised PnL, fees, funding, trade and win counts of trades closed at or after
    `since` (all trades when None)."""
    chosen = [trade for trade in trades if since is None or trade.closed_at >= since]
    return PeriodPnl(
        realized=sum((trade.gross_pnl for trade in chosen), ZERO),
        fees=sum((trade.fees for trade in chosen), ZERO),
        funding=sum((trade.funding for trade in chosen), ZERO),
        trades=len(chosen),
        wins=sum(1 for trade in chosen if trade.net_pnl > 0),
    )


def _period(curve: Sequence[EquityPoint],
            trades: Sequence[TradeRecord]) -> tuple[datetime | None, datetime | None]:
    """The curve's span; the trades' span when there is no curve."""
    if curve:
        return curve[0].at, curve[-1].at
    if trades:
        return min(trade.opened_at for trade in trades), max(trade.closed_at for trade in trades)
    return None, None


def _return_pct(start: Decimal, end: Decimal) -> float:
    return float((end - start) / start * 100) if start > 0 else 0.0


def _average_net(trades: Sequence[TradeRecord]) -> Decimal:
    if not trades:
        return ZERO
    return sum((trade.net_pnl for trade in trades), ZERO) / len(trades)
