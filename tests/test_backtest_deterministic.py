"""A backtest gives the same trades every run: the one retry of a stop refused -2021 ("would
immediately trigger") paused a random 300-400 ms, and the backtest's clock advanced by it,
so the close times of maker-mode trades differed from run to run (found by h-twotp21)."""

from pathlib import Path

from benchmarks.common import random_walk_candles, write_candles_csv
from tests.test_cli import backtest


def walk_csv(path: Path, rows: int) -> Path:
    """The benchmarks' seeded 1m random walk (BTCUSDT-like), whose fast candles have stops
    refused -2021 in maker mode within the first 2,400 rows."""
    return write_candles_csv(path, random_walk_candles("BTCUSDT", rows, seed=1))


def test_two_runs_of_one_maker_backtest_give_the_same_trades(tmp_path: Path) -> None:
    data = walk_csv(tmp_path / "BTCUSDT-1m.csv", 2600)
    trades = []
    for run in ("a", "b"):
        done = backtest(tmp_path, "--data", str(data), "--run-id", run,
                        TRADEBOT_ENTRY_MODE="maker")
        assert done.returncode == 0, done.stderr[-2000:]
        trades.append((tmp_path / "out" / run / "trades.csv").read_text())
    assert trades[0].count("\n") > 5
    assert trades[0] == trades[1]
