"""The /chart picture (trader/chart.py): phone-sized, large type, price with the trades and
the open position's levels above equity and drawdown, and a "no trades yet" state.

Assertions read the figure's own artists before it is rendered (texts, markers, line
levels), then decode the PNG for its size: no OCR needed.
"""

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import matplotlib.image
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from trader.chart import ChartInputs, draw_trading_chart, trading_chart_png
from trader.chart_style import DPI, HEIGHT_PX, WIDTH_PX
from trader.commands import PositionView
from trader.metrics import EquityPoint, TradeRecord

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
D = Decimal
MIN_FONT_PX = 28
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def prices(count: int = 300) -> list[tuple[datetime, Decimal]]:
    """A price that rises 43,000 -> ~44,500 with a wiggle, one close a minute."""
    return [(T0 + timedelta(minutes=i + 1), D(43000 + 5 * i + (i % 7) * 20)) for i in range(count)]


def closed_trade(side: str, opened: int, closed: int, net: str) -> TradeRecord:
    series = prices()
    return TradeRecord("BTCUSDT", side, series[opened][0], series[closed][0], D("0.01"),
                       series[opened][1], series[closed][1], D(net) + 1, D(1), D(0), D(net),
                       "TAKE_PROFIT" if D(net) > 0 else "STOP_LOSS")


def open_long() -> PositionView:
    at, entry = prices()[250]
    return PositionView("BTCUSDT", "LONG", D("0.010"), entry, entry + 50, D("0.5"),
                        D("43910.5"), True, D("45120"), True, "PROTECTED", at, 5)


