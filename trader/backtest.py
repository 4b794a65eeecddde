"""`tradebot backtest`: the full engine over candles on the paper exchange.

Same code path as live trading (lifecycle, sentinel, guards, risk, intents, storage), with
the replay feed driving the clock. Ends with one portfolio report (trader/report.py) in
`out/<run-id>/`, printed with the folder's name.
"""

import argparse
import asyncio
import heapq
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

from loguru import logger
from tqdm import tqdm

from storage.db import SaveStateFailure
from trader.alerter import Alerter
from trader.backtest_curve import CurveRecorder
from trader.backtest_folders import RunFolder, new_run_dir
from trader.backtest_input import BacktestError, CandleSource, SymbolCandles, gap_warnings
from trader.backtest_notes import RunTally, exit_plan_notes, open_at_end_notes
from trader.backtest_warmup import warmup_candles, warmup_notes
from trader.clock import ManualClock
from trader.closed_recently import ClosedArchive
from trader.config import Settings
from trader.data_notes import candle_intervals, funding_notes, time_limit_notes
from trader.domain import ZERO, Balance, Candle, CloseReason
from trader.engine import Engine
from trader.gc_freeze import YOUNG_THRESHOLD, frozen_setup, young_collections_every
from trader.logs import setup_logging
from trader.market.replay import FundingSchedule
from trader.metrics import performance
from trader.position import ExitPlan
from trader.report import DATABASES, BacktestReport, combine, render_text, symbol_rows, write_report
from trader.risk_state import RISK_KEY
from trader.run_settings import changed_settings, run_settings
from trader.strategy.base import Strategy, load_strategy
from trader.sweep_signals import SweepInterrupted, stop_on_signals
from trader.trade_history import with_funding
from trader.trade_stats import TradeRecord
from trader.trade_store import TradeStore


class ProgressBar(Protocol):
    """What a run tells its progress to: a tqdm bar, or a worker's count the parent's bar
    reads (trader/backtest_accounts.py)."""

    def update(self, n: float = 1) -> bool | None: ...



def select_candles(candles: Mapping[str, SymbolCandles],
                   symbols: list[str] | None, start: datetime | None, end: datetime | None,
                   *, asked_by: str = "--symbols") -> dict[str, SymbolCandles]:
    if symbols:
        unknown = [s for s in symbols if s not in candles]
        if unknown:
            raise BacktestError(f"no data for {', '.join(unknown)} (asked by {asked_by}); the "
                                f"data has {', '.join(sorted(candles)) or 'no symbol'}")
        candles = {s: candles[s] for s in symbols}
    if start is not None and end is not None and start > end:
        raise BacktestError("--from is after --to")
    picked: dict[str, SymbolCandles] = {
              s: rows.between(start, end) if isinstance(rows, CandleSource) else
              [c for c in rows if (start is None or c.open_time >= start)
               and (end is None or c.open_time <= end)] for s, rows in candles.items()}
    left_out = sorted(s for s, rows in picked.items() if not rows)
    picked = {s: rows for s, rows in picked.items() if rows}
    if not picked:
        covers = "; ".join(f"{symbol} {_span(rows)}" for symbol, rows in sorted(candles.items()))
        raise BacktestError(f"no candles in the chosen period ({_period(start, end)}); the "
                            f"data covers {covers}")
    if symbols:     # asked for by name: say why one is missing from the report
        for symbol in left_out:
            print(f"{symbol}: no candles in the chosen period (its data covers "
                  f"{_span(candles[symbol])}): left out", file=sys.stderr)
    return picked


def _period(start: datetime | None, end: datetime | None) -> str:
    """The --from/--to period in words: "from 2021-11-16 00:00 to 2021-11-17 00:00 UTC"."""
    parts = [f"from {start:%Y-%m-%d %H:%M}" if start else "",
             f"to {end:%Y-%m-%d %H:%M}" if end else ""]
    return " ".join(part for part in parts if part) + " UTC" if start or end else "all of it"


