"""`tradebot backtest` input as a new user meets it: bad numbers in a candle file, --from /
--to, gaps in the data, --data paths and names, a closed stdout, the progress bar."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_cli import XRP_DAY, backtest, report_of, run_cli, xrp_rows
from tests.test_replay_progress import on_a_terminal

HEADER = "open_time,open,high,low,close,volume\n"


def xrp_file(folder: Path, name: str = "XRPUSDT-5m.csv", rows: int = 300,
             change: dict[int, str] | None = None) -> Path:
    """Bundled XRPUSDT candles (open_time in ms); `change` maps a line number to its row."""
    lines = [HEADER.strip(), *xrp_rows(rows, 1000)]
    for number, row in (change or {}).items():
        lines[number - 1] = row
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def with_field(line: str, field: str, value: str) -> str:
    columns = line.split(",")
    columns[HEADER.strip().split(",").index(field)] = value
    return ",".join(columns)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


# --- #4 numbers that are no prices ------------------------------------------------------
def test_nan_or_absurd_prices_are_refused_with_the_file_line_and_field(tmp_path: Path) -> None:
    row = xrp_rows(60, 1000)[50]              # line 52 of the file
    cases = {"close": ("nan", "line 52: close is not a finite number"),
             "high": ("1e30", "line 52: high 1e30 is more than 10 x the open/close: a bad row?"),
             "low": ("0.0001", "line 52: low 0.0001 is more than 10 x below the open/close: "
                               "a bad row?")}
    for field, (value, expected) in cases.items():
        data = xrp_file(tmp_path, change={52: with_field(row, field, value)})
        line = one_error_line(backtest(tmp_path, "--data", str(data)))
        assert line == f"backtest error: {data}: {expected}"
    everything_huge = ",".join([row.split(",")[0], *["1e400"] * 4, "1"])
    data = xrp_file(tmp_path, change={52: everything_huge})
    assert "line 52: high 1e400 is larger than 1,000,000,000,000,000: not a price" in one_error_line(
        backtest(tmp_path, "--data", str(data)))


# --- #7 --from / --to ---------------------------------------------------------------------
def test_a_date_alone_as_to_includes_that_whole_day(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-16",
                      "--to", "2021-11-16", "--run-id", "day")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "day")["candles"] == 288          # 24 h of 5 min candles
    assert "2021-11-16 00:05 -> 2021-11-17 00:00 UTC" in result.stdout


def test_a_time_as_to_is_the_last_candle_and_one_candle_is_singular(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-16T00:00",
                      "--to", "2021-11-16T00:00", "--run-id", "one")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "one")["candles"] == 1
    assert "  1 candle in " in result.stdout


def test_from_after_to_is_said_so(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-20",
                      "--to", "2021-11-16")
    assert one_error_line(result) == "backtest error: --from is after --to"


def test_the_help_says_what_a_date_alone_means(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "backtest", "--help")
    assert "a date alone includes that whole day" in " ".join(result.stdout.split())


# --- #8 gaps ------------------------------------------------------------------------------
def test_a_gap_in_the_data_is_warned_about_once_and_the_run_goes_on(tmp_path: Path) -> None:
    rows = xrp_rows(600, 1000)
    kept = rows[:300] + rows[500:]             # 200 rows = 16 h 40 min missing
    data = tmp_path / "XRPUSDT-5m.csv"
    data.write_text(HEADER + "\n".join(kept) + "\n")
    result = backtest(tmp_path, "--data", str(data), "--run-id", "gap")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "gap" in line]
    assert warnings == ["XRPUSDT: 1 gap in the data, the largest 16 h 40 min at "
                        "2021-11-16 01:00; the engine trades across it"]
    assert report_of(tmp_path, "gap")["candles"] == 400


# --- #9 --data paths and names ------------------------------------------------------------
def test_a_missing_file_or_a_directory_is_named_as_such(tmp_path: Path) -> None:
    assert one_error_line(backtest(tmp_path, "--data", "nonexist.csv")) == (
        "backtest error: nonexist.csv: no such file")
    assert one_error_line(backtest(tmp_path, "--data", str(tmp_path))) == (
        f"backtest error: {tmp_path}: is a directory, not a candle CSV file")


def test_the_symbol_hint_names_no_particular_symbol(tmp_path: Path) -> None:
    data = xrp_file(tmp_path, "solusdt_data.csv")
    assert one_error_line(backtest(tmp_path, "--data", str(data))) == (
        f"backtest error: {data}: the file name does not say the symbol; pass "
        "--symbol SYMBOL (e.g. ETHUSDT) or name the file like ETHUSDT-5m.csv")


def test_a_csv_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    data = tmp_path / "XRPUSDT-5m.csv"
    data.write_text(HEADER + "\n".join(xrp_rows(300, 1000)) + "\n", encoding="utf-8-sig")
    result = backtest(tmp_path, "--data", str(data), "--run-id", "bom")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "bom")["candles"] == 300


def test_a_replay_takes_the_symbol_of_its_data_from_symbol(tmp_path: Path) -> None:
    """`run --replay --data mydata.csv` needs --symbol like the backtest; given, the file is
    read (here its bad row is what stops the replay, not its name)."""
    row = xrp_rows(60, 1000)[50]
    data = xrp_file(tmp_path, "mydata.csv", change={52: with_field(row, "close", "nan")})
    database = {"TRADEBOT_DB": str(tmp_path / "t.db")}
    unnamed = run_cli(tmp_path, "run", "--replay", "--data", str(data), **database)
    assert unnamed.returncode == 2 and "pass --symbol SYMBOL" in unnamed.stderr
    named = run_cli(tmp_path, "run", "--replay", "--data", str(data), "--symbol", "xrpusdt",
                    **database)
    assert named.returncode == 2, named.stderr[-2000:]
    assert "line 52: close is not a finite number" in named.stderr
    assert "Traceback" not in named.stderr


# --- #10 a reader that stops reading ----------------------------------------------------------
def test_a_closed_stdout_ends_the_backtest_quietly(tmp_path: Path) -> None:
    """`tradebot backtest | head -1`: the reader is gone before the report is printed."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    read_end, write_end = os.pipe()
    os.close(read_end)                         # like `head` after its first line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "trader", "backtest", "--no-progress", "--symbols",
             "XRPUSDT", "--from", "2021-11-16", "--to", "2021-11-16"],
            cwd=tmp_path, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True,
            timeout=120, check=False)
    finally:
        os.close(write_end)
    assert result.stderr == "", result.stderr[-2000:]
    assert result.returncode == 1              # the Python docs' recipe for EPIPE


