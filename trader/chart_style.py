"""Drawing style and pieces shared by the /chart picture (trader/chart.py) and the backtest
picture (trader/report_chart.py): phone-sized figures, large type, the equity and drawdown
panels, readable time and number axes, and PNG encoding.

Sizes are given in pixels of the final PNG (`px(30)` = a 30 px font): 1080 px wide, the
width a phone shows without scaling, and no text smaller than 28 px.
"""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from loguru import logger
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure, SubFigure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MaxNLocator

from trader.metrics import EquityPoint
from trader.report_text import duration_text

# Every `type: ignore[arg-type]` here is datetimes on the time axis: matplotlib
# draws them through its units system, which its stubs leave out (matplotlib/matplotlib#27140).

DPI = 100
WIDTH_PX, HEIGHT_PX = 1080, 1350


@dataclass(frozen=True, slots=True)
class Fonts:
    """Text sizes in pixels."""
    title: int = 46
    label: int = 32
    tick: int = 30
    small: int = 28
    message: int = 64


@dataclass(frozen=True, slots=True)
class Colours:
    price: str = "#37474f"
    equity: str = "#1f6fb4"
    drawdown: str = "#c0392b"
    gain: str = "#1e8e3e"
    loss: str = "#d93025"
    exit: str = "#212121"
    muted: str = "#666666"
    series: tuple[str, ...] = ("#e67e22", "#8e44ad", "#16a085", "#d4ac0d", "#2c3e50",
                               "#7f8c8d", "#c0392b", "#1f6fb4")   # the equity's blue last


FONT = Fonts()
COLOURS = Colours()


def px(pixels: float) -> float:
    """Points for a size in pixels at the figures' DPI (matplotlib sizes text in points)."""
    return pixels * 72 / DPI


def new_figure() -> Figure:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, what: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    logger.debug("{} rendered bytes={}", what, len(png))
    return png


def draw_headline(figure: Figure, title: str, *lines: str) -> None:
    """The picture's title (bold) and up to two lines under it, each shrunk to fit the
    width (never below the smallest size)."""
    heights = (0.975, 0.935, 0.905)
    fit_width(figure.text(0.03, heights[0], title, fontsize=px(FONT.title), fontweight="bold",
                          va="top"), figure)
    for line, height in zip(lines, heights[1:], strict=False):
        fit_width(figure.text(0.03, height, line, fontsize=px(FONT.label), color=COLOURS.muted,
                              va="top"), figure)


def fit_width(text: Text, figure: Figure | SubFigure, share: float = 0.95) -> None:
    """Make `text` smaller (in steps of 2 px, down to FONT.small) until it lies inside the
    middle `share` of the figure's width."""
    renderer = figure.canvas.get_renderer()   # type: ignore[attr-defined]
    margin = (1 - share) / 2 * WIDTH_PX
    # (cast: a Text's size is its points, a float; matplotlib's stub adds str)
    while cast(float, text.get_fontsize()) - px(2) >= px(FONT.small) - 1e-9:
        extent = text.get_window_extent(renderer)
        if extent.x0 >= margin and extent.x1 <= WIDTH_PX - margin:
            return
        text.set_fontsize(cast(float, text.get_fontsize()) - px(2))


def write_message(axes: Axes, headline: str, detail: str) -> None:
    """A panel that says something instead of drawing a meaningless line."""
    axes.set_axis_off()
    centre = (0.5, 0.55 if headline else 0.5)
    figure = axes.get_figure()
    assert figure is not None       # a panel of a figure
    if headline:
        fit_width(axes.text(*centre, headline, ha="center", va="center",
                            fontsize=px(FONT.message), color=COLOURS.muted,
                            transform=axes.transAxes), figure)
    fit_width(axes.annotate(detail, centre, xycoords="axes fraction", ha="center", va="center",
                            xytext=(0, -px(FONT.message * 1.3) if headline else 0),
                            textcoords="offset points", fontsize=px(FONT.label),
                            color=COLOURS.muted), figure)


