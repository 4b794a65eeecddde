"""`tradebot run` and `tradebot config` on a bad setting: exit code 2 and exactly one stderr
line naming the variable (the contract: configuration errors and signals are the only exits),
never a traceback (review rv15: an infinite period passed `config` and killed `run`)."""

from pathlib import Path

import pytest

from tests.test_cli import run_cli
from trader.cli import EXIT_CONFIG


@pytest.mark.parametrize("command", ["config", "run"])
@pytest.mark.parametrize(("variable", "value"), [
    ("TRADEBOT_RECONCILE_SECONDS", "inf"), ("TRADEBOT_SENTINEL_DEBOUNCE_SECONDS", "inf"),
    ("TRADEBOT_TICK_SECONDS", "0.01"), ("TRADEBOT_LEVERAGE", "0"),
])
def test_a_bad_setting_is_one_stderr_line_and_exit_2(tmp_path: Path, command: str,
                                                     variable: str, value: str) -> None:
    keys = {"TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}
    result = run_cli(tmp_path, command, **keys, **{variable: value})
    assert result.returncode == EXIT_CONFIG == 2, result.stderr[-2000:]
    [line] = result.stderr.splitlines()
    assert line.startswith(f"config error: {variable}: ") and f"(got '{value}')" in line
    assert ".env.example" in line


def test_keys_without_an_exchange_warn_at_start(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "config", BINANCE_API_KEY="k", BINANCE_API_SECRET="s")
    assert result.returncode == 0, result.stderr
    assert [line.split("config warning: ", 1)[1] for line in result.stderr.splitlines()
            if "config warning: " in line] == [
        "paper exchange: TRADEBOT_EXCHANGE is not set; set TRADEBOT_EXCHANGE=binance to trade"]
