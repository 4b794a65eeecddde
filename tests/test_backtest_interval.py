"""The candle interval a backtest ran on, in report.txt and report.json: 1m data fed to a
strategy written for 5m candles is seen in the report, not only in the results."""

from pathlib import Path

from tests.test_backtest_input import HEADER
from tests.test_cli import backtest, report_of, xrp_rows


def test_the_bundled_run_names_each_symbols_interval(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--run-id", "both")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "both")["intervals"] == {"BTCUSDT": "15m", "XRPUSDT": "5m"}
    assert "  candle interval BTCUSDT 15m, XRPUSDT 5m\n" in result.stdout
    assert "time limit" not in result.stderr    # 5m and 15m candles under the 40 min limit
    assert "  candle interval BTCUSDT 15m, XRPUSDT 5m\n" in (
        tmp_path / "out" / "both" / "report.txt").read_text()


def test_one_minute_data_says_1m(tmp_path: Path) -> None:
    rows = xrp_rows(300, 1000)
    first = int(rows[0].split(",")[0])
    minutes = [f"{first + 60_000 * index},{row.split(',', 1)[1]}" for index, row in enumerate(rows)]
    data = tmp_path / "ETHUSDT-1m.csv"
    data.write_text(HEADER + "\n".join(minutes) + "\n")
    result = backtest(tmp_path, "--data", str(data), "--run-id", "minute")
    assert result.returncode == 0, result.stderr
    assert report_of(tmp_path, "minute")["intervals"] == {"ETHUSDT": "1m"}
    assert "  candle interval 1m\n" in result.stdout


def test_candles_no_shorter_than_the_time_limit_are_said_to_close_every_trade(
        tmp_path: Path) -> None:
    """Found by h-review13: on 1h candles with TRADEBOT_TIME_IN_TRADE_MINUTES 40 every trade
    was a TIME_EXIT one candle after its entry, and nothing said why."""
    rows = xrp_rows(300, 1000)
    first = int(rows[0].split(",")[0])
    hours = [f"{first + 3_600_000 * index},{row.split(',', 1)[1]}" for index, row in enumerate(rows)]
    data = tmp_path / "ETHUSDT-1h.csv"
    data.write_text(HEADER + "\n".join(hours) + "\n")
    note = ("ETHUSDT: every position is closed at the first candle close after its entry: the "
            "time limit (TRADEBOT_TIME_IN_TRADE_MINUTES 40 min) is shorter than a candle "
            "(60 min); use shorter candles, or read the results as one-candle trades")
    result = backtest(tmp_path, "--data", str(data), "--run-id", "hour")
    assert result.returncode == 0, result.stderr
    assert note in result.stderr.splitlines()
    assert note in report_of(tmp_path, "hour")["notes"]
    # the limit at its highest, 60 min: a 60 min candle still closes every trade
    result = backtest(tmp_path, "--data", str(data), "--run-id", "hour60",
                      TRADEBOT_TIME_IN_TRADE_MINUTES="60")
    assert result.returncode == 0, result.stderr
    assert ("ETHUSDT: every position is closed at the first candle close after its entry: the "
            "time limit (TRADEBOT_TIME_IN_TRADE_MINUTES 60 min) is no longer than a candle "
            "(60 min); use shorter candles, or read the results as one-candle trades"
            ) in result.stderr.splitlines()
