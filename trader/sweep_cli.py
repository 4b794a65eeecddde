"""`tradebot sweep` on the command line: its options, and the run from data to printed table.

    tradebot sweep --symbols XRPUSDT --grid strategy.channel=20,30,40 \\
        --grid TRADEBOT_RISK_BASE=0.01,0.02 --objective sharpe
    tradebot sweep sweep.toml                      # spec file: trader/sweep_spec.py
    RAY_ADDRESS=auto tradebot sweep sweep.toml     # trials as tasks on a running Ray cluster

On Ray, a --data file is shipped as its absolute path, not its rows (a long file streams
from disk in each trial): on a cluster of several machines, each needs the file at that
path (a shared folder). A RAY_ADDRESS host:port where nothing answers ends the sweep within
5 s with exit 2.

Imports nothing heavy at module level: the `tradebot` parser loads it for every command.
Bad input ends with exit code 2 and one line on stderr; a sweep in which every trial failed
exits 1. Ctrl-C (SIGINT) or SIGTERM stops the running trials at once, writes the finished
ones to results.csv, prints "interrupted after N of M trials; results so far in PATH" on
stderr and exits 130 (SIGINT) or 143 (SIGTERM), the shell's codes for death by a signal.
"""

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from trader.config import Settings
from trader.display import plural
from trader.sweep_signals import SweepInterrupted, stop_on_signals
from trader.sweep_spec import OBJECTIVES, SweepError, SweepSpec, read_spec_file, with_options

if TYPE_CHECKING:   # heavy modules, imported when a sweep runs
    from trader.backtest_folders import RunFolder
    from trader.backtest_input import CandleSource
    from trader.domain import Candle
    from trader.sweep import Leaderboard
    from trader.sweep_trial import BacktestData

EXIT_BAD_INPUT = 2
DEFAULT_ROWS = 30


def add_candle_arguments(parser: argparse.ArgumentParser,
                         date: Callable[[str], dt.date | datetime]) -> None:
    """--symbol, --from, --to, --data, --funding: which candles (and funding rates) a
    backtest or a sweep runs on."""
    parser.add_argument("--symbol", default=None, type=str.upper,
                        help="the symbol of the --data file(s) when their names do not say "
                             "it (several files: one series of it)")
    parser.add_argument("--from", dest="start", type=date, default=None,
                        help="first candle (UTC): 2021-11-16 or 2021-11-16T12:00")
    parser.add_argument("--to", dest="end", type=date, default=None,
                        help="last candle (UTC): a date alone includes that whole day; with a "
                             "time, the last candle's open time")
    # extend: `--data A --data B` and `--data A B` both give [A, B] (as `run --replay`)
    parser.add_argument("--data", type=Path, nargs="+", action="extend", default=None,
                        help="candle CSV file(s), the symbol each one's name says; one "
                             "symbol's files (Binance's months) joined in time order, symbols "
                             "run together like the bundled ones (default: bundled real "
                             "Binance candles)")
    parser.add_argument("--funding", type=Path, nargs="+", action="extend", default=None,
                        metavar="FILE",
                        help="a symbol's funding rates: Binance's fundingRate CSVs (ETHUSDT-"
                             "fundingRate-2024-01.csv, a symbol's months joined) or the "
                             "bundled funding_time,funding_rate layout, named by symbol "
                             "(default: the bundled XRPUSDT rates; other symbols an assumed "
                             "0.01 %% per 8 h)")