# --- #11 progress -------------------------------------------------------------------------
def test_the_progress_bar_of_a_data_file_knows_its_total(tmp_path: Path) -> None:
    data = xrp_file(tmp_path)
    screen = on_a_terminal(tmp_path, "backtest", "--data", str(data), "--run-id", "bar")
    assert "/300 [" in screen, screen[-2000:]


def test_no_progress_bar_is_drawn_into_a_file_or_a_pipe(tmp_path: Path) -> None:
    """Redrawn with carriage returns, a bar would litter a log file with frames."""
    data = xrp_file(tmp_path)
    result = run_cli(tmp_path, "backtest", "--data", str(data), "--run-id", "piped")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "/300 [" not in result.stderr, result.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "piped" / "report.json").read_text())["candles"] == 300


# --- symbols asked for by name (fresh-user findings) ---------------------------------------

def test_a_symbol_asked_for_without_candles_in_the_period_is_said_to_be_left_out(
        tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT,BTCUSDT", *XRP_DAY, "--run-id", "both")
    assert result.returncode == 0, result.stderr[-2000:]
    [line] = [text for text in result.stderr.splitlines() if text.startswith("BTCUSDT:")]
    assert "no candles in the chosen period" in line and "left out" in line, line
    assert "2026-" in line, "names the period its data does cover"


def test_a_period_without_any_candle_says_what_the_data_covers(tmp_path: Path) -> None:
    data = xrp_file(tmp_path)
    line = one_error_line(run_cli(tmp_path, "backtest", "--data", str(data), "--from",
                                  "2030-01-01", "--to", "2030-01-02"))
    assert "no candles in the chosen period (from 2030-01-01 00:00 to 2030-01-02 23:59 UTC)" \
        in line, line
    assert "the data covers XRPUSDT 20" in line, line


def test_symbol_without_data_is_refused_with_the_option_meant(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbol", "XRPUSDT")
    assert result.returncode == 2
    assert "use --symbols XRPUSDT" in result.stderr, result.stderr[-1000:]


def test_two_backtests_with_the_same_run_id_do_not_overwrite_each_other(tmp_path: Path) -> None:
    """While one run holds out/<run-id>, a second is refused (it used to delete the first's
    files); once the first is gone, the same id is free again (a replacement)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from trader.backtest_folders import new_run_dir; new_run_dir(Path('out'), 'same'); "
         "print('held', flush=True); sys.stdin.read()"],
        cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "same")
        assert refused.returncode == 2, refused.stdout[-500:] + refused.stderr[-500:]
        assert "another backtest or sweep is writing" in refused.stderr
    finally:
        holder.communicate("", timeout=30)
    again = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "same")
    assert again.returncode == 0, again.stderr[-1000:]
    assert (tmp_path / "out" / "same" / "report.json").exists()


def test_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    for extra in ((), ("--run-id", "x")):
        result = backtest(tmp_path, "--symbols", "XRPUSDT", "--out", "results", *extra)
        assert result.returncode == 2, result.stderr[-1000:]
        assert "--out results" in result.stderr and "Traceback" not in result.stderr


def test_out_that_cannot_be_created_names_the_option(tmp_path: Path) -> None:
    """A folder the system refuses to create (here: under /proc, where even root cannot)
    is named as the --out problem, not as a bare "[Errno 2] No such file or directory"."""
    for extra in ((), ("--run-id", "x")):
        result = backtest(tmp_path, "--symbols", "XRPUSDT", "--out", "/proc/tradebot-out",
                          *extra)
        assert result.returncode == 2, result.stderr[-1000:]
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("backtest error: --out /proc/tradebot-out: cannot create"), line
