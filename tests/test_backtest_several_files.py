"""`tradebot backtest --data A --data B` (or `--data A B`): the user's own files backtested
together, each the symbol its name says, as the bundled symbols are: a common period on one
account (the portfolio heat cap couples their entries, said on stdout), periods apart one
after the other on one account (tests/test_backtest_chained.py)."""

from pathlib import Path

from tests.test_backtest_input import HEADER, one_error_line
from tests.test_cli import backtest, report_of, xrp_rows

YEAR_MS = 365 * 24 * 3600 * 1000


def candle_file(folder: Path, name: str, shift_ms: int = 0, rows: int = 300) -> Path:
    """`rows` bundled XRPUSDT 5m candles (ms), `shift_ms` later, under another file name."""
    lines = [f"{int(row.split(',')[0]) + shift_ms},{row.split(',', 1)[1]}"
             for row in xrp_rows(rows, 1000)]
    path = folder / name
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def test_two_files_of_one_period_run_together_on_one_account(tmp_path: Path) -> None:
    xrp = candle_file(tmp_path, "XRPUSDT-5m.csv")
    doge = candle_file(tmp_path, "DOGEUSDT-5m.csv")
    for run_id, args in (("repeated", ["--data", str(xrp), "--data", str(doge)]),
                         ("listed", ["--data", str(xrp), str(doge)])):
        result = backtest(tmp_path, *args, "--run-id", run_id)
        assert result.returncode == 0, result.stderr
        assert "DOGEUSDT, XRPUSDT: same period, one account: the portfolio heat cap" in \
            result.stdout
        report = report_of(tmp_path, run_id)
        assert report["symbols"] == ["DOGEUSDT", "XRPUSDT"]
        assert report["candles"] == 600
        assert len(report["periods"]) == 1             # one run, one account


def test_two_files_of_periods_apart_run_one_after_the_other(tmp_path: Path) -> None:
    xrp = candle_file(tmp_path, "XRPUSDT-5m.csv")
    doge = candle_file(tmp_path, "DOGEUSDT-5m.csv", shift_ms=YEAR_MS)
    result = backtest(tmp_path, "--data", str(xrp), "--data", str(doge), "--run-id", "apart")
    assert result.returncode == 0, result.stderr
    assert "same period, one account" not in result.stdout
    assert "2 periods apart (XRPUSDT then DOGEUSDT): one account carried" in result.stdout
    report = report_of(tmp_path, "apart")
    assert report["symbols"] == ["DOGEUSDT", "XRPUSDT"]
    assert [run["symbols"] for run in report["extra"]["runs"]] == [["XRPUSDT"], ["DOGEUSDT"]]


def test_a_copy_of_a_symbols_file_is_refused_as_adding_nothing(tmp_path: Path) -> None:
    """A symbol's several files are one series (tests/test_backtest_monthly_files.py); a
    file whose candles another file holds already is a mistake said, not a run of one."""
    first = candle_file(tmp_path, "XRPUSDT-5m.csv")
    second = candle_file(tmp_path, "XRPUSDT-5m-copy.csv")
    assert one_error_line(backtest(tmp_path, "--data", str(first), "--data", str(second))) == (
        f"backtest error: {second}: its candles (2021-11-15 00:00 UTC to 2021-11-16 00:55 UTC) "
        f"all lie within those of {first} (2021-11-15 00:00 UTC to 2021-11-16 00:55 UTC): it "
        "adds nothing; pass one of them")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_one_file_runs_as_before(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--data", str(candle_file(tmp_path, "XRPUSDT-5m.csv")),
                      "--run-id", "one")
    assert result.returncode == 0, result.stderr
    assert "same period" not in result.stdout
    assert report_of(tmp_path, "one")["symbols"] == ["XRPUSDT"]