def add_sweep_arguments(parser: argparse.ArgumentParser,
                        date: Callable[[str], dt.date | datetime]) -> None:
    """The `tradebot sweep` options; `date` parses --from/--to like `tradebot backtest`."""
    parser.add_argument("spec", type=Path, nargs="?", default=None,
                        help="TOML spec file with [grid] or [optuna] (options below add to it)")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="a parameter and its values; every combination runs. NAME: a "
                             "setting (TRADEBOT_RISK_BASE) or strategy.FIELD (strategy.channel)")
    parser.add_argument("--search", action="append", default=[],
                        metavar="NAME=LOW..HIGH[:STEP|:log]",
                        help="an optuna range (or NAME=V1,V2 to choose among values)")
    parser.add_argument("--trials", type=int, default=None, help="optuna trials (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="optuna sampler seed")
    parser.add_argument("--objective", choices=list(OBJECTIVES), default=None,
                        help="what ranks the trials (default sharpe; max_drawdown_pct: lowest)")
    parser.add_argument("--top", type=int, default=None,
                        help="equity pictures of the best trials (default 3)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"table rows printed (default {DEFAULT_ROWS}; the CSV has all)")
    parser.add_argument("--workers", type=int, default=None,
                        help="trials at once (default: every core, or the Ray cluster's CPUs)")
    parser.add_argument("--symbols", default=None,
                        help="comma-separated symbols whose periods overlap (default: "
                             "TRADEBOT_SYMBOLS if set, else every symbol in the data; the "
                             "bundled data needs XRPUSDT or BTCUSDT)")
    add_candle_arguments(parser, date)
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="the sweep writes results.csv and the pictures into "
                             "OUT/<run-id>/ (default: out)")
    parser.add_argument("--run-id", default=None,
                        help="name of the sweep's folder (default: the start time, UTC)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_sweep_cli(settings: Settings, args: argparse.Namespace) -> int:
    from trader.backtest_folders import new_run_dir
    from trader.logs import setup_logging
    from trader.sweep import Sweep
    from trader.sweep_runners import make_runner
    from trader.sweep_trial import capped_notes

    try:
        _check_counts(args)
        spec, notes = with_options(read_spec_file(args.spec) if args.spec else SweepSpec(),
                                   grid=args.grid, search=args.search, trials=args.trials,
                                   seed=args.seed, objective=args.objective,
                                   top=args.top).without_repeats()
        for note in notes + capped_notes(spec, settings):
            print(f"sweep note: {note}", file=sys.stderr)
        data = load_sweep_data(settings, args)
        for note in objective_notes(spec, data) + warmup_short_notes(settings, args, data):
            print(f"sweep note: {note}", file=sys.stderr)
        sweep = Sweep(spec, settings)
        quiet = "ERROR" if settings.log_level == "INFO" else settings.log_level
        runner = make_runner(data, workers=args.workers, log_level=quiet,
                             trials=sweep.spec.trial_count)
    except (SweepError, ValueError, OSError) as exc:   # BacktestError is a ValueError
        print(f"sweep error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    setup_logging(json_lines=settings.log_json, level=quiet)   # the progress bar speaks
    started = time.perf_counter()
    board = sweep.leaderboard()
    folder: RunFolder | None = None
    try:
        with stop_on_signals(), runner:
            try:   # only now: a sweep that cannot start leaves no empty folder behind
                folder = new_run_dir(args.out, args.run_id)
            except (ValueError, OSError) as exc:
                print(f"sweep error: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            sweep.run(runner, board, progress=not args.no_progress)
        # the trials ran: the files are written into out/<run-id> itself
        out = folder.keep()
    except SweepInterrupted as stop:   # the runner has stopped its trials by now
        # stopped by the user: its results so far are the run, unless they would replace
        # an earlier finished one (then they go beside it)
        if folder is None:
            return _report_interruption(board, sweep.spec, None, stop)
        try:
            kept = folder.keep_unfinished()
        except (ValueError, OSError) as exc:   # BacktestError is a ValueError
            print(f"sweep error: the results so far could not be kept ({exc})", file=sys.stderr)
            kept = None
        return _report_interruption(board, sweep.spec, kept, stop,
                                    earlier=folder.final if kept != folder.final else None)
    finally:
        if folder is not None:
            folder.discard()           # failed: an earlier run of the id stays (no-op if kept)
    print(_summary(sweep.spec, data, runner.where, time.perf_counter() - started))
    try:
        with stop_on_signals():        # the pictures take seconds: a signal then is said too
            _print_results(board, sweep.spec, out, args.rows)
    except SweepInterrupted as stop:
        return _report_late_interruption(board, sweep.spec, out, stop)
    except OSError as exc:             # a full disk, a quota: the table is printed already
        print(f"sweep error: the results could not be written into {out} "
              f"({exc.strerror or exc}); the table is printed above", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0 if board.best() is not None else 1


def _check_counts(args: argparse.Namespace) -> None:
    """SweepError naming the option for --workers below 1 (a pool of none would fail naming
    no option, and a Ray study waits forever for trials it never asks for) or --rows below 0."""
    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers {args.workers}: trials at once must be at least 1")
    if args.rows < 0:
        raise SweepError(f"--rows {args.rows}: must be 0 or more")


def load_sweep_data(settings: Settings, args: argparse.Namespace) -> "BacktestData":
    """The candles every trial replays, chosen as `tradebot backtest` chooses them (bundled
    by default); SweepError when they span periods that do not overlap."""
    from trader.backtest_data import backtest_data
    from trader.backtest_periods import overlapping_groups
    from trader.sweep_trial import BacktestData

    candles, funding, warmup = backtest_data(settings, args)
    groups = overlapping_groups(candles)
    if len(groups) > 1:
        spans = "; ".join(f"{', '.join(sorted(group))} {_period(group)}" for group in groups)
        raise SweepError(f"the data holds periods that do not overlap ({spans}): a trial is "
                         f"one backtest, so pick one with --symbols, e.g. --symbols "
                         f"{sorted(groups[0])[0]}")
    return BacktestData(candles, funding, warmup)


def warmup_short_notes(settings: Settings, args: argparse.Namespace,
                       data: "BacktestData") -> list[str]:
    """The backtest's stderr lines for symbols with too few candles before --from to warm
    the base settings' strategy up (trader/backtest_warmup.py), said once before the trials
    (each trial's report keeps its own note)."""
    from trader.backtest_warmup import warmup_notes
    from trader.strategy.base import load_strategy

    needed = load_strategy(settings.strategy).warmup
    short = warmup_notes(data.warmup, data.candles, args.start, needed)[1]
    return [f"{line} (the base settings' need: a trial's own strategy.window decides its own)"
            for line in short]


def objective_notes(spec: SweepSpec, data: "BacktestData") -> list[str]:
    """A note before any trial runs when the objective cannot have a value on this data:
    calmar on less than the week its CAGR needs (trader/metrics.py) would rank by nothing."""
    from trader.display import duration
    from trader.metrics import MIN_CAGR_SPAN

    if spec.objective != "calmar":
        return []
    covered = (max(rows[-1].close_time for rows in data.candles.values())
               - min(rows[0].open_time for rows in data.candles.values()))
    if covered >= MIN_CAGR_SPAN:
        return []
    return [f"calmar needs at least {MIN_CAGR_SPAN.days} days of data (its CAGR is not "
            f"annualised from less); this data covers {duration(covered)}: no trial will "
            "have a value, rank by another --objective"]


def _print_results(board: "Leaderboard", spec: SweepSpec, out: Path, rows: int) -> None:
    from trader.sweep_report import RESULTS_CSV, render_table, write_pictures, write_results_csv

    print(render_table(board, spec.names, rows))   # first: a file that fails loses no result
    csv_path = write_results_csv(board, spec.names, out / RESULTS_CSV)
    pictures = write_pictures(board, spec.top, out)
    print(f"  Results file   {csv_path}")
    for picture in pictures:
        print(f"  Equity picture {picture}")


def _report_interruption(board: "Leaderboard", spec: SweepSpec, out: Path | None,
                         stop: SweepInterrupted, earlier: Path | None = None) -> int:
    """`earlier`: the finished run of the id, kept (the results so far went beside it)."""
    from trader.sweep_report import RESULTS_CSV, write_results_csv

    where = "no results"
    if out is not None:
        where = f"results so far in {write_results_csv(board, spec.names, out / RESULTS_CSV)}"
        if earlier is not None:
            where += f" (the finished run in {earlier} is kept)"
    print(f"interrupted after {len(board)} of {plural(spec.trial_count, 'trial')}; {where}",
          file=sys.stderr)
    return stop.exit_code


def _report_late_interruption(board: "Leaderboard", spec: SweepSpec, out: Path,
                              stop: SweepInterrupted) -> int:
    """A signal after every trial ran, while the results were written: the results file is
    written whole, the pictures may be missing."""
    from trader.sweep_report import RESULTS_CSV, write_results_csv

    results = write_results_csv(board, spec.names, out / RESULTS_CSV)   # again: it may be cut
    print(f"interrupted while writing the results of all {plural(spec.trial_count, 'trial')}: "
          f"every result is in {results}; equity pictures may be missing", file=sys.stderr)
    return stop.exit_code


def _summary(spec: SweepSpec, data: "BacktestData", where: str, seconds: float) -> str:
    candles = sum(len(rows) for rows in data.candles.values())
    direction = "higher" if spec.higher_is_better else "lower"
    return (f"Sweep: {plural(spec.trial_count, 'trial')} ({spec.mode}) over {', '.join(sorted(data.candles))}"
            f" {_period(data.candles)}, {candles:,} candles each\n"
            f"  ran on {where} in {seconds:.1f} s; ranked by {spec.objective} "
            f"({direction} is better)")


def _period(candles: "Mapping[str, Sequence[Candle] | CandleSource]") -> str:
    """First to last candle close, as the backtest report's header gives its period."""
    first = min(rows[0].close_time for rows in candles.values())
    last = max(rows[-1].close_time for rows in candles.values())
    return f"{first:%Y-%m-%d %H:%M} -> {last:%Y-%m-%d %H:%M} UTC"

