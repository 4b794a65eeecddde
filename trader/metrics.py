"""Performance statistics of a run: closed trades, the equity curve, and what they add up to.

Pure functions over values (no I/O, no clock): the backtest report and /chart use them.
Statistics of the trades alone (profit factor, SQN, per symbol...) are in trader/trade_stats.py.

Conventions
- Money is `Decimal`. `funding` is a signed cash flow: positive = received, negative = paid.
  A trade's net PnL is `gross_pnl - fees + funding` (as in `commands.PnlView.net`).
- `win_rate` is a fraction (0.6 = 60 %); every `*_pct` field is in percent (12.5 = 12.5 %).
- A run covers one or more `periods` (stretches of time with data); by default the curve's
  span. CAGR, exposure and drawdown durations count only time inside them, so a portfolio of
  runs over separate years is not annualised across the years between them.
- CAGR = (end / start equity) ^ (365 days / covered time) - 1, in percent; Calmar = CAGR /
  max drawdown %. Both are None when undefined: less than a week covered (a day's +10 %
  compounds to 10^15 % a year, which says nothing), no drawdown, an overflow.
- Expectancy is the mean net PnL per trade (`avg_trade`); `expectancy_ratio` divides it by
  the mean loss (freqtrade's "expectancy ratio"). SQN (Van Tharp's system quality number, as
  backtesting.py computes it) = sqrt(trades) x mean net PnL / sample stdev of net PnL.
- Sharpe and Sortino use simple per-period returns of the equity curve, risk-free rate 0.
  The period is the median spacing of the curve's points; crypto futures trade around the
  clock, so a year is 365 days of such periods: `ratio = mean / deviation * sqrt(periods
  per year)`. Sharpe divides by the sample standard deviation (n - 1); Sortino by the
  downside deviation `sqrt(sum(min(r, 0)^2) / n)`. When a ratio is undefined (fewer than
  two returns, no variation, no losing period) it is 0.0, never NaN or infinity. A portfolio
  whose periods have different spacings (a 5m run chained with a 15m one) takes its returns
  on the coarsest spacing's grid (`_return_grid`).
"""

import math
import operator
import statistics
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trader.counted_stats import median_of, sample_stdev
from trader.domain import ZERO
from trader.fast_init import fast_init
from trader.trade_stats import (
    TradeRecord,
    exit_counts,
    exit_pnl,
    expectancy,
    expectancy_ratio,
    profit_factor,
    sqn,
)

__all__ = ["Drawdown", "EquityPoint", "Performance", "TradeRecord", "performance"]

YEAR = timedelta(days=365)
MIN_CAGR_SPAN = timedelta(days=7)
Period = tuple[datetime, datetime]


@fast_init
@dataclass(frozen=True, slots=True)
class EquityPoint:
    at: datetime
    equity: Decimal


@dataclass(frozen=True, slots=True)
class Drawdown:
    """One fall below a running peak: its depth, the peak it fell from, its lowest point,
    and the recovery to the peak (None while still below it)."""
    fraction: float                     # 0.1 = 10 % below the peak
    peak_at: datetime
    bottom_at: datetime
    recovered_at: datetime | None
    duration: timedelta                 # peak -> recovery (or the curve's end), inside periods


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
    exposure_pct: float       # share of the covered time with at least one position open
    profit_factor: float | None   # won / lost; None when nothing was lost
    avg_trade: Decimal        # the expectancy: mean net PnL per trade
    exits: dict[str, int]     # close reason -> count, most frequent first
    period_start: datetime | None
    period_end: datetime | None
    cagr_pct: float | None = None
    calmar: float | None = None
    expectancy_ratio: float | None = None   # avg_trade / mean loss; None when nothing lost
    sqn: float = 0.0
    exit_pnl: dict[str, Decimal] | None = None   # close reason -> net PnL, order of `exits`
    drawdown_start: datetime | None = None       # the deepest drawdown's peak
    drawdown_bottom: datetime | None = None
    drawdown_end: datetime | None = None         # its recovery; None: not recovered
    drawdown_duration: timedelta | None = None   # start -> end (or the period's end)
    covered: timedelta = timedelta(0)            # time inside the run's periods


