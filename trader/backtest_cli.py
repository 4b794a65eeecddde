"""`tradebot backtest`: the data read (trader/backtest_data.py), the run folder, every
symbol on one account (trader/backtest_periods.py) or each on its own
(--separate-accounts, trader/backtest_accounts.py), one portfolio report in
`out/<run-id>/` (trader/report.py), printed with the folder's name.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from trader.backtest_data import backtest_data
from trader.backtest_folders import RunFolder, new_run_dir
from trader.backtest_input import BacktestError, SymbolCandles, gap_warnings
from trader.backtest_periods import overlapping_groups, run_group, run_groups
from trader.backtest_warmup import warmup_notes
from trader.config import Settings
from trader.data_notes import candle_intervals, funding_notes, time_limit_notes
from trader.domain import Candle
from trader.logs import setup_logging
from trader.market.replay import FundingSchedule
from trader.report import DATABASES, BacktestReport, combine, render_text, symbol_rows, write_report
from trader.run_settings import changed_settings, run_settings
from trader.strategy.base import load_strategy
from trader.sweep_signals import SweepInterrupted, stop_on_signals


def run_backtest_cli(settings: Settings, args: argparse.Namespace) -> int:
    """`tradebot backtest`: every group of overlapping symbols through the engine, one
    portfolio report in `<--out>/<run-id>/` (printed at the end), its notes also on stderr.
    Exit 2 on bad input; on SIGINT/SIGTERM "interrupted" and exit 130/143."""
    load_strategy(settings.strategy)   # a bad TRADEBOT_STRATEGY stops here, before any work
    try:
        # SIGINT/SIGTERM raise SweepInterrupted (workers terminated) from before the run's
        # folder exists: a SIGINT inherited as ignored (a background job) is not lost there.
        with stop_on_signals():
            return _backtest_and_report(settings, args)
    except SweepInterrupted as stop:
        print("interrupted", file=sys.stderr)
        return stop.exit_code          # 130 for SIGINT, 143 for SIGTERM


def _backtest_and_report(settings: Settings, args: argparse.Namespace) -> int:
    try:
        candles, funding, warmup = backtest_data(settings, args)
        folder = new_run_dir(args.out, args.run_id)
    except (BacktestError, ValueError, OSError) as exc:
        print(f"backtest error: {exc}", file=sys.stderr)
        return 2
    try:
        # an earlier run of the id stays until this one has succeeded (backtest_folders.py)
        return _run_into(settings, args, candles, funding, warmup, folder)
    finally:
        folder.discard()


def _run_into(settings: Settings, args: argparse.Namespace, candles: dict[str, SymbolCandles],
              funding: dict[str, FundingSchedule] | None, warmup: dict[str, list[Candle]],
              folder: RunFolder) -> int:
    if settings.log_level == "INFO":
        setup_logging(json_lines=settings.log_json, level="ERROR")   # the progress bar speaks
    try:
        combined = _portfolio(settings, args, candles, funding, warmup, folder)
    except BacktestError as exc:       # a tick that failed (the strategy's error, say)
        print(f"backtest error: {exc}", file=sys.stderr)
        return 2
    strategy = load_strategy(settings.strategy)
    combined = replace(combined, extra=in_final(combined.extra, folder))
    warmed, short = warmup_notes(warmup, candles, args.start, strategy.warmup)
    combined = replace(combined, notes=combined.notes + time_limit_notes(
        settings.time_in_trade_minutes, candles))
    for note in combined.notes + short:   # why the result is empty or suspect (also in report.txt)
        print(note, file=sys.stderr)
    # the gaps (said on stderr when the data was read), where the funding came from and the
    # warm-up had (facts of every run): in the report only
    report = replace(combined, settings=run_settings(settings, strategy),
                     changed=changed_settings(settings, strategy),
                     notes=combined.notes + gap_warnings(candles) + funding_notes(candles, funding)
                     + warmed,
                     intervals=candle_intervals(candles))
    try:
        files = write_report(report, folder.path, named_in=folder.final)
        folder.keep()
    except OSError as exc:             # a full disk, a quota: the run is done, print it anyway
        print(render_text(report, symbol_rows(report)))
        print(f"backtest error: the report could not be written into {folder.final} "
              f"({exc.strerror or exc}); it is printed above", file=sys.stderr)
        return 2
    print(render_text(report, symbol_rows(report), files))
    return 0


def _portfolio(settings: Settings, args: argparse.Namespace, candles: dict[str, SymbolCandles],
               funding: dict[str, FundingSchedule] | None, warmup: dict[str, list[Candle]],
               folder: RunFolder) -> BacktestReport:
    """The run's portfolio: every symbol on one account (`run_groups`), or with
    --separate-accounts each on an account of its own, in parallel processes."""
    progress = not args.no_progress and sys.stderr.isatty()   # redraws would litter a file
    separate = getattr(args, "separate_accounts", False)
    if separate and len(candles) > 1:
        from trader.backtest_accounts import run_separate_accounts
        from trader.report import SeparateAccounts, sum_accounts
        runs = run_separate_accounts(settings, candles, folder.path / DATABASES, run_group,
                                     progress=progress, funding=funding, warmup=warmup)
        accounts = SeparateAccounts(len(runs.reports), settings.paper_balance, runs.processes)
        return sum_accounts(runs.reports, accounts, runs.seconds, run_id=folder.final.name)
    if separate:
        print(f"--separate-accounts: one symbol ({next(iter(candles))}), one account: "
              "nothing to run apart")
    elif len(candles) > 1:
        print(f"{len(candles)} symbols on one account of {settings.paper_balance:,.2f} USDT; "
              "--separate-accounts would run each on an account of its own, in parallel "
              "processes (no portfolio heat between them)")
    reports = run_groups(settings, overlapping_groups(candles), folder.path / DATABASES,
                         progress=progress, funding=funding, warmup=warmup)
    return combine(reports, run_id=folder.final.name)


def in_final(value: Any, folder: RunFolder) -> Any:
    """`value` (the report's `extra`: dicts, lists, paths) with each path into the staging
    folder made the path it has once the run is kept (its database, as a user finds it)."""
    if isinstance(value, dict):
        return {key: in_final(item, folder) for key, item in value.items()}
    if isinstance(value, list):
        return [in_final(item, folder) for item in value]
    if isinstance(value, Path) and value.is_relative_to(folder.path):
        return folder.final / value.relative_to(folder.path)
    return value
