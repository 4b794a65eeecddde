"""tradebot: `tradebot backtest --data XRPUSDT-5m.csv` in process, minus the report files.

The command line is parsed by tradebot's own parser and run through the steps of
`trader.backtest_cli.run_backtest_cli`: `backtest_data` (reads the CSV) and `run_groups` (the
live engine on the paper exchange, default strategy = the rule, its regime and risk rules,
a database on disk). Timed: both; not timed: writing the report and its charts. Runs in the
project's virtualenv (the interpreter of benchmarks/peers.py).
"""

import sys
from pathlib import Path

import rule

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # a fresh clone, not installed

from trader.backtest_data import backtest_data
from trader.backtest_periods import overlapping_groups, run_groups
from trader.cli import build_parser, package_version
from trader.config import load_settings
from trader.logs import setup_logging


def main() -> None:
    options = rule.arguments()
    args = build_parser().parse_args(["backtest", "--data", str(options.data / "XRPUSDT-5m.csv"),
                                      "--out", str(options.workdir / "out"), "--no-progress"])
    settings = load_settings(_env_file=None, TRADEBOT_EXCHANGE="paper")
    setup_logging(level="ERROR")   # as the command does: INFO lines would be most of the cost
    with rule.Stopwatch() as watch:
        candles, funding, warmup = backtest_data(settings, args)
        reports = run_groups(settings, overlapping_groups(candles),
                             options.workdir / "out" / "databases", progress=False,
                             funding=funding, warmup=warmup)
    count = sum(report.candles for report in reports)
    rule.report(candles=count, rows=count, seconds=watch.seconds,
                trades=sum(len(report.trades) for report in reports),
                version=f"tradebot {package_version()}")


if __name__ == "__main__":
    main()