def performance(curve: Sequence[EquityPoint], trades: Sequence[TradeRecord],
                funding: Decimal = ZERO, *, periods: Sequence[Period] | None = None) -> Performance:
    """Statistics of a run. `funding` is funding not attributed to any trade record (it is
    added to the trades' own funding, and to the net PnL). `periods`: the stretches of time
    the run covered (default: the curve's span, or the trades' span without a curve)."""
    points = sorted(curve, key=_AT)
    period_start, period_end = _period(points, trades)
    if periods is None:
        periods = [(period_start, period_end)] if period_start and period_end else []
    covered = sum((end - start for start, end in periods), timedelta(0))
    grid = _return_grid(points, periods)
    if grid is None:
        returns, periods_per_year = period_returns(points), _periods_per_year(points)
    else:
        returns, periods_per_year = period_returns(_on_grid(points, grid)), YEAR / grid
    gross = sum((trade.gross_pnl for trade in trades), ZERO)
    fees = sum((trade.fees for trade in trades), ZERO)
    total_funding = sum((trade.funding for trade in trades), ZERO) + Decimal(funding)
    wins = sum(1 for trade in trades if trade.net_pnl > 0)
    start_equity = points[0].equity if points else ZERO
    end_equity = points[-1].equity if points else ZERO
    drawdown_fraction, drawdown_money = max_drawdown(points)
    deepest = deepest_drawdown(points, periods)
    cagr = cagr_pct(start_equity, end_equity, covered)
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
        exposure_pct=_exposure(trades, periods, covered) * 100,
        profit_factor=profit_factor(trades),
        avg_trade=expectancy(trades),
        exits=exit_counts(trades),
        period_start=period_start,
        period_end=period_end,
        cagr_pct=cagr,
        calmar=calmar_ratio(cagr, drawdown_fraction * 100),
        expectancy_ratio=expectancy_ratio(trades),
        sqn=sqn(trades),
        exit_pnl=exit_pnl(trades),
        drawdown_start=deepest.peak_at if deepest else None,
        drawdown_bottom=deepest.bottom_at if deepest else None,
        drawdown_end=deepest.recovered_at if deepest else None,
        drawdown_duration=deepest.duration if deepest else None,
        covered=covered,
    )


def cagr_pct(start: Decimal, end: Decimal, covered: timedelta) -> float | None:
    """Compound annual growth in percent over `covered` time; None when undefined."""
    if start <= 0 or covered < MIN_CAGR_SPAN:
        return None
    if end <= 0:
        return -100.0
    exponent = math.log(float(end / start)) * (YEAR / covered)
    if exponent > 700:          # math.exp overflows near 709: growth beyond meaning
        return None
    return (math.exp(exponent) - 1.0) * 100


def calmar_ratio(cagr: float | None, max_drawdown_pct: float) -> float | None:
    """CAGR % / max drawdown %; None without a drawdown or a CAGR."""
    if cagr is None or not max_drawdown_pct > 0:
        return None
    return cagr / max_drawdown_pct


def period_returns(curve: Sequence[EquityPoint]) -> list[float]:
    """Simple returns between consecutive points. A period that starts at zero or negative
    equity has no defined return and is left out.

    The report reads every point: a period whose equity is the very Decimal of the one
    before (a flat account's, trader/balance_keeper.py) returns what the period before
    returned, float(x / x) - 1.0, divided once per run of them; the sign of an equity is
    tested once."""
    returns: list[float] = []
    append = returns.append
    before: Decimal | None = None
    positive = False                    # before > 0
    repeated: float | None = None       # float(before / before) - 1.0, once asked
    for point in curve:
        equity = point.equity
        if equity is before:
            if positive:
                if repeated is None:
                    repeated = float(equity / equity) - 1.0
                append(repeated)
            continue
        if positive:
            append(float(equity / before) - 1.0)    # type: ignore[operator]   # positive
        before, positive, repeated = equity, equity > 0, None
    return returns


def _periods_per_year(curve: Sequence[EquityPoint]) -> float:
    """How many of the curve's periods (its median point spacing) fit in 365 days."""
    spacing = _median_spacing(curve)
    return 0.0 if spacing is None else YEAR / spacing


def _median_spacing(curve: Sequence[EquityPoint]) -> timedelta | None:
    """The median of the positive spacings of the curve's points; None without any."""
    moments = [point.at for point in curve]
    # the spacings counted by value (a replay's points are one interval apart): the
    # median of the positive ones, as statistics.median of them all gives it
    gaps = Counter(map(operator.sub, moments[1:], moments))
    positive = Counter({gap: count for gap, count in gaps.items() if gap > _NO_TIME})
    return median_of(positive) if positive else None


def _return_grid(points: Sequence[EquityPoint], periods: Sequence[Period]) -> timedelta | None:
    """The coarsest of the periods' own point spacings when they differ (a portfolio that
    chains a 5-minute run and a 15-minute one): Sharpe and Sortino then take the returns on
    that grid, so that every return spans the same time and one annualisation fits them
    all (annualised at the median spacing, a 15-minute return counted as a 5-minute one).
    None when the periods share one spacing: every point is used (most runs)."""
    if len(periods) < 2:
        return None
    times = [point.at for point in points]
    spacings = set()
    for start, end in periods:
        inside = points[bisect_left(times, start):bisect_right(times, end)]
        spacing = _median_spacing(inside)
        if spacing is not None:
            spacings.add(spacing)
    return max(spacings) if len(spacings) > 1 else None


