"""The `tradebot` command line as an operator runs it: help, --version, config, bad or\nmisspelt configuration, and the backtest's output, symbols, data files and strategies."""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trader.cli import EXIT_CONFIG
from trader.market.replay import bundled_data_files

SECRET_KEY = "supersecretkey123"
SECRET_VALUE = "supersecretvalue987"


def run_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m trader ARGS` with only PATH, HOME and the given variables set."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
             "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, "-m", "trader", *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=60, check=False)


def config_lines(output: str) -> dict[str, str]:
    shown: dict[str, str] = {}
    for line in output.splitlines():
        name, _, value = line.partition(" ")
        shown[name] = value.strip()
    return shown


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "backtest", "config", "shutdown", "wake"):
        assert command in result.stdout


def test_config_prints_every_variable_with_secrets_masked(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "config", TRADEBOT_EXCHANGE="binance", BINANCE_API_KEY=SECRET_KEY,
                     BINANCE_API_SECRET=SECRET_VALUE, TRADEBOT_SYMBOLS="ethusdt,btcusdt")
    assert result.returncode == 0, result.stderr
    shown = config_lines(result.stdout)
    assert shown["TRADEBOT_EXCHANGE"] == "binance"
    assert shown["TRADEBOT_SYMBOLS"] == "ETHUSDT,BTCUSDT"
    assert shown["BINANCE_API_KEY"] == "********"
    assert shown["BINANCE_API_SECRET"] == "********"
    assert shown["BINANCE_TESTNET"] == "True"
    assert shown["TRADEBOT_FEED"] == "exchange (default for binance)"   # was empty
    assert shown["TRADEBOT_REPLAY_FILE"] == ""                           # no replay
    for secret in (SECRET_KEY, SECRET_VALUE):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_config_says_when_nothing_listens_on_port(tmp_path: Path) -> None:
    """/config and `tradebot config` showed PORT=8080 where nothing listens unless the
    platform sets PORT (found by a reviewer)."""
    unset = config_lines(run_cli(tmp_path, "config").stdout)["PORT"]
    assert unset == "8080 (unset: nothing listens; a web dyno sets it)", unset
    assert config_lines(run_cli(tmp_path, "config", PORT="5000").stdout)["PORT"] == "5000"


def test_config_checks_the_strategy_as_run_and_backtest_do(tmp_path: Path) -> None:
    """`tradebot config` said nothing of a TRADEBOT_STRATEGY that does not load (exit 0),
    while `run` and `backtest` stop on it (found by a reviewer)."""
    result = run_cli(tmp_path, "config", TRADEBOT_STRATEGY="nomod:X")
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if "error" in line]
    assert line.startswith("config error: TRADEBOT_STRATEGY") and "nomod" in line, line
    assert "TRADEBOT_STRATEGY" in config_lines(result.stdout)     # the settings still shown


def test_config_shows_the_feed_and_replay_file_paper_uses_by_default(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "config", TRADEBOT_EXCHANGE="paper")
    assert result.returncode == 0, result.stderr
    shown = config_lines(result.stdout)
    assert shown["TRADEBOT_FEED"] == "replay (default for paper)"
    assert shown["TRADEBOT_REPLAY_FILE"] == "(the bundled data)"


def test_config_reads_the_dotenv_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADEBOT_LEVERAGE=7\nTELEGRAM_BOT_TOKEN=123456:tok-abcdef\n"
                                   "TELEGRAM_ALLOWED_CHAT_IDS=42\n", encoding="utf-8")
    result = run_cli(tmp_path, "config")
    assert result.returncode == 0, result.stderr
    shown = config_lines(result.stdout)
    assert shown["TRADEBOT_LEVERAGE"] == "7"
    assert shown["TELEGRAM_ALLOWED_CHAT_IDS"] == "42"
    assert shown["TELEGRAM_BOT_TOKEN"] == "********"
    assert "tok-abcdef" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["config", "run", "backtest"])
def test_bad_configuration_exits_2_with_one_line_per_problem(tmp_path: Path,
                                                             command: str) -> None:
    result = run_cli(tmp_path, command, TRADEBOT_LEVERAGE="0", TRADEBOT_INTERVAL="2m",
                     BINANCE_FUTURES_WS_URL="https://example.com", BINANCE_API_KEY=SECRET_KEY)
    assert result.returncode == EXIT_CONFIG == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("config error:")]
    named = sorted(line.removeprefix("config error: ").split(":")[0] for line in problems)
    assert named == ["BINANCE_FUTURES_WS_URL", "TRADEBOT_INTERVAL", "TRADEBOT_LEVERAGE"]
    assert "Traceback" not in result.stderr
    assert SECRET_KEY not in result.stdout + result.stderr
    assert result.stdout == ""


def test_token_without_chat_ids_stops_start_up(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "config", TELEGRAM_BOT_TOKEN="123456:tok-abcdef")
    assert result.returncode == 2
    assert "config error: TELEGRAM_ALLOWED_CHAT_IDS required" in result.stderr
    assert "tok-abcdef" not in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_value_in_dotenv_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADEBOT_EXCHANGE=kraken\n", encoding="utf-8")
    result = run_cli(tmp_path, "config")
    assert result.returncode == 2
    assert result.stderr.startswith("config error: TRADEBOT_EXCHANGE:")
    assert "Traceback" not in result.stderr


# --- --version and unknown variables ----------------------------------------------------------

def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tradebot {importlib.metadata.version('tradebot')}"


def test_a_misspelt_variable_is_warned_with_the_closest_name(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_CHATID=42\nTRADEBOT_SEED=3\n", encoding="utf-8")
    result = run_cli(tmp_path, "config", TRADEBOT_LEVERAG="3", TRADEBOT_LEVERAGE="4",
                     BINANCE_SECRET="x", TRADEBOT_CHAOS_SEED="7", OTHER_TOOL_SETTING="1")
    assert result.returncode == 0, result.stderr
    warnings = [line.split("config warning: ", 1)[1] for line in result.stderr.splitlines()
                if "config warning: " in line]
    assert warnings == [
        "BINANCE_SECRET is not a setting and is ignored; did you mean BINANCE_API_SECRET?",
        "TELEGRAM_CHATID (in .env) is not a setting and is ignored; did you mean "
        "TELEGRAM_ALLOWED_CHAT_IDS?",
        "TRADEBOT_LEVERAG is not a setting and is ignored; did you mean TRADEBOT_LEVERAGE?",
    ]
    assert config_lines(result.stdout)["TRADEBOT_LEVERAGE"] == "4"
    assert "x" not in "".join(warnings).replace("xt", "")   # names only, never values


# --- backtest ---------------------------------------------------------------------------------

XRP_DAY = ("--from", "2021-11-16", "--to", "2021-11-16")   # a date alone: the whole day


def backtest(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, "backtest", "--no-progress", *args, **env)


def report_of(cwd: Path, run_id: str) -> dict:
    return json.loads((cwd / "out" / run_id / "report.json").read_text())


def test_backtest_writes_one_run_folder_and_prints_where(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "first")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "first"
    assert sorted(p.name for p in folder.iterdir()) == [
        "databases", "equity.csv", "equity.png", "report.json", "report.txt", "trades.csv"]
    assert result.stdout.rstrip().endswith(
        "Files in out/first/\n  equity.png  trades.csv  equity.csv  report.json  report.txt  "
        "databases/")
    assert (folder / "report.txt").read_text() == result.stdout
    for heading in ("Portfolio", "By symbol", "By exit reason", "CAGR", "Calmar", "SQN",
                    "Expectancy", "from / to"):
        assert heading in result.stdout, heading
    assert report_of(tmp_path, "first")["symbols"] == ["XRPUSDT"]
    again = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY)
    assert again.returncode == 0, again.stderr
    assert re.search(r"Files in out/\d{8}-\d{6}(-\d+)?/", again.stdout)


def test_backtest_runs_the_symbols_of_tradebot_symbols(tmp_path: Path) -> None:
    result = backtest(tmp_path, *XRP_DAY, "--run-id", "env", TRADEBOT_SYMBOLS="XRPUSDT")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "env")["symbols"] == ["XRPUSDT"]
    missing = backtest(tmp_path, TRADEBOT_SYMBOLS="ETHUSDT")
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("backtest error: no data for ETHUSDT (asked by "
                                      "TRADEBOT_SYMBOLS); the data has BTCUSDT, XRPUSDT")


def xrp_rows(count: int, scale: int) -> list[str]:
    """Bundled XRPUSDT candles with open_time in seconds (scale 1), ms (1000) or µs."""
    bundled = bundled_data_files()
    source = next(p for p in bundled if p.name.startswith("XRPUSDT"))
    lines = source.read_text().splitlines()[1: count + 1]
    return [f"{int(line.split(',')[0]) * scale // 1000},{line.split(',', 1)[1]}" for line in lines]


def test_backtest_of_a_file_without_a_symbol_in_its_name_needs_symbol(tmp_path: Path) -> None:
    data = tmp_path / "mydata.csv"
    data.write_text("open_time,open,high,low,close,volume\n" + "\n".join(xrp_rows(300, 1)) + "\n")
    refused = backtest(tmp_path, "--data", str(data))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"backtest error: {data}: the file name does not say "
                                      "the symbol; pass --symbol SYMBOL (e.g. ETHUSDT) or name "
                                      "the file like ETHUSDT-5m.csv")
    result = backtest(tmp_path, "--data", str(data), "--symbol", "xrpusdt", "--run-id", "mine")
    assert result.returncode == 0, result.stderr
    document = report_of(tmp_path, "mine")
    assert document["symbols"] == ["XRPUSDT"]                 # not "MYDATA"
    assert document["performance"]["period_start"].startswith("2021-11-15")   # not 1970


def test_backtest_refuses_times_in_no_known_unit_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "XRPUSDT-5m.csv"
    data.write_text("open_time,open,high,low,close,volume\n0,1,1,1,1,1\n300,1,1,1,1,1\n")
    result = backtest(tmp_path, "--data", str(data))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "open_time 0 (s) is 1970-01-01, outside 2010..2100" in result.stderr


def test_the_readmes_custom_strategy_runs_as_written(tmp_path: Path) -> None:
    """The README's example file and command, with the console script (not python -m,
    which would put the working directory on sys.path by itself)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("# mystrategies/cross.py\n", 1)[1].split("```", 1)[0]
    command = re.search(r"`(TRADEBOT_STRATEGY=\S+) tradebot backtest`", readme)
    assert command is not None
    name, _, value = command.group(1).partition("=")
    (tmp_path / "mystrategies").mkdir()
    (tmp_path / "mystrategies" / "cross.py").write_text(code)
    script = Path(sys.executable).with_name("tradebot")
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), name: value}
    result = subprocess.run([str(script), "backtest", "--no-progress", "--symbols", "XRPUSDT",
                             *XRP_DAY, "--run-id", "cross"], cwd=tmp_path, env=clean,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Portfolio" in result.stdout


def test_a_replay_of_a_bad_candle_file_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    """`tradebot run --replay --data FILE` with candles it cannot read: exit 2, one line
    naming the file and the problem, no traceback (the same for TRADEBOT_REPLAY_FILE)."""
    data = tmp_path / "XRPUSDT-5m.csv"
    data.write_text("open_time,open,high,low,close,volume\n0,1,1,1,1,1\n300,1,1,1,1,1\n")
    for args, env in ((("run", "--replay", "--data", str(data)), {}),
                      (("run", "--replay"), {"TRADEBOT_REPLAY_FILE": str(data)}),
                      (("run", "--replay", "--data", str(tmp_path / "missing.csv")), {})):
        result = run_cli(tmp_path, *args, TRADEBOT_DB=str(tmp_path / "t.db"), **env)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "XRPUSDT-5m.csv" in errors[0] or "missing.csv" in errors[0]


def test_a_replay_of_an_empty_or_missing_file_says_so_in_one_line(tmp_path: Path) -> None:
    """As `tradebot backtest --data` says it: a header without rows (was a ValueError
    traceback from min() of no candles, exit 1), a file that is not there (was "the file
    name does not say the symbol" for a name without one)."""
    empty = tmp_path / "XRPUSDT-5m.csv"
    empty.write_text("open_time,open,high,low,close,volume\n")
    cases = (((str(empty),), f"--data: {empty}: no candle rows, only the header"),
             ((str(tmp_path / "candles.csv"),), f"--data: {tmp_path / 'candles.csv'}: no such file"))
    for files, expected in cases:
        result = run_cli(tmp_path, "run", "--replay", "--data", *files,
                         TRADEBOT_DB=str(tmp_path / "t.db"))
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"config error: {expected}" in result.stderr.splitlines(), result.stderr[-2000:]


@pytest.mark.parametrize("option", [("--data", "XRPUSDT-5m.csv"), ("--speed", "600"),
                                    ("--symbol", "XRPUSDT")])
def test_replay_options_without_a_replay_never_start_the_live_agent(
        tmp_path: Path, option: tuple[str, ...]) -> None:
    """`tradebot run --data FILE` (--replay forgotten) with TRADEBOT_EXCHANGE=binance used to
    start the live agent on the exchange and ignore the file: exit 2 before any request."""
    result = run_cli(tmp_path, "run", *option, TRADEBOT_DB=str(tmp_path / "t.db"),
                     TRADEBOT_EXCHANGE="binance", BINANCE_API_KEY="k", BINANCE_API_SECRET="s",
                     BINANCE_FUTURES_URL="http://127.0.0.1:9")   # nothing listens there
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == (
        f"config error: {option[0]} is for a replay: add --replay (without it `tradebot run` "
        "is the live agent on binance, which would ignore it)"), result.stderr[-2000:]


@pytest.mark.parametrize("speed", ["nan", "inf", "-1", "0"])
def test_replay_speed_must_be_a_finite_positive_number(tmp_path: Path, speed: str) -> None:
    result = run_cli(tmp_path, "run", "--replay", "--speed", speed)
    assert result.returncode == 2
    assert "--speed" in result.stderr and "greater than 0" in result.stderr
