"""A strategy that raises (or returns something that is no Signal) ends a backtest at the
first failed tick with one line naming the error, the symbol, the candle time and where it
was raised, exit 2: never a flood of per-tick tracebacks followed by a "0 trades" report
and exit 0 (a replayed tick cannot be retried; a report over skipped ticks is a result
that never happened). The live agent keeps containing such errors (tests/test_containment)."""

from pathlib import Path

from tests.test_cli import XRP_DAY, backtest, run_cli

STRATEGIES = '''
from decimal import Decimal
from trader.domain import Side, Signal

class Raises:
    name, warmup = "raises", 10
    def signal(self, closed):
        if len(closed) > 20:
            return 1 / 0
        return None

class NoSignal:
    name, warmup = "no-signal", 10
    def signal(self, closed):
        return "BUY"
'''


def with_strategies(folder: Path) -> Path:
    (folder / "mystrategies").mkdir()
    (folder / "mystrategies" / "bad.py").write_text(STRATEGIES)
    return folder


def test_a_strategy_that_raises_stops_the_backtest_with_one_line(tmp_path: Path) -> None:
    folder = with_strategies(tmp_path)
    result = backtest(folder, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "bad",
                      TRADEBOT_STRATEGY="mystrategies.bad:Raises")
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    [line] = [text for text in result.stderr.splitlines() if text.startswith("backtest error")]
    assert "ZeroDivisionError" in line and "XRPUSDT" in line and "2021-11-16" in line, line
    assert "bad.py" in line and "signal" in line, line
    assert result.stderr.count("Traceback") <= 1, "one traceback at most, not one per tick"
    assert "Portfolio" not in result.stdout, "no report of a run that did not happen"


def test_a_strategy_that_returns_no_signal_stops_it_too(tmp_path: Path) -> None:
    folder = with_strategies(tmp_path)
    result = backtest(folder, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "nosignal",
                      TRADEBOT_STRATEGY="mystrategies.bad:NoSignal")
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    [line] = [text for text in result.stderr.splitlines() if text.startswith("backtest error")]
    assert "strategy 'no-signal' returned 'BUY' (str)" in line, line
    assert "must return a trader.domain.Signal or None" in line, line


def test_in_a_sweep_the_trial_is_reported_failed_with_that_line(tmp_path: Path) -> None:
    folder = with_strategies(tmp_path)
    result = run_cli(folder, "sweep", "--no-progress", "--symbols", "XRPUSDT", *XRP_DAY,
                     "--grid", "leverage=2,3", TRADEBOT_STRATEGY="mystrategies.bad:Raises")
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed: trial")]
    assert len(failed) == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert all("ZeroDivisionError" in line and "bad.py" in line for line in failed)
    assert result.returncode != 0
    assert result.stderr.count("Traceback") == 0, "a failed trial is its line, not a traceback"
