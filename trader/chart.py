"""The /chart picture: one symbol's price with the agent's entries and exits and the open
position's stop-loss and take-profit, above the account's equity and drawdown.

    png = trading_chart_png(ChartInputs(symbol, now, prices, trades, open_trade, equity,
                                        traded=True, ever_traded=True))

Made to be read on a phone: 1080 x 1350 px (Telegram shows a 4:5 picture full width), text
28 px and larger, % return and the period in the title. Before the first trade there is no
flat equity line: the picture says "No trades yet". Drawn with matplotlib's Agg canvas on a
private `Figure` (no pyplot, no global state), so it may run in a worker thread.
The drawing style shared with the backtest picture (trader/report_chart.py) is in
trader/chart_style.py.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from trader.chart_style import (
    COLOURS,
    FONT,
    draw_drawdown,
    draw_equity,
    draw_headline,
    format_time_axis,
    money,
    new_figure,
    number_formatter,
    period_text,
    png_bytes,
    px,
    signed_pct,
    thin_curve,
    write_message,
)
from trader.commands import PositionView
from trader.metrics import EquityPoint, TradeRecord, drawdown_series
from trader.report_chart import equity_chart_png

# Every `type: ignore[arg-type]` here is datetimes on the time axis: matplotlib
# draws them through its units system, which its stubs leave out (matplotlib/matplotlib#27140).

# thin_curve and equity_chart_png are the sweep's (trader/sweep_trial.py, sweep_report.py).
__all__ = ["MAX_POINTS", "ChartInputs", "draw_trading_chart", "equity_chart_png", "thin_curve",
           "trading_chart_png"]

MAX_POINTS = 2000   # the phone shows ~1000 pixels; thin_curve keeps every dip
LEGEND_ORDER = ("long entry", "short entry", "exit")


@dataclass(frozen=True, slots=True)
class ChartInputs:
    """What /chart draws. `prices`: (close time, close) of the symbol's recent candles, in
    time order; `trades`: its closed trades; `open_trade`: its open position, if any;
    `equity`: the account's recorded equity; `traded`: the account held a position (any
    symbol) in the window; `ever_traded`: it ever closed one."""
    symbol: str
    now: datetime
    prices: Sequence[tuple[datetime, Decimal]]
    trades: Sequence[TradeRecord]
    open_trade: PositionView | None
    equity: Sequence[EquityPoint]
    traded: bool
    ever_traded: bool


LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}


def trading_chart_png(inputs: ChartInputs) -> bytes:
    """PNG bytes of the /chart picture (see the module docstring)."""
    return png_bytes(draw_trading_chart(inputs), "trading chart")


def draw_trading_chart(inputs: ChartInputs) -> Figure:
    """The /chart figure, not yet rendered (tests read its texts and artists)."""
    figure = new_figure()
    start = window_start(inputs)
    equity = [point for point in inputs.equity if point.at >= start]
    quiet = "No trades in this period" if inputs.ever_traded else "No trades yet"
    equity_now = f"equity {money(inputs.equity[-1].equity)} USDT" if inputs.equity else ""
    if not inputs.prices and not inputs.traded:
        _title(figure, inputs.symbol, quiet, "waiting for the first candles")
        write_message(figure.add_subplot(), quiet, f"{inputs.symbol}: no candles received so far")
    elif not inputs.traded:
        _price_and_note(figure, inputs, quiet, quiet, equity_now)
    elif len(equity) < 2:
        _price_and_note(figure, inputs, _return_text(equity), equity_now,
                        "the equity line starts with the next minute")
    else:
        _price_equity_drawdown(figure, inputs, thin_curve(equity, MAX_POINTS))
    return figure


def _price_and_note(figure: Figure, inputs: ChartInputs, headline: str, note: str,
                    detail: str) -> None:
    """The price panel above a note that replaces an equity line not worth drawing."""
    start = window_start(inputs)
    price_axes, note_axes = figure.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]})
    _layout(figure)
    _title(figure, inputs.symbol, headline, period_text(start, inputs.now))
    _draw_prices(price_axes, inputs)
    format_time_axis(price_axes, start, inputs.now)
    write_message(note_axes, note, detail)


def _price_equity_drawdown(figure: Figure, inputs: ChartInputs,
                           equity: Sequence[EquityPoint]) -> None:
    start = window_start(inputs)
    price_axes, equity_axes, drawdown_axes = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [5, 3, 2]})
    _layout(figure)
    _title(figure, inputs.symbol, _return_text(equity), period_text(start, inputs.now))
    _draw_prices(price_axes, inputs)
    draw_equity(equity_axes, equity)
    draw_drawdown(drawdown_axes, drawdown_series(equity))
    format_time_axis(drawdown_axes, start, inputs.now)


def window_start(inputs: ChartInputs) -> datetime:
    """The left edge of the picture: the first candle shown (else the first equity point)."""
    if inputs.prices:
        return inputs.prices[0][0]
    if inputs.equity:
        return inputs.equity[0].at
    return inputs.now


def _layout(figure: Figure) -> None:
    # right: room for half of a time label at the window's end
    figure.subplots_adjust(left=0.17, right=0.94, top=0.87, bottom=0.07, hspace=0.12)


def _title(figure: Figure, symbol: str, headline: str, period: str) -> None:
    draw_headline(figure, f"{symbol}   {headline}", period)


def _return_text(equity: Sequence[EquityPoint]) -> str:
    if len(equity) < 2 or equity[0].equity <= 0:
        return f"equity {money(equity[-1].equity)}" if equity else "equity not known yet"
    change = float((equity[-1].equity - equity[0].equity) / equity[0].equity * 100)
    return f"{signed_pct(change)}   equity {money(equity[-1].equity)}"


def _draw_prices(axes: Axes, inputs: ChartInputs) -> None:
    """Close prices, entries (triangles), exits (crosses) joined by a line coloured by the
    trade's result, and the open position's entry, stop-loss and take-profit levels. The
    axis follows the prices and trades; a level further from them than their own range
    (a stop set far away by /sl) is named at the panel's edge instead of squashing them."""
    start = window_start(inputs)
    levels: list[float] = [float(price) for _, price in inputs.prices]
    if inputs.prices:
        axes.plot([at for at, _ in inputs.prices], levels,  # type: ignore[arg-type]
                  color=COLOURS.price, linewidth=2.2, zorder=2)
    for trade in inputs.trades:
        if trade.closed_at >= start:
            levels += _draw_trade(axes, trade, start)
    if inputs.open_trade is not None:
        levels += _draw_open_trade(axes, inputs.open_trade, start, _reach(levels))
    axes.set_ylabel("price", fontsize=px(FONT.label))
    axes.grid(True, alpha=0.3)
    axes.tick_params(labelsize=px(FONT.tick))
    if levels:
        low, high = min(levels), max(levels)
        margin = (high - low) * 0.06 or abs(high) * 0.01 or 1.0
        axes.set_ylim(low - margin, high + margin)
        axes.yaxis.set_major_formatter(number_formatter(low, high))
    _legend(axes)


