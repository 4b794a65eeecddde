"""Several files of one symbol, as Binance publishes its klines by month or day
(data.binance.vision: BTCUSDT-5m-2024-01.csv, BTCUSDT-5m-2024-02.csv, ...): `--data` takes
them as one series of that symbol, in the order of their first candles, streamed file after
file (trader/market/candle_series.py). Two files of one symbol were refused ("give one file
per symbol"), and `run --replay --data` kept the last one given without a word."""

import pickle
from datetime import timedelta
from pathlib import Path

import pytest

from tests.test_backtest_input import HEADER, one_error_line
from tests.test_cli import backtest, report_of, xrp_rows
from tests.test_replay_symbols import settings
from trader.app import replay_candles
from trader.backtest_data import select_candles
from trader.backtest_input import candle_files, gap_warnings
from trader.backtest_warmup import candles_before
from trader.domain import utc
from trader.market.replay import CandleFile
from trader.sweep_runners import anchored
from trader.sweep_trial import BacktestData

ROWS = xrp_rows(300, 1000)      # bundled XRPUSDT 5m candles from 2021-11-15 00:00 UTC


def write(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def opened_at(index: int):  # type: ignore[no-untyped-def]
    return utc(int(ROWS[index].split(",")[0]))


def test_two_days_of_one_symbol_run_as_the_file_they_were_cut_from(tmp_path: Path) -> None:
    """Given out of order, sharing their boundary's 10 rows (the same candles): the run is
    the whole file's, to the trade."""
    whole = write(tmp_path / "whole" / "XRPUSDT-5m.csv", ROWS)
    first = write(tmp_path / "XRPUSDT-5m-2021-11-15.csv", ROWS[:160])
    second = write(tmp_path / "XRPUSDT-5m-2021-11-16.csv", ROWS[150:])
    reference = backtest(tmp_path, "--data", str(whole), "--run-id", "whole")
    joined = backtest(tmp_path, "--data", str(second), str(first), "--run-id", "joined")
    assert reference.returncode == 0 and joined.returncode == 0, joined.stderr
    assert "gap" not in joined.stderr
    report = report_of(tmp_path, "joined")
    assert report["symbols"] == ["XRPUSDT"] and report["candles"] == 300
    assert report["performance"] == report_of(tmp_path, "whole")["performance"]


def test_a_shared_row_that_differs_stops_the_run_naming_the_file_and_line(tmp_path: Path) -> None:
    first = write(tmp_path / "XRPUSDT-5m-2021-11-15.csv", ROWS[:160])
    changed = ROWS[151].split(",")
    changed[5] = "1"                                        # its volume
    second = write(tmp_path / "XRPUSDT-5m-2021-11-16.csv",
                   [ROWS[150], ",".join(changed), *ROWS[152:]])
    assert one_error_line(backtest(tmp_path, "--data", str(first), str(second))) == (
        f"backtest error: {second}: line 3: the candle at 2021-11-15 12:35 UTC differs from "
        f"line 153 of {first} (volume 1 against {ROWS[151].split(',')[5]}): the files "
        "overlap there and must hold the same candles; which download is right?")


def test_files_apart_leave_a_gap_warned_about_once_and_noted(tmp_path: Path) -> None:
    first = write(tmp_path / "XRPUSDT-5m-a.csv", ROWS[:100])
    second = write(tmp_path / "XRPUSDT-5m-b.csv", ROWS[150:])
    warning = ("XRPUSDT: 1 gap in the data, the largest 4 h 10 min at 2021-11-15 08:20; "
               "the engine trades across it")
    assert gap_warnings(candle_files([first, second])) == [warning]
    result = backtest(tmp_path, "--data", str(first), str(second), "--run-id", "gap")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "gap" in line] == [warning]
    assert warning in report_of(tmp_path, "gap")["notes"]
    assert report_of(tmp_path, "gap")["candles"] == 250


def test_the_series_streams_the_files_candles_once_each_in_time_order(tmp_path: Path) -> None:
    whole = CandleFile(write(tmp_path / "whole" / "XRPUSDT-5m.csv", ROWS))
    paths = [write(tmp_path / "XRPUSDT-5m-3.csv", ROWS[200:]),
             write(tmp_path / "XRPUSDT-5m-1.csv", ROWS[:120]),
             write(tmp_path / "XRPUSDT-5m-2.csv", ROWS[100:210])]
    series = candle_files(paths)["XRPUSDT"]
    assert iter(series) is not iter(series)                 # a stream each time, no list
    assert list(series) == list(whole)
    assert len(series) == 300 and series[0] == whole[0] and series[-1] == whole[-1]
    assert series.interval == timedelta(minutes=5) and series.gaps.count == 0
    assert gap_warnings({"XRPUSDT": series}) == []


