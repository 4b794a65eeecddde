"""One backtest run: the full engine over candles on the paper exchange
(`run_backtest`, `tradebot backtest`'s and `tradebot sweep`'s run of one account).

Same code path as live trading (lifecycle, sentinel, guards, risk, intents, storage), with
the replay feed driving the clock. The command (trader/backtest_cli.py) chains the runs of
one account (trader/backtest_periods.py) and writes one portfolio report (trader/report.py)
in `out/<run-id>/`.
"""

import heapq
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Protocol

from loguru import logger
from tqdm import tqdm

from storage.db import SaveStateFailure
from trader.alerter import Alerter
from trader.backtest_curve import CurveRecorder
from trader.backtest_input import BacktestError, CandleSource
from trader.backtest_notes import RunTally, exit_plan_notes, open_at_end_notes
from trader.clock import ManualClock
from trader.closed_recently import ClosedArchive
from trader.config import Settings
from trader.domain import ZERO, Balance, Candle, CloseReason
from trader.engine import Engine
from trader.gc_freeze import YOUNG_THRESHOLD, frozen_setup, young_collections_every
from trader.metrics import performance
from trader.position import ExitPlan
from trader.report import BacktestReport
from trader.risk_state import RISK_KEY
from trader.strategy.base import Strategy, load_strategy
from trader.trade_history import with_funding
from trader.trade_stats import TradeRecord
from trader.trade_store import TradeStore


class ProgressBar(Protocol):
    """What a run tells its progress to: a tqdm bar, or a worker's count the parent's bar
    reads (trader/backtest_accounts.py)."""

    def update(self, n: float = 1) -> bool | None: ...


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