def _reach(levels: list[float]) -> tuple[float, float] | None:
    """The prices' range widened by twice itself on each side (at least 5 % of the price):
    the levels drawn as lines, the prices keeping at least a fifth of the panel. None: no
    prices to judge by (every level is drawn)."""
    if not levels:
        return None
    low, high = min(levels), max(levels)
    span = max(2 * (high - low), abs(high) * 0.05)
    return low - span, high + span


def _draw_trade(axes: Axes, trade: TradeRecord, start: datetime) -> list[float]:
    entry, exit_ = float(trade.entry_price), float(trade.exit_price)
    colour = COLOURS.gain if trade.net_pnl > 0 else COLOURS.loss
    if trade.opened_at >= start:
        axes.plot([trade.opened_at, trade.closed_at], [entry, exit_],  # type: ignore[arg-type]
                  color=colour, linewidth=4, alpha=0.8, zorder=3)
        _entry_marker(axes, trade.side, trade.opened_at, entry)
    axes.plot([trade.closed_at], [exit_],  # type: ignore[arg-type]
              marker="X", markersize=px(26), color=COLOURS.exit, markeredgecolor="white",
              linestyle="none", zorder=5, label="exit")
    return [entry, exit_] if trade.opened_at >= start else [exit_]


def _entry_marker(axes: Axes, side: str, at: datetime, price: float) -> None:
    long = side == "LONG"
    axes.plot([at], [price],  # type: ignore[arg-type]
              marker="^" if long else "v", markersize=px(30),
              color=COLOURS.gain if long else COLOURS.loss, markeredgecolor="white",
              linestyle="none", zorder=5, label="long entry" if long else "short entry")


def _draw_open_trade(axes: Axes, position: PositionView, start: datetime,
                     reach: tuple[float, float] | None) -> list[float]:
    """The open position's levels as lines inside `reach`, named at the panel's bottom or
    top edge (with an arrow) past it; returns the levels drawn as lines."""
    entry = float(position.entry_price)
    if position.opened_at >= start:
        _entry_marker(axes, position.side, position.opened_at, entry)
    edge = blended_transform_factory(axes.transAxes, axes.transData)
    levels = [entry]
    below: list[tuple[str, str]] = []
    above: list[tuple[str, str]] = []
    two_targets = position.first_target_trigger is not None
    for name, price, colour in (("entry", position.entry_price, COLOURS.muted),
                                ("SL", position.stop_trigger, COLOURS.loss),
                                ("TP1", position.first_target_trigger, COLOURS.gain),
                                ("TP2" if two_targets else "TP", position.take_profit_trigger,
                                 COLOURS.gain)):
        if price is None:
            continue
        label = f"{name} {price.normalize():,f}"
        if reach is not None and float(price) < reach[0]:
            below.append((f"{label} ↓", colour))
            continue
        if reach is not None and float(price) > reach[1]:
            above.append((f"{label} ↑", colour))
            continue
        axes.axhline(float(price), color=colour, linewidth=2.4,
                     linestyle=":" if name == "entry" else "--", zorder=1)
        # On the left: the right edge is where the latest prices and markers are.
        axes.text(0.01, float(price), label, transform=edge, ha="left", va="bottom",
                  fontsize=px(FONT.small), color=colour, fontweight="bold", zorder=4,
                  bbox=LABEL_BOX)
        levels.append(float(price))
    for named, y, va in ((below, 0.02, "bottom"), (above, 0.98, "top")):
        if named:      # an edge holds the stop's side or the targets' side: one colour
            axes.text(0.01, y, "   ".join(label for label, _ in named),
                      transform=axes.transAxes, ha="left", va=va, fontsize=px(FONT.small),
                      color=named[0][1], fontweight="bold", zorder=4, bbox=LABEL_BOX)
    return levels


def _legend(axes: Axes) -> None:
    """One legend entry per kind of marker (each trade added its own artists)."""
    handles, labels = axes.get_legend_handles_labels()
    by_label = dict(zip(labels, handles, strict=True))
    shown = [label for label in LEGEND_ORDER if label in by_label]
    if shown:
        # Above the panel: it never hides a price, and loc="best" costs a second per picture.
        axes.legend([by_label[label] for label in shown], shown, loc="lower right",
                    bbox_to_anchor=(1.0, 1.0), fontsize=px(FONT.small), frameon=False,
                    handletextpad=0.2, borderpad=0.1, borderaxespad=0.1, ncols=len(shown),
                    columnspacing=0.8)
