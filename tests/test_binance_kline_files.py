"""Binance's kline files as downloaded: before 2022 they have no header line, only rows of
its twelve kline columns (open_time, open, high, low, close, volume, close_time,
quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore: the binance-public-data
README, "Klines"). Such a file is read as it is; one whose rows are neither (no header, other
columns) is still refused saying it has no header line. The README told users to add one."""

from pathlib import Path

import pytest

from tests.test_backtest_input import HEADER, one_error_line
from tests.test_cli import backtest, report_of, xrp_rows
from trader.market.candle_csv import open_times_ms, time_unit
from trader.market.funding_csv import load_funding
from trader.market.replay import CandleFile, load_candles

ROWS = xrp_rows(300, 1000)      # open_time,open,high,low,close,volume (ms)


def kline(row: str) -> str:
    """The row as Binance's kline file holds it: its 12 columns, no names."""
    opened, prices = row.split(",", 1)
    return (f"{opened},{prices},{int(opened) + 299_999},12345.6,42,1000.5,1100.25,0")


def headerless(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(kline(row) + "\n" for row in rows))
    return path


def test_a_kline_file_without_a_header_reads_as_the_same_file_with_one(tmp_path: Path) -> None:
    bare = headerless(tmp_path / "XRPUSDT-5m-2021-11.csv", ROWS)
    named = tmp_path / "named" / "XRPUSDT-5m.csv"
    named.parent.mkdir()
    named.write_text(HEADER + "\n".join(ROWS) + "\n")
    assert load_candles(bare) == load_candles(named)
    assert list(CandleFile(bare)) == list(CandleFile(named))
    assert list(open_times_ms(bare, time_unit(bare))) == [int(r.split(",")[0]) for r in ROWS]


def test_a_bad_row_of_a_file_without_a_header_is_named_by_its_own_line(tmp_path: Path) -> None:
    fields = ROWS[51].split(",")
    fields[4] = "nan"                                         # line 52: no header above it
    bare = headerless(tmp_path / "XRPUSDT-5m.csv", [*ROWS[:51], ",".join(fields), *ROWS[52:]])
    with pytest.raises(ValueError, match="line 52: close is not a finite number"):
        CandleFile(bare)


def test_months_of_binance_files_without_headers_backtest_as_one_series(tmp_path: Path) -> None:
    first = headerless(tmp_path / "XRPUSDT-5m-2021-11-15.csv", ROWS[:150])
    second = headerless(tmp_path / "XRPUSDT-5m-2021-11-16.csv", ROWS[150:])
    result = backtest(tmp_path, "--data", str(first), str(second), "--run-id", "bare")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "bare")["candles"] == 300


def test_rows_without_a_header_that_are_no_binance_klines_are_still_refused(
        tmp_path: Path) -> None:
    six = tmp_path / "XRPUSDT-5m.csv"
    six.write_text("\n".join(ROWS) + "\n")                 # our 6 columns, the header left out
    assert one_error_line(backtest(tmp_path, "--data", str(six))) == (
        f"backtest error: {six}: line 1 holds values, not column names: the file has no header "
        "line (only Binance's kline files, of 12 columns, are read without one); add one at the "
        "top (expected the header line open_time,open,high,low,close)")
    klines = headerless(tmp_path / "XRPUSDT-funding.csv", ROWS[:3])
    with pytest.raises(ValueError, match="line 1 holds values, not column names"):
        load_funding(klines)                               # klines are no funding rates