def _span(rows: Sequence[Candle] | CandleSource) -> str:
    if not rows:
        return "nothing"
    return f"{rows[0].open_time:%Y-%m-%d %H:%M} to {rows[-1].open_time:%Y-%m-%d %H:%M} UTC"


async def run_backtest(settings: Settings, candles: Mapping[str, Iterable[Candle]], out_dir: Path,
                       *, progress: bool | ProgressBar = True, funding: dict | None = None,
                       strategy: Strategy | None = None,
                       warmup: Mapping[str, Sequence[Candle]] | None = None,
                       risk_state: Mapping[str, str] | None = None) -> BacktestReport:
    """The full engine over `candles` on the paper exchange; `strategy` (default: the one
    TRADEBOT_STRATEGY names) lets `tradebot sweep` run a strategy with changed parameters;
    `warmup`: each symbol's candles before --from, fed to the engine's history only
    (trader/backtest_warmup.py): not traded, charted, charged funding nor counted.
    A symbol's candles may be an iterator (`trader.market.replay.iter_candles`): nothing
    grows with their number but the closed trades (the equity curve is bounded).
    `risk_state`: the risk record (equity peak, fraction) an earlier period of the same
    account ended with (`run_groups`): the drawdown-reduced risk carries over. `progress`:
    a bar of its own (True), none (False), or a bar the caller shares over several runs
    (or a worker process's count, trader/backtest_accounts.py)."""
    from trader.exchange.paper import PaperExchange
    from trader.exchange.sim import SimConfig
    from trader.market.replay import ReplayFeed

    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "backtest.db"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    symbols = sorted(candles)
    settings = settings.model_copy(update={"symbols": symbols, "db_path": db_path,
                                           "exchange": "paper"})
    start, candles = first_open_time(candles)
    clock = ManualClock(start)
    store = TradeStore.open(db_path)
    archive = store.archive_closed()    # the report's trades, kept as they close
    paper = PaperExchange(store, clock, SimConfig(balance=settings.paper_balance, seed=settings.seed,
                                                  default_leverage=settings.leverage),
                          persist_every=0, funding_schedules=funding,
                          save_state=False)   # a backtest never resumes: journal only our own records
    await paper.start(symbols, settings.leverage)
    if risk_state:
        store.put(RISK_KEY, dict(risk_state), clock.now())
    strategy = strategy or load_strategy(settings.strategy)
    engine = Engine(settings, paper, store, clock, Alerter(store, clock), strategy)
    engine.fail_fast = True
    feed = ReplayFeed(candles, clock)
    recorder = CurveRecorder()          # bounded: exact up to its limit, then bucketed
    total = 0
    started = time.perf_counter()
    tally = RunTally()
    # One batch object entered once per candle: each `with` is a batch of its own
    # (storage/gate_passes.py `Batch`), without making one every candle.
    candle_batch = store.batch("replay candle")
    warm = warmup or {}
    warmed = {symbol: len(warm.get(symbol, ())) for symbol in symbols} if warm else {}
    if warmed:
        with candle_batch:      # a breaker the warm-up trips is written with the batch
            for candle in heapq.merge(*(warm.get(symbol, ()) for symbol in symbols),
                                      key=_close_time):
                engine.warm_up(candle)
    # The equity of the balance last charted: a Balance is frozen, and a flat account's is
    # the very same object candle after candle (trader/balance_keeper.py), so its `equity`
    # (a Decimal sum) is taken once per Balance, not once per candle.
    charted: Balance | None = None
    equity = ZERO
    bust: datetime | None = None    # when the equity fell to 0 or below: the run ends there
    shown = bool(progress) if isinstance(progress, bool) else True
    own_bar = tqdm(total=feed.total, unit="candle", disable=not progress, leave=False) \
        if isinstance(progress, bool) else nullcontext(progress)
    with own_bar as bar, \
            frozen_setup(), young_collections_every(YOUNG_THRESHOLD):   # trader/gc_freeze.py
        async for batch in feed:
            try:
                with candle_batch:      # candles share commits (storage/write_gate.py)
                    for candle in batch:
                        paper.feed_candle(candle)
                        engine.on_candle(candle)
                        tally.add(candle)
                    await engine.tick()
            except Exception as exc:   # any failure ends the run, said in one line
                logger.opt(exception=exc).debug("backtest tick failed")   # LOG_LEVEL=DEBUG
                store.close()
                raise BacktestError(tick_failure(batch, exc)) from exc
            balance = engine.balance_keeper.balance
            if balance is not None:
                if balance is not charted:
                    charted, equity = balance, balance.equity
                recorder.record(clock.now(), equity)
            total += len(batch)
            if shown:                   # a disabled bar's `update` does nothing
                bar.update(len(batch))
            if equity <= 0 and charted is not None:   # no account trades on from nothing
                bust = clock.now()
                break
    elapsed = time.perf_counter() - started
    curve = recorder.points()
    records, plans = closed_trades(store, archive)
    trades = with_funding(records, store.funding_payments())   # net of its funding
    entered = {trade.symbol for trade in trades} | set(engine.positions)
    figures = performance(curve, trades, paper.funding_total() - sum(
        (trade.funding for trade in trades), ZERO))
    unaccounted = curve[-1].equity - settings.paper_balance - figures.net_pnl if curve else ZERO
    report = BacktestReport(
        performance=figures, trades=trades, curve=curve,
        symbols=symbols, candles=total, seconds=elapsed,
        extra={"open_positions": sum(1 for p in engine.positions.values() if p.quantity),
               "database": db_path},
        notes=tally.notes(warmup=strategy.warmup, rules=paper.rules, entered=entered,
                          refusals=engine.entries.desk.refusals, warmed=warmed)
        + open_at_end_notes(engine.positions.values(), unaccounted)
        + exit_plan_notes(settings, plans) + bust_notes(bust, equity),
        risk_state=store.get(RISK_KEY, {}))
    try:
        store.close()                   # commits the last batches: a full disk fails here
    except SaveStateFailure as exc:
        raise BacktestError(f"the run's database {db_path} failed at its end: {exc}") from exc
    return report


