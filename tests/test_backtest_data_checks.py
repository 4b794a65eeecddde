"""What a candle file's rows say that a backtest must not run over unsaid: two symbols' rows
in one file (XRP ~1.1, then BTC ~70,000: a price jump no candle makes) stop the run naming
the line; gaps are kept in the report's notes, not only said on stderr."""

from pathlib import Path

from tests.test_backtest_input import HEADER, one_error_line, xrp_file
from tests.test_cli import backtest, report_of, xrp_rows
from trader.market.replay import bundled_data_files


def btc_rows() -> list[str]:
    source = next(p for p in bundled_data_files() if p.name.startswith("BTCUSDT"))
    return source.read_text().splitlines()[1:]


def test_two_symbols_rows_in_one_file_stop_the_run_at_the_first_row_of_the_second(
        tmp_path: Path) -> None:
    xrp, btc = xrp_rows(1000, 1000), btc_rows()   # mostly 5m rows: the file's interval
    data = tmp_path / "XRPUSDT-5m.csv"
    data.write_text(HEADER + "\n".join(xrp + btc) + "\n")
    close, next_open = xrp[-1].split(",")[4], btc[0].split(",")[1]
    assert one_error_line(backtest(tmp_path, "--data", str(data))) == (
        f"backtest error: {data}: line 1002: open {next_open} is more than 10 x the close "
        f"{close} of line 1001: two symbols' rows in one file?")
    down = tmp_path / "BTCUSDT-15m.csv"
    down.write_text(HEADER + "\n".join(btc[:50] + [
        f"{int(row.split(',')[0]) + 10**12},{row.split(',', 1)[1]}" for row in xrp[:300]]) + "\n")
    assert "line 52: open " in one_error_line(backtest(tmp_path, "--data", str(down)))
    assert "is less than a tenth of the close" in one_error_line(
        backtest(tmp_path, "--data", str(down)))


def test_a_real_move_between_rows_is_not_refused(tmp_path: Path) -> None:
    """A gap of 9 x between one close and the next open (a halt, a listing) still runs."""
    rows = xrp_rows(300, 1000)
    fields = rows[100].split(",")
    lifted = [fields[0], *(f"{float(value) * 9:.4f}" for value in fields[1:5]), fields[5]]
    data = xrp_file(tmp_path, change={102: ",".join(lifted)})
    result = backtest(tmp_path, "--data", str(data), "--run-id", "jump")
    assert result.returncode == 0, result.stderr


def test_gaps_are_in_the_reports_notes_too(tmp_path: Path) -> None:
    rows = xrp_rows(600, 1000)
    data = tmp_path / "XRPUSDT-5m.csv"
    data.write_text(HEADER + "\n".join(rows[:300] + rows[500:]) + "\n")
    result = backtest(tmp_path, "--data", str(data), "--run-id", "gap")
    assert result.returncode == 0, result.stderr
    warning = ("XRPUSDT: 1 gap in the data, the largest 16 h 40 min at 2021-11-16 01:00; "
               "the engine trades across it")
    assert [line for line in result.stderr.splitlines() if "gap" in line] == [warning]
    assert warning in report_of(tmp_path, "gap")["notes"]
    assert warning in (tmp_path / "out" / "gap" / "report.txt").read_text()
