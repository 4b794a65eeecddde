"""The backtest picture: the portfolio's equity, its drawdown, and each symbol's cumulative
net PnL, one column per period of data (bundled candles from 2021 and 2026 sit side by side
instead of two thin slivers at the ends of a five-year axis).

    png = backtest_chart_png(BacktestPicture("BTCUSDT, XRPUSDT", curve, periods, trades))
    png = equity_chart_png(curve, title="trial 3")      # one curve: equity and drawdown

Same phone-sized style as /chart (trader/chart_style.py): 1080 x 1350 px, text >= 28 px.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.lines import Line2D

from trader.chart_style import (
    COLOURS,
    FONT,
    draw_drawdown,
    draw_equity,
    draw_headline,
    drawdown_floor,
    duration_text,
    format_time_axis,
    money,
    new_figure,
    period_text,
    png_bytes,
    px,
    signed_pct,
    thin_curve,
    write_message,
)
from trader.domain import ZERO
from trader.metrics import EquityPoint, Period, TradeRecord, drawdown_series

# Every `type: ignore[arg-type]` here is datetimes on the time axis: matplotlib
# draws them through its units system, which its stubs leave out (matplotlib/matplotlib#27140).

MAX_POINTS = 2000
MIN_COLUMN_SHARE = 0.3   # a short period still gets a readable column


@dataclass(frozen=True, slots=True)
class BacktestPicture:
    """What the backtest picture shows: `title` (the symbols), the (chained) portfolio
    curve, the periods it covers in time order, and every closed trade."""
    title: str
    curve: Sequence[EquityPoint]
    periods: Sequence[Period]
    trades: Sequence[TradeRecord]


def backtest_chart_png(picture: BacktestPicture) -> bytes:
    return png_bytes(draw_backtest_chart(picture), "backtest chart")


def equity_chart_png(curve: Sequence[EquityPoint], title: str = "Equity",
                     detail: str = "") -> bytes:
    """`draw_equity_chart` rendered as PNG bytes."""
    return png_bytes(draw_equity_chart(curve, title, detail), "equity chart")


def draw_equity_chart(curve: Sequence[EquityPoint], title: str = "Equity",
                      detail: str = "") -> Figure:
    """Equity and drawdown of one curve (e.g. a sweep trial): `title` in bold with the final
    equity and its change, `detail` (a trial's settings) under it when given, then the
    period; fewer than two points say "no data yet"."""
    points = sorted(curve, key=lambda point: point.at)
    figure = new_figure()
    lines = [detail] if detail else []
    if len(points) < 2:
        draw_headline(figure, title, *lines, "no data yet")
        write_message(figure.add_subplot(), "No data yet", "fewer than two equity points")
        return figure
    equity_axes, drawdown_axes = figure.subplots(2, 1, sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 1]})
    _layout(figure)
    period = period_text(points[0].at, points[-1].at)
    if detail:      # two lines fit under the title: the settings take the first
        draw_headline(figure, f"{title}   {_change(points)}", detail, period)
    else:
        draw_headline(figure, title, f"{_change(points)}   {_duration(points)}", period)
    thinned = thin_curve(points, MAX_POINTS)
    draw_equity(equity_axes, thinned)
    draw_drawdown(drawdown_axes, drawdown_series(thinned))
    format_time_axis(drawdown_axes, points[0].at, points[-1].at)
    return figure


def draw_backtest_chart(picture: BacktestPicture) -> Figure:
    """The backtest figure, not yet rendered (tests read its texts and artists)."""
    figure = new_figure()
    points = sorted(picture.curve, key=lambda point: point.at)
    periods = list(picture.periods) or ([(points[0].at, points[-1].at)] if points else [])
    if len(points) < 2 or not periods:
        draw_headline(figure, picture.title, "no candles in the run")
        write_message(figure.add_subplot(), "No data", "the run had fewer than two candles")
        return figure
    draw_headline(figure, f"Backtest   {_change(points)}", picture.title,
                  _periods_text(periods))
    grid = figure.add_gridspec(3, len(periods), height_ratios=[4, 2, 3],
                               width_ratios=_column_widths(periods), wspace=0.08, hspace=0.12)
    _layout(figure)
    drawdown = drawdown_series(points)
    deepest = max((fraction for _, fraction in drawdown), default=0.0)
    curves = _symbol_curves(picture.trades, periods)
    columns = [_column(figure, grid, index) for index in range(len(periods))]
    for index, ((start, end), (equity_axes, drawdown_axes, symbol_axes)) in enumerate(
            zip(periods, columns, strict=True)):
        first = index == 0
        inside = [p for p in points if start <= p.at <= end]
        draw_equity(equity_axes, thin_curve(inside, MAX_POINTS), label=first)
        draw_drawdown(drawdown_axes, [(at, f) for at, f in drawdown if start <= at <= end],
                      label=first, deepest=deepest, floor_pct=drawdown_floor(-deepest * 100))
        _draw_symbols(symbol_axes, curves, start, end, label=first)
        format_time_axis(symbol_axes, start, end, max_ticks=3 if len(periods) > 1 else 5)
        for axes in (equity_axes, drawdown_axes, symbol_axes):
            axes.set_xlim(start, end)  # type: ignore[arg-type]
            if not first:
                axes.tick_params(labelleft=False)
    _legend(columns[_widest(periods)][2], curves)
    return figure


def _column(figure: Figure, grid: GridSpec, index: int) -> tuple[Axes, Axes, Axes]:
    """One period's three panels; rows share their y axis with the first column."""
    first = figure.axes[:3] if index else [None, None, None]
    equity_axes = figure.add_subplot(grid[0, index], sharey=first[0])
    drawdown_axes = figure.add_subplot(grid[1, index], sharex=equity_axes, sharey=first[1])
    symbol_axes = figure.add_subplot(grid[2, index], sharex=equity_axes, sharey=first[2])
    for axes in (equity_axes, drawdown_axes):
        axes.tick_params(labelbottom=False)
    return equity_axes, drawdown_axes, symbol_axes


def _layout(figure: Figure) -> None:
    """Room for a title and two lines above the panels."""
    figure.subplots_adjust(left=0.17, right=0.94, top=0.85, bottom=0.07, hspace=0.12)


def _change(points: Sequence[EquityPoint]) -> str:
    first, last = points[0].equity, points[-1].equity
    change = float((last - first) / first * 100) if first > 0 else 0.0
    return f"{signed_pct(change)}   equity {money(last)}"


def _duration(points: Sequence[EquityPoint]) -> str:
    return duration_text(points[-1].at - points[0].at)


def _periods_text(periods: Sequence[Period]) -> str:
    if len(periods) == 1:
        return period_text(*periods[0])
    covered = sum((end - start for start, end in periods), timedelta(0))
    years = sorted({start.year for start, _ in periods} | {end.year for _, end in periods})
    return (f"{len(periods)} periods ({', '.join(str(y) for y in years)}), "
            f"{duration_text(covered)} of data")


def _column_widths(periods: Sequence[Period]) -> list[float]:
    spans = [(end - start).total_seconds() for start, end in periods]
    longest = max(spans) or 1.0
    return [max(span / longest, MIN_COLUMN_SHARE) for span in spans]


def _widest(periods: Sequence[Period]) -> int:
    spans = [end - start for start, end in periods]
    return spans.index(max(spans))


SymbolCurve = tuple[str, list[datetime], list[float]]


def _symbol_curves(trades: Sequence[TradeRecord], periods: Sequence[Period]) -> list[SymbolCurve]:
    """Each symbol's cumulative net PnL: 0 at the start of its first period, a step at
    each close."""
    curves = []
    for symbol in sorted({trade.symbol for trade in trades}):
        own = sorted((t for t in trades if t.symbol == symbol), key=lambda t: t.closed_at)
        start = next((s for s, e in periods if s <= own[0].closed_at <= e), own[0].opened_at)
        times, totals, total = [start], [0.0], ZERO
        for trade in own:
            total += trade.net_pnl
            times.append(trade.closed_at)
            totals.append(float(total))
        curves.append((symbol, times, totals))
    return curves


def _draw_symbols(axes: Axes, curves: Sequence[SymbolCurve], start: datetime, end: datetime,
                  *, label: bool) -> None:
    axes.axhline(0, color="#999999", linewidth=1.2, linestyle="--")
    for index, (symbol, times, totals) in enumerate(curves):
        inside = [(at, value) for at, value in zip(times, totals, strict=True)
                  if start <= at <= end]
        if inside:
            xs = [at for at, _ in inside] + [end]
            ys = [value for _, value in inside] + [inside[-1][1]]
            axes.step(xs, ys,  # type: ignore[arg-type]
                      where="post", linewidth=3, label=symbol,
                      color=COLOURS.series[index % len(COLOURS.series)])
    if label:
        axes.set_ylabel("PnL by symbol", fontsize=px(FONT.label))
    if not curves and label:
        axes.text(0.5, 0.5, "No trades", ha="center", va="center", transform=axes.transAxes,
                  fontsize=px(FONT.label), color=COLOURS.muted)
    axes.grid(True, alpha=0.3)
    axes.tick_params(labelsize=px(FONT.tick))


def _legend(axes: Axes, curves: Sequence[SymbolCurve]) -> None:
    """Every symbol with its final net PnL, even those drawn in another column."""
    if not curves:
        return
    handles = [Line2D([], [], color=COLOURS.series[i % len(COLOURS.series)], linewidth=3)
               for i in range(len(curves))]
    labels = [f"{symbol} {totals[-1]:+,.0f}" for symbol, _, totals in curves]
    axes.legend(handles, labels, loc="upper left", fontsize=px(FONT.small), framealpha=0.85,
                handlelength=1.2, borderpad=0.3, labelspacing=0.2)
