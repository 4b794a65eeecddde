"""The equity chart PNG and the backtest report files (trader/chart.py, trader/report.py)."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from trader.chart import equity_chart_png, thin_curve
from trader.metrics import EquityPoint, TradeRecord, performance
from trader.report import (
    BacktestReport,
    read_performance,
    read_trades,
    render_text,
    write_report,
)

T0 = datetime(2024, 3, 1, tzinfo=UTC)
D = Decimal
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHONE_SIZE = (550, 880)   # 8 x 5 in at 110 dpi, rows x columns


def sample_curve(points: int = 300) -> list[EquityPoint]:
    """A curve that rises, falls 12 % and recovers, one point per 5 minutes."""
    values = []
    for index in range(points):
        if index < points // 3:
            value = 10000 + 10 * index
        elif index < 2 * points // 3:
            value = 11000 - 12 * (index - points // 3)
        else:
            value = 9800 + 15 * (index - 2 * points // 3)
        values.append(EquityPoint(T0 + timedelta(minutes=5 * index), D(value)))
    return values


def sample_trades() -> list[TradeRecord]:
    return [
        TradeRecord("BTCUSDT", "LONG", T0 + timedelta(hours=1), T0 + timedelta(hours=2),
                    D("0.015"), D("61234.5"), D("61890.1"), D("9.834"), D("0.9182"),
                    D("-0.0125"), D("8.9033"), "TAKE_PROFIT"),
        TradeRecord("ETHUSDT", "SHORT", T0 + timedelta(hours=3), T0 + timedelta(hours=4),
                    D("1E+1"), D("3400"), D("3420.25"), D("-202.5"), D("6.8"),
                    D("0E-8"), D("-209.3"), "STOP_LOSS"),
    ]


@pytest.fixture
def report() -> BacktestReport:
    curve, trades = sample_curve(), sample_trades()
    return BacktestReport(performance=performance(curve, trades), trades=trades, curve=curve,
                          symbols=["BTCUSDT", "ETHUSDT"], candles=2880, seconds=4.25,
                          extra={"seed": 7, "fee_rate": D("0.0004"), "started": T0})


def decode_png(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def distinct_colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


# --- chart --------------------------------------------------------------------------------

def test_equity_chart_is_a_phone_sized_png_with_drawn_curves() -> None:
    image = decode_png(equity_chart_png(sample_curve(), title="Equity"))
    assert image.shape[:2] == PHONE_SIZE
    assert distinct_colours(image) > 20


def test_the_equity_line_and_the_drawdown_area_are_both_drawn() -> None:
    image = decode_png(equity_chart_png(sample_curve()))
    rgb = (image[..., :3] * 255).astype(int)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 80)                       # the equity line
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 120) & (rgb[..., 2] < 120)  # drawdown
    rows_blue = np.nonzero(blue.any(axis=1))[0]
    rows_red = np.nonzero(red.any(axis=1))[0]
    assert blue.sum() > 200 and red.sum() > 200
    assert rows_blue.mean() < rows_red.mean()       # equity on top, drawdown below


@pytest.mark.parametrize("curve", [[], [EquityPoint(T0, D(1000))]], ids=["empty", "one-point"])
def test_a_chart_without_enough_data_still_renders_a_png(curve: list[EquityPoint]) -> None:
    image = decode_png(equity_chart_png(curve))
    assert image.shape[:2] == PHONE_SIZE
    assert distinct_colours(image) > 1


def test_a_flat_curve_renders() -> None:
    flat = [EquityPoint(T0 + timedelta(minutes=i), D(500)) for i in range(10)]
    assert decode_png(equity_chart_png(flat)).shape[:2] == PHONE_SIZE


def test_thinning_a_long_curve_keeps_its_extremes_and_ends() -> None:
    curve = [EquityPoint(T0 + timedelta(minutes=i), D(10000 + (i % 97) - (i == 5000) * 3000))
             for i in range(20000)]
    thinned = thin_curve(curve, 1000)
    assert len(thinned) <= 1000
    assert thinned[0] == curve[0] and thinned[-1] == curve[-1]
    assert min(point.equity for point in thinned) == D(7000 + 5000 % 97)
    assert max(point.equity for point in thinned) == max(point.equity for point in curve)
    assert [point.at for point in thinned] == sorted(point.at for point in thinned)


# --- files --------------------------------------------------------------------------------

def test_write_report_writes_the_three_files(report: BacktestReport, tmp_path: Path) -> None:
    files = write_report(report, tmp_path / "run")
    assert files == {"equity": tmp_path / "run" / "equity.png",
                     "trades": tmp_path / "run" / "trades.csv",
                     "report": tmp_path / "run" / "report.json"}
    image = decode_png(files["equity"].read_bytes())
    assert image.shape[:2] == PHONE_SIZE


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


def test_report_json_round_trips_every_performance_field(report: BacktestReport,
                                                         tmp_path: Path) -> None:
    files = write_report(report, tmp_path)
    assert read_performance(files["report"]) == report.performance
    document = json.loads(files["report"].read_text())
    perf = document["performance"]
    assert perf["net_pnl"] == format(report.performance.net_pnl, "f")
    assert isinstance(perf["start_equity"], str) and isinstance(perf["sharpe"], float)
    assert perf["period_start"] == "2024-03-01T00:00:00+00:00"
    assert perf["exits"] == {"STOP_LOSS": 1, "TAKE_PROFIT": 1}
    assert document["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert (document["candles"], document["seconds"]) == (2880, 4.25)
    assert document["extra"] == {"seed": 7, "fee_rate": "0.0004",
                                 "started": "2024-03-01T00:00:00+00:00"}


def test_a_run_without_trades_writes_a_header_only_csv(tmp_path: Path) -> None:
    empty = BacktestReport(performance=performance([], []), trades=[], curve=[], symbols=[],
                           candles=0, seconds=0.0, extra={})
    files = write_report(empty, tmp_path)
    assert files["trades"].read_text().strip().split(",")[:3] == ["symbol", "side", "opened_at"]
    assert read_trades(files["trades"]) == []
    assert read_performance(files["report"]) == empty.performance
    assert decode_png(files["equity"].read_bytes()).shape[:2] == PHONE_SIZE


# --- text ---------------------------------------------------------------------------------

def test_text_report_shows_every_figure_and_where_the_files_are(report: BacktestReport,
                                                                 tmp_path: Path) -> None:
    files = write_report(report, tmp_path)
    text = render_text(report, files)
    perf = report.performance
    assert perf.trades == 2 and perf.wins == 1
    expected = [
        "BTCUSDT, ETHUSDT", "2,880 candles", "4.2 s",
        "Trades         2  (won 1, lost 1, win rate 50.0 %)",
        "Gross PnL      -192.67",
        "Fees           7.72",
        "Funding        -0.01",
        "Net PnL        -200.40",
        f"Sharpe         {perf.sharpe:.2f}",
        f"Sortino        {perf.sortino:.2f}",
        f"Max drawdown   {perf.max_drawdown_pct:.2f} %  ({perf.max_drawdown:,.2f})",
        f"Exposure       {perf.exposure_pct:.1f} %",
        "Profit factor  0.04",
        "Avg trade      -100.20",
        "Exits          STOP_LOSS 1, TAKE_PROFIT 1",
        str(files["equity"]), str(files["trades"]), str(files["report"]),
    ]
    for figure in expected:
        assert figure in text, figure


def test_text_report_of_an_empty_run_has_no_nan() -> None:
    empty = BacktestReport(performance=performance([], []), trades=[], curve=[], symbols=[],
                           candles=0, seconds=0.0, extra={})
    text = render_text(empty)
    assert "nan" not in text.lower() and "inf" not in text.lower()
    assert "Profit factor  -" in text
    assert "Exits          -" in text