def bust_notes(at: datetime | None, equity: Decimal) -> list[str]:
    """The note of a run stopped because its account was bust (else none)."""
    if at is None:
        return []
    return [f"the account was bust at {at:%Y-%m-%d %H:%M} UTC (equity {equity:,.2f} USDT): "
            "the run stopped there, no later candle was traded"]


def _close_time(candle: Candle) -> datetime:
    return candle.close_time


def closed_trades(store: TradeStore, archive: ClosedArchive) -> tuple[
        list[TradeRecord], list[ExitPlan]]:
    """The report's closed trades (without their funding) and their exit plans, by close
    time: those `archive` kept as they closed, or read from the database when it lost track
    (a failed write). Positions with no exit price or with an unknown close reason are left
    out (their fills were never read: no result to count)."""
    kept = archive.trades()
    if kept is not None:
        return [entry.trade for entry in kept], [entry.exit_plan for entry in kept]
    closed = [p for p in store.iter_closed_positions()
              if p.close_reason not in (None, CloseReason.UNKNOWN) and p.exit_price is not None]
    return [TradeRecord.from_position(p) for p in closed], [p.exit_plan for p in closed]


def tick_failure(batch: list[Candle], exc: BaseException) -> str:
    """One line for a tick that raised: what, where in the data, where in the code, e.g.
    "the tick of XRPUSDT at 2021-11-16 00:25 UTC failed: ZeroDivisionError: division by zero
    (mystrategies/bad.py:9 in signal); nothing after it was run"."""
    symbols = ", ".join(sorted({candle.symbol for candle in batch})) or "-"
    at = max((candle.close_time for candle in batch), default=None)
    when = f" at {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({_short_path(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name})" \
        if frames else ""
    return (f"the tick of {symbols}{when} failed: {type(exc).__name__}: {exc}{where}; "
            "nothing after it was run")


def _short_path(filename: str) -> str:
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*path.parts[-2:]))


