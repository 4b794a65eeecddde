"""The backtest report (trader/report.py, report_text.py, report_chart.py): the portfolio of
every run, the per-symbol table with TOTAL, the files of out/<run-id>/ and the picture."""

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from trader.chart import equity_chart_png, thin_curve
from trader.chart_style import DPI
from trader.metrics import EquityPoint, TradeRecord, performance
from trader.report import (
    BacktestReport,
    combine,
    read_performance,
    read_trades,
    render_text,
    symbol_rows,
    write_report,
)
from trader.report_chart import BacktestPicture, draw_backtest_chart

T0 = datetime(2024, 3, 1, tzinfo=UTC)
LATER = datetime(2026, 2, 8, tzinfo=UTC)
D = Decimal
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHONE_SIZE = (1350, 1080)   # rows x columns
MIN_FONT_PX = 28


def sample_curve(points: int = 300, start: datetime = T0, base: int = 10000) -> list[EquityPoint]:
    """A curve that rises, falls 12 % and recovers, one point per 5 minutes."""
    values = []
    for index in range(points):
        if index < points // 3:
            value = base + 10 * index
        elif index < 2 * points // 3:
            value = base + 1000 - 12 * (index - points // 3)
        else:
            value = base - 200 + 15 * (index - 2 * points // 3)
        values.append(EquityPoint(start + timedelta(minutes=5 * index), D(value)))
    return values


def sample_trades(start: datetime = T0) -> list[TradeRecord]:
    return [
        TradeRecord("BTCUSDT", "LONG", start + timedelta(hours=1), start + timedelta(hours=2),
                    D("0.015"), D("61234.5"), D("61890.1"), D("9.834"), D("0.9182"),
                    D("-0.0125"), D("8.9033"), "TAKE_PROFIT"),
        TradeRecord("ETHUSDT", "SHORT", start + timedelta(hours=3), start + timedelta(hours=4),
                    D("1E+1"), D("3400"), D("3420.25"), D("-202.5"), D("6.8"),
                    D("0E-8"), D("-209.3"), "STOP_LOSS"),
    ]


def run_report(curve: list[EquityPoint], trades: list[TradeRecord], symbols: list[str],
               funding: Decimal = Decimal(0)) -> BacktestReport:
    """What trader/backtest.py `run_backtest` returns for one engine run."""
    return BacktestReport(performance=performance(curve, trades, funding), trades=trades,
                          curve=curve, symbols=symbols, candles=len(curve), seconds=1.5,
                          extra={"open_positions": 0})


@pytest.fixture
def report() -> BacktestReport:
    curve, trades = sample_curve(), sample_trades()
    single = BacktestReport(performance=performance(curve, trades), trades=trades, curve=curve,
                            symbols=["BTCUSDT", "ETHUSDT"], candles=2880, seconds=4.25,
                            extra={"seed": 7, "fee_rate": D("0.0004"), "started": T0})
    return combine([single], run_id="run-1")


@pytest.fixture
def two_periods() -> BacktestReport:
    """XRPUSDT in 2024 on a paper account of 10,000, then BTCUSDT in 2026 on what it left."""
    xrp = run_report(sample_curve(), [_retag(t, "XRPUSDT") for t in sample_trades()],
                     ["XRPUSDT"], funding=D("-2.5"))
    left = int(sample_curve()[-1].equity)
    btc = run_report(sample_curve(start=LATER, base=left), [_retag(t, "BTCUSDT")
                                                 for t in sample_trades(LATER)], ["BTCUSDT"])
    return combine([btc, xrp], run_id="two")


def _retag(trade: TradeRecord, symbol: str) -> TradeRecord:
    return TradeRecord(symbol, *[getattr(trade, name) for name in (
        "side", "opened_at", "closed_at", "quantity", "entry_price", "exit_price", "gross_pnl",
        "fees", "funding", "net_pnl", "reason")])


def decode_png(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def figure_texts(figure: Figure) -> list[Text]:
    figure.canvas.draw()
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]


# --- the portfolio --------------------------------------------------------------------------

def test_runs_over_separate_periods_chain_into_one_portfolio(two_periods: BacktestReport) -> None:
    curve = two_periods.curve
    first_end = sample_curve()[-1].equity                  # XRPUSDT's run ends here...
    assert curve[0] == sample_curve()[0]
    later = [point for point in curve if point.at >= LATER]
    assert later[0].equity == first_end                    # ...and BTCUSDT's starts there
    assert later[-1].equity == sample_curve(start=LATER, base=int(first_end))[-1].equity
    assert later == sample_curve(start=LATER, base=int(first_end))   # joined, not shifted
    assert two_periods.periods == [(T0, sample_curve()[-1].at),
                                   (LATER, sample_curve(start=LATER)[-1].at)]
    assert two_periods.symbols == ["BTCUSDT", "XRPUSDT"]
    assert two_periods.candles == 600 and two_periods.seconds == 3.0


def test_the_portfolio_counts_every_trade_and_the_funding_outside_them(
        two_periods: BacktestReport) -> None:
    perf = two_periods.performance
    assert perf.trades == 4
    assert perf.net_pnl == 2 * (D("8.9033") + D("-209.3")) + D("-2.5")
    assert two_periods.funding_outside == {"XRPUSDT": D("-2.5")}
    assert perf.covered == 2 * (sample_curve()[-1].at - T0)   # not the two years between
    assert [t.closed_at for t in two_periods.trades] == sorted(t.closed_at
                                                              for t in two_periods.trades)


def test_per_symbol_rows_end_with_a_total_of_every_trade(two_periods: BacktestReport) -> None:
    rows = symbol_rows(two_periods)
    assert [row.label for row in rows] == ["BTCUSDT", "XRPUSDT", "TOTAL"]
    assert rows[-1].trades == rows[0].trades + rows[1].trades == 4
    assert rows[-1].net_pnl == rows[0].net_pnl + rows[1].net_pnl
    assert rows[-1].fees == 2 * (D("0.9182") + D("6.8"))


def test_one_run_is_its_own_portfolio(report: BacktestReport) -> None:
    assert report.curve == sample_curve()
    assert report.performance.net_pnl == performance(sample_curve(), sample_trades()).net_pnl
    assert report.run_id == "run-1" and report.extra["seed"] == 7


# --- files ------------------------------------------------------------------------------------

def test_write_report_writes_the_report_files_in_one_folder(report: BacktestReport,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "out" / "run-1"
    files = write_report(report, folder)
    assert {name: path.name for name, path in files.items()} == {
        "equity": "equity.png", "trades": "trades.csv", "curve": "equity.csv",
        "report": "report.json", "text": "report.txt"}
    assert {path.parent for path in files.values()} == {folder}
    assert decode_png(files["equity"].read_bytes()).shape[:2] == PHONE_SIZE
    assert files["text"].read_text() == render_text(report, symbol_rows(report), files) + "\n"
    with files["curve"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0] == {"at": "2024-03-01T00:00:00+00:00", "equity": "10000"}
    assert len(rows) == len(report.curve)


def test_trades_csv_round_trips_with_plain_decimal_strings(report: BacktestReport,
                                                          tmp_path: Path) -> None:
    files = write_report(report, tmp_path)
    assert read_trades(files["trades"]) == report.trades
    with files["trades"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert rows[0]["entry_price"] == "61234.5"
    assert rows[1]["quantity"] == "10"            # 1E+1 written without an exponent
    assert rows[1]["funding"] == "0.00000000"     # 0E-8 too
    assert rows[0]["opened_at"] == "2024-03-01T01:00:00+00:00"
    assert rows[1]["reason"] == "STOP_LOSS"


def test_an_average_fill_price_is_written_to_binances_8_decimals(tmp_path: Path) -> None:
    """An exit at the average of several fills is a division: 28 digits are noise."""
    [first, second] = sample_trades()
    averaged = replace(first, exit_price=D("1.190849989687705346565046597"),
                       entry_price=D("61234.5"))
    files = write_report(run_report(sample_curve(), [averaged, second], ["BTCUSDT", "ETHUSDT"]),
                         tmp_path)
    with files["trades"].open(newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["exit_price"] == "1.19084999" and row["entry_price"] == "61234.5"


def test_report_json_round_trips_every_performance_field(two_periods: BacktestReport,
                                                         tmp_path: Path) -> None:
    files = write_report(two_periods, tmp_path)
    assert read_performance(files["report"]) == two_periods.performance
    document = json.loads(files["report"].read_text())
    perf = document["performance"]
    assert perf["net_pnl"] == format(two_periods.performance.net_pnl, "f")
    assert isinstance(perf["start_equity"], str) and isinstance(perf["sharpe"], float)
    assert perf["period_start"] == "2024-03-01T00:00:00+00:00"
    assert perf["exits"] == {"STOP_LOSS": 2, "TAKE_PROFIT": 2}
    assert perf["exit_pnl"] == {"STOP_LOSS": "-418.6", "TAKE_PROFIT": "17.8066"}
    assert perf["covered"] == two_periods.performance.covered.total_seconds()
    assert {"cagr_pct", "calmar", "sqn", "expectancy_ratio", "drawdown_start",
            "drawdown_end", "drawdown_duration"} <= set(perf)
    assert [row["label"] for row in document["per_symbol"]] == ["BTCUSDT", "XRPUSDT", "TOTAL"]
    assert document["per_symbol"][-1]["trades"] == 4
    assert {k: D(v) for k, v in document["funding_outside_trades"].items()} == {
        "XRPUSDT": D("-2.5")}
    assert document["run_id"] == "two" and document["symbols"] == ["BTCUSDT", "XRPUSDT"]
    assert len(document["periods"]) == 2


def test_a_run_without_trades_writes_a_header_only_csv(tmp_path: Path) -> None:
    empty = combine([BacktestReport(performance=performance([], []), trades=[], curve=[],
                                    symbols=[], candles=0, seconds=0.0, extra={})])
    files = write_report(empty, tmp_path)
    assert files["trades"].read_text().strip().split(",")[:3] == ["symbol", "side", "opened_at"]
    assert read_trades(files["trades"]) == []
    assert read_performance(files["report"]) == empty.performance
    assert decode_png(files["equity"].read_bytes()).shape[:2] == PHONE_SIZE


# --- text -------------------------------------------------------------------------------------

def test_a_run_without_trades_shows_undefined_ratios_as_a_dash() -> None:
    """No trade: no win rate and no Sharpe/Sortino (a flat curve is 0/0), not "0.0 %"."""
    curve = sample_curve(50)
    flat = [EquityPoint(point.at, Decimal(10000)) for point in curve]
    empty = run_report(flat, [], ["XRPUSDT"])
    lines = [line.strip() for line in render_text(empty, symbol_rows(empty)).splitlines()]
    assert "Trades         0  (won 0, lost 0, win rate -)" in lines
    assert "Sharpe         -" in lines and "Sortino        -" in lines


def test_text_report_shows_the_portfolio_figures(report: BacktestReport, tmp_path: Path) -> None:
    files = write_report(report, tmp_path)
    text = render_text(report, symbol_rows(report), files)
    perf = report.performance
    expected = [
        "Backtest BTCUSDT, ETHUSDT   run run-1", "2,880 candles in 4.2 s",
        "Portfolio (amounts in USDT)",        # a new reader is told the unit once
        "2024-03-01 00:00 -> 2024-03-02 00:55 UTC  (25 h)",
        "Trades         2  (won 1, lost 1, win rate 50.0 %)",
        "Gross PnL      -192.67",
        "Fees           7.72",
        "Funding        -0.01",
        "Net PnL        -200.40",
        "CAGR           -",                   # less than a week: no yearly rate
        f"Sharpe         {perf.sharpe:.2f}",
        f"Sortino        {perf.sortino:.2f}",
        "Calmar         -",
        f"Max drawdown   {perf.max_drawdown_pct:.2f} %  ({perf.max_drawdown:,.2f})",
        f"from / to    peak {perf.drawdown_start:%Y-%m-%d %H:%M}, bottom "
        f"{perf.drawdown_bottom:%Y-%m-%d %H:%M}, recovered {perf.drawdown_end:%Y-%m-%d %H:%M}  "
        "(15 h)",
        f"Exposure       {perf.exposure_pct:.1f} %",
        "Profit factor  0.04",
        "Expectancy     -100.20 per trade  (-0.48 x the average loss)",
        f"SQN            {perf.sqn:.2f}",
        "Files in " + str(tmp_path) + "/",
        "equity.png  trades.csv  equity.csv  report.json  report.txt",
    ]
    for figure in expected:
        assert figure in text, figure


def test_text_report_has_the_symbol_table_with_total_and_the_exit_reasons(
        two_periods: BacktestReport) -> None:
    lines = render_text(two_periods, symbol_rows(two_periods)).splitlines()
    table = lines[lines.index("By symbol (USDT)") + 1:]
    assert table[0].split() == ["symbol", "trades", "win", "%", "net", "PnL", "fees",
                                "expectancy", "PF", "SQN"]
    assert table[1].split()[:4] == ["BTCUSDT", "2", "50.0", "-200.40"]
    assert table[2].split()[:4] == ["XRPUSDT", "2", "50.0", "-200.40"]
    assert table[3].split()[:5] == ["TOTAL", "4", "50.0", "-400.79", "15.44"]
    assert "+ funding -2.50 (paid) outside the trades (XRPUSDT)" in table[4]
    exits = lines[lines.index("By exit reason (USDT)") + 1:]
    assert exits[1].split() == ["STOP_LOSS", "2", "-418.60"]
    assert exits[2].split() == ["TAKE_PROFIT", "2", "+17.81"]
    assert "2024-03-01 00:00 -> 2024-03-02 00:55 UTC  (25 h)" in lines[1]
    assert "2026-02-08 00:00 -> 2026-02-09 00:55 UTC  (25 h)" in lines[2]


def test_text_report_of_an_empty_run_has_no_nan() -> None:
    empty = combine([BacktestReport(performance=performance([], []), trades=[], curve=[],
                                    symbols=[], candles=0, seconds=0.0, extra={})])
    text = render_text(empty, symbol_rows(empty))
    assert "nan" not in text.lower() and "inf" not in text.lower()
    assert "Profit factor  -" in text and "CAGR           -" in text
    assert "(no data)" in text


# --- the picture ------------------------------------------------------------------------------

def test_backtest_picture_has_equity_drawdown_and_pnl_by_symbol_per_period(
        two_periods: BacktestReport) -> None:
    picture = BacktestPicture("BTCUSDT, XRPUSDT", two_periods.curve, two_periods.periods,
                              two_periods.trades)
    figure = draw_backtest_chart(picture)
    assert len(figure.axes) == 6                       # 3 panels x 2 periods
    texts = [t.get_text() for t in figure_texts(figure)]
    assert {"equity", "drawdown", "PnL by symbol"} <= set(texts)
    assert "BTCUSDT -200" in texts and "XRPUSDT -200" in texts      # legend: final net PnL
    change = (two_periods.curve[-1].equity / D(10000) - 1) * 100
    assert f"Backtest   {change:+.2f} %   equity {two_periods.curve[-1].equity:,.2f}" in texts
    assert "2 periods (2024, 2026), 50 h of data" in texts
    assert any(t.startswith("max -") for t in texts)
    first, second = figure.axes[0], figure.axes[3]
    assert first.get_ylim() == second.get_ylim()      # one equity scale across periods
    assert [matplotlib.dates.num2date(x).year for x in second.get_xlim()] == [2026, 2026]


def test_every_text_of_the_pictures_is_at_least_28_px(two_periods: BacktestReport) -> None:
    figures = [draw_backtest_chart(BacktestPicture("X", two_periods.curve, two_periods.periods,
                                                   two_periods.trades)),
               draw_backtest_chart(BacktestPicture("X", [], [], []))]
    for figure in figures:
        sizes = {t.get_text(): t.get_fontsize() * DPI / 72 for t in figure_texts(figure)}
        assert min(sizes.values()) >= MIN_FONT_PX - 0.01, sizes


def test_a_long_title_is_shrunk_to_fit_the_width() -> None:
    many = ", ".join(f"SYM{i}USDT" for i in range(4))
    figure = draw_backtest_chart(BacktestPicture(many, sample_curve(), [], []))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for text in figure.texts:
        assert text.get_window_extent(renderer).x1 <= 1080


def test_a_run_without_trades_says_so_in_the_symbol_panel() -> None:
    figure = draw_backtest_chart(BacktestPicture("BTCUSDT", sample_curve(), [], []))
    assert "No trades" in [t.get_text() for t in figure_texts(figure)]


def test_the_sweeps_equity_picture_is_phone_sized_with_its_title() -> None:
    image = decode_png(equity_chart_png(sample_curve(), title="trial 3"))
    assert image.shape[:2] == PHONE_SIZE
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20
    assert decode_png(equity_chart_png([], title="trial 4")).shape[:2] == PHONE_SIZE


def test_thinning_a_long_curve_keeps_its_extremes_and_ends() -> None:
    curve = [EquityPoint(T0 + timedelta(minutes=i), D(10000 + (i % 97) - (i == 5000) * 3000))
             for i in range(20000)]
    thinned = thin_curve(curve, 1000)
    assert len(thinned) <= 1000
    assert thinned[0] == curve[0] and thinned[-1] == curve[-1]
    assert min(point.equity for point in thinned) == D(7000 + 5000 % 97)
    assert max(point.equity for point in thinned) == max(point.equity for point in curve)
    assert [point.at for point in thinned] == sorted(point.at for point in thinned)


def test_a_report_says_its_size_in_its_repr_instead_of_listing_every_point() -> None:
    """asyncio.run (Python 3.11) formats the main task's repr, result included, when it puts
    the SIGINT handler back: a repr that listed the curve cost ~1.5 % of a 20k-candle
    backtest, and grew with the run."""
    small = run_report(sample_curve(10), sample_trades(), ["BTCUSDT"])
    large = run_report(sample_curve(20_000), sample_trades(), ["BTCUSDT"])
    assert len(repr(large)) < len(repr(small)) + 10 < 400
    assert "20000 curve points" in repr(large) and "BTCUSDT" in repr(large)
    assert f"{len(large.trades)} trades" in repr(large)