def _on_grid(points: Sequence[EquityPoint], grid: timedelta) -> Sequence[EquityPoint]:
    """The points at whole multiples of `grid` since the epoch (a candle closes on its
    interval's grid); all of them when fewer than two are."""
    kept = [point for point in points if (point.at - _EPOCH) % grid == _NO_TIME]
    return kept if len(kept) > 1 else points


def sharpe_ratio(returns: Sequence[float], periods_per_year: float) -> float:
    """Annualised mean / sample standard deviation; 0.0 when undefined."""
    if len(returns) < 2 or periods_per_year <= 0:
        return 0.0
    deviation = sample_stdev(returns)     # statistics.stdev, from the distinct returns
    if not deviation > 0:
        return 0.0
    return _finite(statistics.fmean(returns) / deviation * math.sqrt(periods_per_year))


def sortino_ratio(returns: Sequence[float], periods_per_year: float) -> float:
    """Annualised mean / downside deviation (target 0); 0.0 when undefined."""
    if len(returns) < 2 or periods_per_year <= 0:
        return 0.0
    # sum(min(r, 0.0) ** 2): the squares of the returns below 0 (and of a NaN) alone, the
    # others add 0.0 to an exact sum
    downside = math.sqrt(math.fsum([r ** 2 for r in returns if not r >= 0.0]) / len(returns))
    if not downside > 0:
        return 0.0
    return _finite(statistics.fmean(returns) / downside * math.sqrt(periods_per_year))


_AT = operator.attrgetter("at")
_NO_TIME = timedelta(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    shallow dip. The fraction is `drawdown_series`'s largest value: below one peak it
    only grows with the fall (a rounded division by the same peak is monotonic), so it is
    divided out only where the fall below the current peak is the largest so far."""
    fraction = 0.0
    money = ZERO
    peak: Decimal | None = None
    deepest: Decimal | None = None      # the largest fall below `peak` so far
    last: Decimal | None = None
    for point in curve:
        equity = point.equity
        # The very Decimal of the point before (a flat account's) changes nothing: each
        # of the three below takes a new value only when it is strictly exceeded.
        if equity is last:
            continue
        last = equity
        if peak is None or equity > peak:
            peak, deepest = equity, None
        fall = peak - equity
        if fall > money:                # max(money, fall): the first of equal ones stays
            money = fall
        if peak > 0 and (deepest is None or fall > deepest):
            deepest = fall
            fraction = max(fraction, float(fall / peak))
    return fraction, money


def deepest_drawdown(curve: Sequence[EquityPoint],
                     periods: Sequence[Period] = ()) -> Drawdown | None:
    """The deepest fall below a running peak (the first of equal depth), with its peak,
    bottom and recovery; None when the curve never falls. Its duration counts only time
    inside `periods` (all of it when none are given)."""
    deepest: Drawdown | None = None
    peak: EquityPoint | None = None
    bottom: EquityPoint | None = None
    for point in curve:
        if peak is None or point.equity >= peak.equity:
            if bottom is not None and peak is not None:
                deepest = _deeper(deepest, peak, bottom, point.at, curve, periods)
            peak, bottom = point, None
        elif bottom is None or point.equity < bottom.equity:
            bottom = point
    if bottom is not None and peak is not None:
        deepest = _deeper(deepest, peak, bottom, None, curve, periods)
    return deepest


def _deeper(deepest: Drawdown | None, peak: EquityPoint, bottom: EquityPoint,
            recovered_at: datetime | None, curve: Sequence[EquityPoint],
            periods: Sequence[Period]) -> Drawdown | None:
    fraction = float((peak.equity - bottom.equity) / peak.equity) if peak.equity > 0 else 0.0
    if deepest is not None and fraction <= deepest.fraction:
        return deepest
    until = recovered_at or curve[-1].at
    duration = _time_inside(peak.at, until, periods) if periods else until - peak.at
    return Drawdown(fraction, peak.at, bottom.at, recovered_at, duration)


def _time_inside(start: datetime, end: datetime, periods: Sequence[Period]) -> timedelta:
    """How much of [start, end] lies inside the periods."""
    return sum((min(end, until) - max(start, since) for since, until in periods
                if min(end, until) > max(start, since)), timedelta(0))


def _exposure(trades: Sequence[TradeRecord], periods: Sequence[Period],
              covered: timedelta) -> float:
    """Share of the covered time with at least one trade open."""
    if covered <= timedelta(0):
        return 0.0
    open_time = sum(((end - start) * exposure_fraction(trades, start, end)
                     for start, end in periods), timedelta(0))
    return open_time / covered


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