def first_open_time(candles: Mapping[str, Iterable[Candle]]) -> tuple[
        datetime, dict[str, Iterable[Candle]]]:
    """The earliest first candle, and the candles to replay (an iterator's first candle is
    read and put back): a symbol's candles may be streamed (`iter_candles`)."""
    starts: list[datetime] = []
    replay: dict[str, Iterable[Candle]] = {}
    for symbol, rows in candles.items():
        if isinstance(rows, Sequence | CandleSource):   # sized: the progress bar gets a total
            if rows:
                starts.append(rows[0].open_time)
            replay[symbol] = rows
            continue
        stream = iter(rows)
        first = next(stream, None)
        if first is not None:
            starts.append(first.open_time)
            replay[symbol] = chain([first], stream)
    if not starts:
        raise BacktestError("no candles to replay")
    return min(starts), replay


def run_groups(settings: Settings, groups: list[dict[str, SymbolCandles]], folder: Path, *,
               progress: bool = True, funding: dict | None = None,
               warmup: Mapping[str, list[Candle]] | None = None) -> list[BacktestReport]:
    """One backtest per group, in time order (`overlapping_groups`), on one account: each
    later group starts with the equity the one before it ended with, as a trader's account
    goes from one period to the next (its risk record too: the equity peak the
    drawdown-reduced risk fraction is measured from). So the groups run one after another
    in this process, under one progress bar (a later one's position sizes depend on the
    earlier one's result; said on stdout), and an account bust (equity at or below 0) runs
    no later group (said in the last report's notes). Symbols inside one group trade the same period on one account: the portfolio
    heat cap, the shared balance and margin couple their entries, so they stay in one
    engine (said on stdout). `warmup`: the candles before --from by symbol
    (`backtest_data`), each group given its own symbols'."""
    for group in groups:
        if len(group) > 1:
            print(f"{', '.join(sorted(group))}: same period, one account: the portfolio heat "
                  f"cap (TRADEBOT_MAX_HEAT {settings.max_heat}) and the shared balance couple "
                  "their entries, so they run together in one engine (one core)")
    if len(groups) > 1:
        print(f"{len(groups)} periods apart ({' then '.join(', '.join(sorted(g)) for g in groups)})"
              ": one account carried from each period to the next (a period starts with the "
              "equity the one before ended with), so they run one after the other (one core)")
    warmup = warmup or {}
    reports: list[BacktestReport] = []
    balance = settings.paper_balance
    risk_state: dict[str, str] = {}
    # one bar over every period: its ETA is the whole run's, its label the period running
    candles = sum(len(rows) for group in groups for rows in group.values())
    with tqdm(total=candles, unit="candle", disable=not progress, leave=False) as bar:
        for index, group in enumerate(groups):
            if len(groups) > 1:
                bar.set_description_str(", ".join(sorted(group)), refresh=False)
            report = _run_group(settings.model_copy(update={"paper_balance": balance}), group,
                                folder / "-".join(sorted(group)), funding,
                                {symbol: warmup[symbol] for symbol in group if symbol in warmup},
                                progress=bar if progress else False, risk_state=risk_state)
            risk_state = report.risk_state
            if report.curve:
                balance = report.curve[-1].equity
            if balance <= 0 and index + 1 < len(groups):
                later = ", ".join(symbol for rest in groups[index + 1:] for symbol in sorted(rest))
                report = replace(report, notes=[*report.notes, (
                    f"the account was bust at the end of {', '.join(sorted(group))}'s period "
                    f"(equity {balance:,.2f} USDT): the later periods ({later}) were not run")])
            reports.append(report)
            if balance <= 0:
                break
    return reports


def _run_group(settings: Settings, group: dict[str, SymbolCandles], out_dir: Path,
               funding: dict | None, warmup: dict[str, list[Candle]],
               progress: bool | ProgressBar = False,
               risk_state: Mapping[str, str] | None = None) -> BacktestReport:
    logger.info("backtest symbols={} candles={}", ",".join(sorted(group)),
                sum(len(rows) for rows in group.values()))
    return asyncio.run(run_backtest(settings, group, out_dir, progress=progress, funding=funding,
                                    warmup=warmup, risk_state=risk_state))