def equity(values: list[int]) -> list[EquityPoint]:
    """Equity points spread over the price window (its first candle closes at T0 + 1 min)."""
    return [EquityPoint(T0 + timedelta(minutes=1 + i * 299 // len(values)), D(v))
            for i, v in enumerate(values)]


def inputs(**changes: object) -> ChartInputs:
    values: dict[str, object] = {
        "symbol": "BTCUSDT", "now": T0 + timedelta(minutes=300), "prices": prices(),
        "trades": [closed_trade("LONG", 20, 60, "12.5"), closed_trade("SHORT", 120, 150, "-8")],
        "open_trade": open_long(), "equity": equity([10000, 10012, 10004, 9990, 10010, 10025]),
        "traded": True, "ever_traded": True}
    values.update(changes)
    return ChartInputs(**values)  # type: ignore[arg-type]


def texts(figure: Figure) -> list[Text]:
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]


def all_text(figure: Figure) -> str:
    figure.canvas.draw()   # tick labels exist once the axes are laid out
    return "\n".join(t.get_text() for t in texts(figure))


def markers(figure: Figure, marker: str) -> list[Line2D]:
    """The price panel's marker lines (not the legend's sample markers)."""
    return [line for line in figure.axes[0].get_lines() if line.get_marker() == marker]


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_the_chart_is_a_1080_px_wide_portrait_png_with_something_drawn() -> None:
    image = decode(trading_chart_png(inputs()))
    assert image.shape[:2] == (HEIGHT_PX, WIDTH_PX) == (1350, 1080)
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50


def test_title_has_the_symbol_the_return_and_the_period() -> None:
    text = all_text(draw_trading_chart(inputs()))
    # equity 10,000 -> 10,025 over the window: +0.25 %
    assert "BTCUSDT   +0.25 %   equity 10,025.00" in text
    assert "2024-03-01 09:01 → 03-01 14:00 UTC (5 h)" in text


def test_entries_exits_and_the_open_positions_levels_are_drawn() -> None:
    figure = draw_trading_chart(inputs())
    long_entries, short_entries, exits = (markers(figure, m) for m in ("^", "v", "X"))
    series = prices()
    assert sorted(line.get_xdata()[0] for line in long_entries) == [series[20][0], series[250][0]]
    assert [line.get_xdata()[0] for line in short_entries] == [series[120][0]]
    assert sorted(line.get_ydata()[0] for line in exits) == [series[60][1], series[150][1]]
    text = all_text(figure)
    assert "SL 43,910.5" in text and "TP 45,120" in text and f"entry {series[250][1]:,}" in text
    levels = {line.get_ydata()[0] for line in figure.axes[0].get_lines()
              if line.get_linestyle() == "--" and len(set(line.get_ydata())) == 1}
    assert {43910.5, 45120.0} <= levels
    price_axes = figure.axes[0]
    low, high = price_axes.get_ylim()
    assert low < 43910.5 and high > 45120       # both levels are inside the picture
    assert {"long entry", "short entry", "exit"} <= set(text.splitlines())


def test_the_two_take_profit_plan_draws_tp1_and_tp2() -> None:
    from dataclasses import replace
    two = replace(open_long(), first_target_trigger=D("44700"), first_target_attached=True)
    text = all_text(draw_trading_chart(inputs(open_trade=two)))
    assert "TP1 44,700" in text and "TP2 45,120" in text and "TP 45,120" not in text


def test_equity_and_drawdown_panels_share_the_time_axis_with_the_price() -> None:
    figure = draw_trading_chart(inputs())
    price_axes, equity_axes, drawdown_axes = figure.axes
    assert price_axes.get_xlim() == equity_axes.get_xlim() == drawdown_axes.get_xlim()
    text = all_text(figure)
    assert "max -0.22 %" in text   # 10,012 -> 9,990
    assert {"price", "equity", "drawdown"} <= set(text.splitlines())


def test_every_text_is_at_least_28_px_tall() -> None:
    for case in (inputs(), inputs(traded=False, ever_traded=False, trades=[], open_trade=None),
                 inputs(prices=[], traded=False, ever_traded=False, trades=[], open_trade=None,
                        equity=[])):
        figure = draw_trading_chart(case)
        figure.canvas.draw()
        sizes = {t.get_text(): t.get_fontsize() * DPI / 72 for t in texts(figure)}
        assert sizes and min(sizes.values()) >= MIN_FONT_PX - 0.01, sizes


def test_before_the_first_trade_it_says_so_instead_of_a_flat_equity_line() -> None:
    figure = draw_trading_chart(inputs(trades=[], open_trade=None, traded=False,
                                       ever_traded=False, equity=equity([10000] * 20)))
    text = all_text(figure)
    assert "No trades yet" in text and "equity 10,000.00 USDT" in text
    assert "max" not in text and "-0.00" not in text
    assert not any(axes.get_ylabel() == "equity" for axes in figure.axes)
    assert decode(trading_chart_png(inputs(traded=False, ever_traded=False, trades=[],
                                           open_trade=None))).shape[:2] == (1350, 1080)


def test_a_quiet_window_after_earlier_trades_is_not_called_no_trades_yet() -> None:
    text = all_text(draw_trading_chart(inputs(trades=[], open_trade=None, traded=False)))
    assert "No trades in this period" in text and "No trades yet" not in text


def test_without_candles_or_trades_the_picture_is_a_message() -> None:
    figure = draw_trading_chart(inputs(prices=[], trades=[], open_trade=None, equity=[],
                                       traded=False, ever_traded=False))
    text = all_text(figure)
    assert "No trades yet" in text and "no candles received so far" in text


def test_a_drawdown_free_window_says_no_drawdown_not_minus_zero() -> None:
    text = all_text(draw_trading_chart(inputs(equity=equity([10000, 10010, 10020]))))
    assert "no drawdown" in text and "-0.00" not in text


def test_too_little_equity_history_is_said_not_drawn_and_the_time_axis_stays() -> None:
    figure = draw_trading_chart(inputs(equity=equity([10012])))
    text = all_text(figure)
    assert "BTCUSDT   equity 10,012.00" in text
    assert "equity 10,012.00 USDT\nthe equity line starts with the next minute" in text
    assert "12:00" in text.splitlines()            # the price panel keeps its time labels
    assert "BTCUSDT   equity not known yet" in all_text(draw_trading_chart(inputs(equity=[])))


def test_a_level_far_from_the_prices_is_named_at_the_edge_and_keeps_the_prices_readable():
    """An absurd stop (a /sl far below, a take-profit moved by hand to twice the price) used
    to stretch the price axis to reach it: the prices became a flat line. The axis now
    follows the prices and trades; such a level is named at the panel's edge, with an arrow
    pointing where it is."""
    far = replace(open_long(), stop_trigger=D("4000"), take_profit_trigger=D("90000"))
    figure = draw_trading_chart(inputs(open_trade=far))
    low, high = figure.axes[0].get_ylim()
    series = [float(price) for _, price in prices()]
    assert high - low < 6 * (max(series) - min(series)), (low, high)
    text = all_text(figure)
    assert "SL 4,000 ↓" in text and "TP 90,000 ↑" in text, text
    assert "entry" in text


def test_levels_near_the_prices_are_still_drawn_as_lines_inside_the_axis():
    """The negative: a stop and a target a few percent away stay lines on the axis."""
    near = replace(open_long(), stop_trigger=D("42000"), take_profit_trigger=D("46500"))
    figure = draw_trading_chart(inputs(open_trade=near))
    low, high = figure.axes[0].get_ylim()
    assert low < 42000 and high > 46500
    text = all_text(figure)
    assert "SL 42,000" in text and "↓" not in text and "↑" not in text