def test_a_period_and_a_warm_up_cross_the_files(tmp_path: Path) -> None:
    paths = [write(tmp_path / "XRPUSDT-5m-1.csv", ROWS[:150]),
             write(tmp_path / "XRPUSDT-5m-2.csv", ROWS[150:])]
    data = candle_files(paths)
    picked = select_candles(data, None, opened_at(140), opened_at(170))["XRPUSDT"]
    assert len(picked) == 31
    assert [candle.open_time for candle in picked] == [opened_at(i) for i in range(140, 171)]
    assert picked[0].open_time == opened_at(140) and picked[-1].open_time == opened_at(170)
    before = candles_before(data["XRPUSDT"], opened_at(200), 1000)
    assert [candle.open_time for candle in before] == [opened_at(i) for i in range(200)]


def test_a_sweep_ships_the_series_as_its_files_paths(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "XRPUSDT-5m-1.csv", ROWS[:150])
    write(tmp_path / "XRPUSDT-5m-2.csv", ROWS[150:])
    data = candle_files([Path("XRPUSDT-5m-1.csv"), Path("XRPUSDT-5m-2.csv")])
    shipped = pickle.loads(pickle.dumps(anchored(BacktestData(candles=data))))  # type: ignore[arg-type]
    series = shipped.candles["XRPUSDT"]
    assert all(path.is_absolute() for path in series.paths)
    assert list(series) == list(data["XRPUSDT"])


def test_a_replay_takes_a_symbols_files_as_one_series(tmp_path: Path) -> None:
    first = write(tmp_path / "XRPUSDT-5m-1.csv", ROWS[:150])
    second = write(tmp_path / "XRPUSDT-5m-2.csv", ROWS[150:])
    candles = replay_candles(settings(None), [second, first])
    assert list(candles) == ["XRPUSDT"]
    assert [c.open_time for c in candles["XRPUSDT"]] == [opened_at(i) for i in range(300)]


def test_symbol_names_the_one_series_of_files_named_otherwise(tmp_path: Path) -> None:
    paths = [write(tmp_path / "mydata-1.csv", ROWS[:150]),
             write(tmp_path / "mydata-2.csv", ROWS[150:])]
    data = candle_files(paths, "ETHUSDT")
    assert list(data) == ["ETHUSDT"] and len(data["ETHUSDT"]) == 300
    named = [write(tmp_path / "XRPUSDT-5m.csv", ROWS[:150]),
             write(tmp_path / "DOGEUSDT-5m.csv", ROWS[150:])]
    with pytest.raises(ValueError) as caught:
        candle_files(named, "ETHUSDT")
    assert str(caught.value) == (
        "--symbol ETHUSDT: joins the --data files into one series of ETHUSDT, but their names "
        "say DOGEUSDT, XRPUSDT; without --symbol each file is the symbol its name says")


def test_files_of_two_intervals_are_refused_naming_both(tmp_path: Path) -> None:
    five = write(tmp_path / "XRPUSDT-5m.csv", ROWS[:100])
    start = int(ROWS[100].split(",")[0])
    fifteen = write(tmp_path / "XRPUSDT-15m.csv", [
        f"{start + 900_000 * i},{row.split(',', 1)[1]}" for i, row in enumerate(ROWS[100:200])])
    with pytest.raises(ValueError) as caught:
        candle_files([fifteen, five])
    assert str(caught.value) == (
        f"{five} holds 5 min candles and {fifteen} 15 min candles: a symbol's files are joined "
        "into one series, of one interval; pass the files of one interval")


def test_overlapping_files_otherwise_than_by_the_same_rows_are_refused(tmp_path: Path) -> None:
    whole = write(tmp_path / "XRPUSDT-5m-all.csv", ROWS)
    part = write(tmp_path / "XRPUSDT-5m-part.csv", ROWS[100:200])
    with pytest.raises(ValueError) as caught:
        candle_files([whole, part])
    assert str(caught.value) == (
        f"{part}: its candles (2021-11-15 08:20 UTC to 2021-11-15 16:35 UTC) all lie within "
        f"those of {whole} (2021-11-15 00:00 UTC to 2021-11-16 00:55 UTC): it adds nothing; "
        "pass one of them")
    first = write(tmp_path / "XRPUSDT-5m-a.csv", ROWS[:160])
    second = write(tmp_path / "XRPUSDT-5m-b.csv", ROWS[150:155] + ROWS[156:])
    with pytest.raises(ValueError) as caught:
        candle_files([first, second])
    assert str(caught.value) == (
        f"{first}: line 157: the candle at 2021-11-15 12:55 UTC is not in {second}, though the "
        "two files overlap from 2021-11-15 12:30 UTC to 2021-11-15 13:15 UTC: files that "
        "overlap must hold the same rows where they do")
    with pytest.raises(ValueError, match="given twice"):
        candle_files([first, first])