def overlapping_groups(candles: Mapping[str, SymbolCandles]) -> list[dict[str, SymbolCandles]]:
    """Symbols whose periods overlap run together; data from different years runs apart."""
    spans = sorted((rows[0].open_time, rows[-1].open_time, s) for s, rows in candles.items())
    groups: list[dict[str, SymbolCandles]] = []
    group_end = None
    for start, end, symbol in spans:
        if group_end is None or start > group_end:
            groups.append({})
            group_end = end
        groups[-1][symbol] = candles[symbol]
        group_end = max(group_end, end)
    return groups


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
        runs = run_separate_accounts(settings, candles, folder.path / DATABASES, _run_group,
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


def backtest_data(settings: Settings, args: argparse.Namespace) -> tuple[
        dict[str, SymbolCandles], dict[str, FundingSchedule] | None, dict[str, list[Candle]]]:
    """The candles to run (and the bundled funding rates, and the candles before --from that
    warm each symbol up: trader/backtest_warmup.py) for `args.data` / `args.symbol` /
    `args.symbols` / `args.start` / `args.end`. Symbols: --symbols, else TRADEBOT_SYMBOLS for
    the bundled data (an explicit --data file is its own choice), else all of the data."""
    from trader.backtest_input import candle_files, warn_about_gaps
    from trader.market.replay import load_bundled, load_bundled_funding
    funding = None
    data: Mapping[str, SymbolCandles]
    if args.data is None and getattr(args, "symbol", None):
        raise BacktestError(f"--symbol names the symbol of a --data file; to pick symbols of "
                            f"the bundled data use --symbols {args.symbol}")
    if args.data is not None:
        data = candle_files(args.data, getattr(args, "symbol", None))
    else:
        data, funding = load_bundled(), load_bundled_funding()
    symbols, asked_by = requested_symbols(settings, args.symbols, args.data is None)
    picked = select_candles(data, symbols, args.start, args.end, asked_by=asked_by)
    given = funding_files(getattr(args, "funding", None) or [], picked)
    if given:
        funding = {**(funding or {}), **given}
    warn_about_gaps(picked)
    return picked, funding, warmup_candles(data, picked, args.start)


def funding_files(paths: list[Path], candles: Mapping[str, object]) -> dict[
        str, FundingSchedule]:
    """--funding files by the symbol their names say, a symbol's several files (Binance's
    months) joined (trader/market/funding_csv.py: the bundled funding_time,funding_rate
    layout or Binance's calc_time,funding_interval_hours,last_funding_rate); BacktestError
    for a name that says no symbol or a symbol not run."""
    from trader.backtest_input import check_data_file
    from trader.market.funding_csv import load_funding_files
    from trader.market.replay import symbol_from_file_name
    by_symbol: dict[str, list[Path]] = {}
    for path in paths:
        try:
            check_data_file(path, "funding")
        except ValueError as exc:
            raise BacktestError(f"--funding {exc}") from exc
        symbol = symbol_from_file_name(path)
        if symbol is None:
            raise BacktestError(f"--funding {path}: the file name does not say the symbol; "
                                "name it like ETHUSDT-funding-8h.csv")
        if symbol not in candles:
            raise BacktestError(f"--funding {path}: {symbol} is not a symbol of the run "
                                f"({', '.join(sorted(candles))})")
        by_symbol.setdefault(symbol, []).append(path)
    return {symbol: load_funding_files(files) for symbol, files in by_symbol.items()}


def requested_symbols(settings: Settings, option: str | None,
                      bundled: bool) -> tuple[list[str] | None, str]:
    """(symbols to run or None for all, where the choice came from)."""
    if option:
        return [s.strip().upper() for s in option.split(",") if s.strip()], "--symbols"
    if bundled and "symbols" in settings.model_fields_set:
        return list(settings.symbols), "TRADEBOT_SYMBOLS"
    return None, ""
