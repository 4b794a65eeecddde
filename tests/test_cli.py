"""The `tradebot` command line as an operator runs it: help, config, and bad configuration."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trader.cli import EXIT_CONFIG

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
    assert re.search(r"^\(effective feed\) +exchange$", result.stdout, re.MULTILINE)
    for secret in (SECRET_KEY, SECRET_VALUE):
        assert secret not in result.stdout
        assert secret not in result.stderr


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
