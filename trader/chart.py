"""The equity chart: a PNG of the equity curve and its drawdown, for /chart and the backtest.

Rendered with matplotlib's Agg canvas on a private `Figure` (no pyplot, no display, no
global state), sized to read well on a phone: 8 x 5 in at 110 dpi = 880 x 550 px.
"""

import io
from collections.abc import Sequence

from loguru import logger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from trader.metrics import EquityPoint, drawdown_series

FIGURE_SIZE_IN = (8.0, 5.0)
DPI = 110
EQUITY_COLOUR = "#1f6fb4"
DRAWDOWN_COLOUR = "#c0392b"
# Agg draws a few thousand points as fast as a million and the phone shows ~900 pixels;
# longer curves are thinned by keeping each bucket's lowest and highest point.
MAX_POINTS = 4000


def equity_chart_png(curve: Sequence[EquityPoint], title: str = "Equity") -> bytes:
    """PNG bytes: equity (top) and drawdown % below the running peak (bottom), sharing the
    time axis. Fewer than two points render a PNG that says "no data yet"."""
    points = sorted(curve, key=lambda point: point.at)
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI)
    FigureCanvasAgg(figure)
    if len(points) < 2:
        _draw_no_data(figure, title)
    else:
        _draw_curves(figure, thin_curve(points, MAX_POINTS), title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    logger.debug("equity chart rendered points={} bytes={}", len(points), len(png))
    return png


def _draw_no_data(figure: Figure, title: str) -> None:
    axes = figure.add_subplot()
    axes.set_axis_off()
    figure.suptitle(title, x=0.11, ha="left", fontsize=13)
    axes.text(0.5, 0.5, "no data yet", ha="center", va="center", fontsize=20, color="#666666",
              transform=axes.transAxes)


def _draw_curves(figure: Figure, points: Sequence[EquityPoint], title: str) -> None:
    times = [point.at for point in points]
    equity = [float(point.equity) for point in points]
    drawdown_pct = [-fraction * 100 for _, fraction in drawdown_series(points)]
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    figure.subplots_adjust(left=0.11, right=0.97, top=0.9, bottom=0.08, hspace=0.08)

    change = equity[-1] - equity[0]
    figure.suptitle(f"{title}   {equity[-1]:,.2f}  ({change:+,.2f})", x=0.11, ha="left",
                    fontsize=13)
    top.plot(times, equity, color=EQUITY_COLOUR, linewidth=1.6)
    top.axhline(equity[0], color="#999999", linewidth=0.8, linestyle="--")
    top.set_ylabel("equity", fontsize=10)
    top.grid(True, alpha=0.3)
    top.tick_params(labelsize=9)

    bottom.fill_between(times, drawdown_pct, 0, color=DRAWDOWN_COLOUR, alpha=0.35, linewidth=0)
    bottom.plot(times, drawdown_pct, color=DRAWDOWN_COLOUR, linewidth=1.0)
    deepest = min(drawdown_pct)
    bottom.set_ylim(min(deepest * 1.15, -0.5), 0)
    bottom.set_ylabel("drawdown %", fontsize=10)
    bottom.grid(True, alpha=0.3)
    bottom.tick_params(labelsize=9)
    bottom.text(0.01, 0.08, f"max {deepest:.2f} %", transform=bottom.transAxes, fontsize=9,
                color=DRAWDOWN_COLOUR)

    locator = AutoDateLocator(minticks=3, maxticks=7)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def thin_curve(points: Sequence[EquityPoint], limit: int) -> list[EquityPoint]:
    """At most about `limit` points that keep the curve's shape: the first and last point,
    and each bucket's lowest and highest point in time order (so no dip disappears)."""
    if len(points) <= limit:
        return list(points)
    buckets = max(limit // 2 - 1, 1)
    size = (len(points) - 2) / buckets
    kept = [points[0]]
    for index in range(buckets):
        bucket = points[1 + int(index * size): 1 + int((index + 1) * size)]
        if not bucket:
            continue
        low = min(bucket, key=lambda point: point.equity)
        high = max(bucket, key=lambda point: point.equity)
        kept.extend(sorted({low, high}, key=lambda point: point.at))
    kept.append(points[-1])
    return kept
