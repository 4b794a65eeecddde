"""A backtest's report says what decided its result (fresh-user finding: two run folders
could not be told apart): the strategy and its parameters, and every setting that changes a
backtest, by variable name; never a secret or where the live agent connects."""

from pathlib import Path

from tests.test_cli import XRP_DAY, backtest, report_of
from trader.config import load_settings
from trader.run_settings import changed_settings, run_settings
from trader.strategy.default import DefaultStrategy


def test_the_strategy_and_its_parameters_and_the_trading_settings_are_listed() -> None:
    settings = load_settings(_env_file=None, TRADEBOT_RISK_BASE="0.01", TRADEBOT_LEVERAGE="3")
    listed = run_settings(settings, DefaultStrategy(channel=40))
    assert listed["TRADEBOT_STRATEGY"] == "default"
    assert listed["strategy.name"] == "donchian-ema-breakout"
    assert listed["strategy.channel"] == "40" and listed["strategy.ema_slow"] == "50"
    assert listed["TRADEBOT_RISK_BASE"] == "0.01" and listed["TRADEBOT_LEVERAGE"] == "3"
    assert listed["TRADEBOT_EXIT_PLAN"] and listed["TRADEBOT_ENTRY_MODE"]


def test_secrets_and_connections_are_never_listed() -> None:
    settings = load_settings(_env_file=None, TRADEBOT_EXCHANGE="binance",
                             BINANCE_API_KEY="supersecretkey123", BINANCE_API_SECRET="s" * 20,
                             TELEGRAM_BOT_TOKEN="123456:telegram-token-value",
                             TELEGRAM_ALLOWED_CHAT_IDS="42", HEARTBEAT_URL="https://hc/abc123")
    listed = run_settings(settings, DefaultStrategy())
    text = " ".join([*listed, *listed.values()])
    for hidden in ("BINANCE", "TELEGRAM", "HEARTBEAT", "supersecretkey123", "telegram-token",
                   "abc123", "TRADEBOT_DB", "TRADEBOT_SYMBOLS", "PORT", "LOG_LEVEL"):
        assert hidden not in text, hidden


def test_changed_settings_are_those_off_their_default() -> None:
    settings = load_settings(_env_file=None, TRADEBOT_RISK_BASE="0.01")
    assert changed_settings(settings, DefaultStrategy(channel=40)) == {
        "strategy.name": "donchian-ema-breakout", "strategy.channel": "40",
        "TRADEBOT_RISK_BASE": "0.01"}


def test_the_backtest_report_carries_them(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "r",
                      TRADEBOT_RISK_BASE="0.01")
    assert result.returncode == 0, result.stderr[-2000:]
    settings = report_of(tmp_path, "r")["settings"]
    assert settings["TRADEBOT_RISK_BASE"] == "0.01" and settings["strategy.channel"] == "30"
    text = (tmp_path / "out" / "r" / "report.txt").read_text()
    assert "Settings (not at their default" in text and "TRADEBOT_RISK_BASE=0.01" in text
    assert "TRADEBOT_LEVERAGE" not in text, "only what differs from the defaults"