def draw_equity(axes: Axes, points: Sequence[EquityPoint], *, label: bool = True) -> None:
    equity = [float(point.equity) for point in points]
    axes.plot([point.at for point in points], equity,  # type: ignore[arg-type]
              color=COLOURS.equity, linewidth=3)
    axes.axhline(equity[0], color="#999999", linewidth=1.2, linestyle="--")
    if label:
        axes.set_ylabel("equity", fontsize=px(FONT.label))
    axes.grid(True, alpha=0.3)
    axes.tick_params(labelsize=px(FONT.tick))
    axes.yaxis.set_major_formatter(number_formatter(min(equity), max(equity)))


def draw_drawdown(axes: Axes, drawdown: Sequence[tuple[datetime, float]], *,
                  label: bool = True, deepest: float | None = None,
                  floor_pct: float | None = None) -> None:
    """Percent below the running peak (`drawdown`: (time, fraction) pairs, as
    `metrics.drawdown_series` gives them) as a red area, with "max -x.xx %" or "no drawdown".
    `deepest` (a fraction) labels panels that show only part of a curve; `floor_pct`
    (negative) gives panels side by side one lower limit."""
    times = [at for at, _ in drawdown]
    drawdown_pct = [-fraction * 100 for _, fraction in drawdown]
    deepest_pct = -deepest * 100 if deepest is not None else min(drawdown_pct, default=0.0)
    axes.fill_between(times, drawdown_pct, 0,  # type: ignore[arg-type]
                      color=COLOURS.drawdown, alpha=0.35, linewidth=0)
    axes.plot(times, drawdown_pct, color=COLOURS.drawdown, linewidth=1.6)  # type: ignore[arg-type]
    axes.set_ylim(floor_pct if floor_pct is not None else drawdown_floor(deepest_pct), 0)
    if label:
        axes.set_ylabel("drawdown", fontsize=px(FONT.label))
    axes.grid(True, alpha=0.3)
    axes.tick_params(labelsize=px(FONT.tick))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g} %"))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=3))
    if label:
        text = f"max {deepest_pct:.2f} %" if deepest_pct < -0.005 else "no drawdown"
        axes.text(0.01, 0.06, text, transform=axes.transAxes, fontsize=px(FONT.small),
                  color=COLOURS.drawdown, fontweight="bold")


def drawdown_floor(deepest_pct: float) -> float:
    """The drawdown panel's lower limit: a little below the deepest point, at least -0.5 %."""
    return min(deepest_pct * 1.2, -0.5)


def format_time_axis(axes: Axes, start: datetime, end: datetime, max_ticks: int = 5) -> None:
    """Dates on the bottom axis without overlap at phone sizes (ConciseDateFormatter keeps
    the labels short: '09:00', 'Mar 04')."""
    if end > start:
        axes.set_xlim(start, end)  # type: ignore[arg-type]
    locator = AutoDateLocator(minticks=2, maxticks=max_ticks)
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator)
    axes.xaxis.set_major_formatter(formatter)
    axes.tick_params(axis="x", labelsize=px(FONT.tick))
    axes.xaxis.get_offset_text().set_fontsize(px(FONT.small))


def number_formatter(low: float, high: float) -> FuncFormatter:
    """Tick labels with thousands separators and as many decimals as the range needs
    (no '1e4' offsets a phone reader has to decode)."""
    span = abs(high - low) or abs(high) or 1.0
    decimals = max(0, min(8, 1 - math.floor(math.log10(span / 4))))
    return FuncFormatter(lambda value, _: f"{value:,.{decimals}f}")


def money(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.01"))
    return f"{abs(rounded) if rounded == 0 else rounded:,.2f}"


def signed_pct(value: float) -> str:
    return f"{0.0 if abs(value) < 0.005 else value:+.2f} %"


def period_text(start: datetime, end: datetime) -> str:
    """'2024-03-01 09:00 -> 03-02 10:00 UTC (25 h)': the span shown, in words."""
    same_year = start.year == end.year
    end_format = "%m-%d %H:%M" if same_year else "%Y-%m-%d %H:%M"
    return f"{start:%Y-%m-%d %H:%M} → {end:{end_format}} UTC ({duration_text(end - start)})"


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
