"""`tradebot backtest --separate-accounts`: each symbol trades on a paper account of its own
(TRADEBOT_PAPER_BALANCE each), so nothing couples them (no shared balance, margin or
portfolio heat) and they run at once, one worker process each, up to one per core. The
parent shows one progress bar over every candle, fed by the workers' counts, and
trader/report.py `sum_accounts` makes the portfolio their sum.

Stopping: as a sweep's workers (trader/sweep_signals.py): started with SIGINT held, they
ignore it and end with this process; Ctrl-C or SIGTERM here terminates them.

    runs = run_separate_accounts(settings, candles, folder / DATABASES, progress=True)
    runs.reports, runs.pids, runs.processes
"""

import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trader.backtest_input import BacktestError, SymbolCandles
from trader.config import Settings
from trader.domain import Candle
from trader.logs import setup_logging
from trader.report import BacktestReport
from trader.report_text import how_run
from trader.sweep_signals import detach_worker, sigint_held, terminate_workers

PROGRESS_SECONDS = 0.25   # how often the parent's bar reads the workers' counts


@dataclass(frozen=True)
class AccountRuns:
    """One report per symbol (in symbol order, each its own account), the process that
    ran each (one each), the processes that ran at once, and the wall time of them all."""
    reports: list[BacktestReport]
    pids: list[int]
    processes: int
    seconds: float


RunGroup = Callable[..., BacktestReport]   # trader/backtest_periods.py `run_group`: one account's run


def run_separate_accounts(settings: Settings, candles: Mapping[str, SymbolCandles], folder: Path,
                          run_group: RunGroup, *, progress: bool = True,
                          funding: dict | None = None,
                          warmup: Mapping[str, list[Candle]] | None = None,
                          workers: int | None = None) -> AccountRuns:
    """Each symbol of `candles` through the engine on an account of `settings.paper_balance`,
    in worker processes (`workers` at once, default one per core), its journal in
    `folder/<SYMBOL>/`; `run_group` runs one (given by trader/backtest_cli.py, which imports this
    module: a module-level function, so the workers get it by reference). A run that fails (BacktestError) terminates the others and is raised;
    so is a worker that died (killed, out of memory), as a BacktestError saying so."""
    symbols = sorted(candles)
    warmup = warmup or {}
    processes = min(len(symbols), workers or os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")   # a clean interpreter: no inherited threads
    counts = context.RawArray("q", len(symbols))     # candles done, by account: the bar reads them
    print(f"{', '.join(symbols)}: {len(symbols)} separate accounts of "
          f"{settings.paper_balance:,.2f} USDT each, {how_run(len(symbols), processes)} "
          "(portfolio heat does not couple them)")
    # one task per worker process: each account runs in an interpreter of its own, and N
    # accounts on N cores run on N processes even when one is short
    pool = ProcessPoolExecutor(processes, mp_context=context, max_tasks_per_child=1,
                               initializer=_start_worker, initargs=(os.getpid(), counts))
    started = time.perf_counter()
    try:
        with sigint_held():   # the pool starts its workers in submit()
            futures = [pool.submit(_run_account, run_group, index, settings, symbol,
                                   candles[symbol],
                                   folder / symbol, funding,
                                   {symbol: warmup[symbol]} if symbol in warmup else {})
                       for index, symbol in enumerate(symbols)]
        total = sum(len(rows) for rows in candles.values())
        with tqdm(total=total, unit="candle", disable=not progress, leave=False) as bar:
            _wait_showing_progress(futures, bar, counts)
        results = [future.result() for future in futures]
    except BrokenProcessPool as exc:   # no result and no exception came back from a worker
        terminate_workers(pool)
        raise BacktestError(f"a worker process running an account ended without its result "
                            f"(killed? out of memory?): {exc}") from exc
    except BaseException:     # Ctrl-C/SIGTERM (SweepInterrupted) or an account that failed
        terminate_workers(pool)   # shutdown() alone would wait for the running accounts
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    return AccountRuns([report for report, _ in results], [pid for _, pid in results],
                       processes, time.perf_counter() - started)


def _wait_showing_progress(futures: list["Future[tuple[BacktestReport, int]]"],
                           bar: "tqdm[Any]", counts: Any) -> None:
    """Until every run is done (or one failed: raised), the bar at the candles done."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=PROGRESS_SECONDS, return_when=FIRST_EXCEPTION)
        bar.update(sum(counts) - bar.n)
        for future in done:
            future.result()      # an account's failure ends the wait now


# This worker's slot table of candles done (shared memory), set by the pool's initializer.
_counts: Any = None


def _start_worker(parent_pid: int, counts: Any) -> None:
    global _counts
    detach_worker(parent_pid)
    _counts = counts


class _SharedCount:
    """A run's progress as its slot in the shared table (`ProgressBar` of trader/backtest.py)."""

    def __init__(self, counts: Any, index: int) -> None:
        self._counts = counts
        self._index = index

    def update(self, n: float = 1) -> None:
        self._counts[self._index] += int(n)


def _run_account(run_group: RunGroup, index: int, settings: Settings, symbol: str,
                 rows: SymbolCandles, out_dir: Path, funding: dict | None,
                 warmup: dict[str, list[Candle]]) -> tuple[BacktestReport, int]:
    """In a worker: one symbol on its own account, as quiet as the command (the parent's bar
    speaks); the report and this process's id."""
    setup_logging(json_lines=settings.log_json,
                  level="ERROR" if settings.log_level == "INFO" else settings.log_level)
    report = run_group(settings, {symbol: rows}, out_dir, funding, warmup,
                       progress=_SharedCount(_counts, index))
    return report, os.getpid()
