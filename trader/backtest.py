"""`tradebot backtest`: the full engine over candles on the paper exchange.

Same code path as live trading (lifecycle, sentinel, guards, risk, intents, storage), with
the replay feed driving the clock. Ends with a report: the printed summary and
equity.png, trades.csv, report.json in the output directory.
"""

import argparse
import asyncio
import time
from datetime import datetime
from pathlib import Path

from loguru import logger
from tqdm import tqdm

from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.config import Settings
from trader.domain import Candle, CloseReason
from trader.engine import Engine
from trader.logs import setup_logging
from trader.metrics import EquityPoint, TradeRecord, performance
from trader.report import BacktestReport, render_text, write_report
from trader.strategy.base import load_strategy
from trader.trade_store import TradeStore


class BacktestError(Exception):
    """Bad backtest input (no data in range, unknown symbol); the message says what to fix."""


def select_candles(candles: dict[str, list[Candle]], symbols: list[str] | None,
                   start: datetime | None, end: datetime | None) -> dict[str, list[Candle]]:
    if symbols:
        unknown = [s for s in symbols if s not in candles]
        if unknown:
            raise BacktestError(f"no data for {', '.join(unknown)}; the data has "
                                f"{', '.join(sorted(candles))}")
        candles = {s: candles[s] for s in symbols}
    picked = {s: [c for c in rows if (start is None or c.open_time >= start)
                  and (end is None or c.open_time <= end)] for s, rows in candles.items()}
    picked = {s: rows for s, rows in picked.items() if rows}
    if not picked:
        raise BacktestError("no candles in the chosen period")
    return picked


async def run_backtest(settings: Settings, candles: dict[str, list[Candle]], out_dir: Path,
                       *, progress: bool = True, funding: dict | None = None) -> BacktestReport:
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
    clock = ManualClock(min(rows[0].open_time for rows in candles.values()))
    store = TradeStore.open(db_path)
    paper = PaperExchange(store, clock, SimConfig(balance=settings.paper_balance, seed=settings.seed,
                                                  default_leverage=settings.leverage),
                          persist_every=0, funding_schedules=funding,
                          save_state=False)   # a backtest never resumes: journal only our own records
    await paper.start(symbols, settings.leverage)
    engine = Engine(settings, paper, store, clock, Alerter(store), load_strategy(settings.strategy))
    total = sum(len(rows) for rows in candles.values())
    curve: list[EquityPoint] = []
    started = time.perf_counter()
    with tqdm(total=total, unit="candle", disable=not progress, leave=False) as bar:
        async for batch in ReplayFeed(candles, clock):
            for candle in batch:
                paper.feed_candle(candle)
                engine.on_candle(candle)
            await engine.tick()
            if engine.balance is not None:
                curve.append(EquityPoint(clock.now(), engine.balance.equity))
            bar.update(len(batch))
    elapsed = time.perf_counter() - started
    trades = [TradeRecord.from_position(p) for p in store.closed_positions()
              if p.close_reason not in (None, CloseReason.UNKNOWN) and p.exit_price is not None]
    report = BacktestReport(
        performance=performance(curve, trades, paper.funding_total()), trades=trades, curve=curve,
        symbols=symbols, candles=total, seconds=elapsed,
        extra={"open_positions": len(engine.positions), "database": db_path})
    store.close()
    return report


def overlapping_groups(candles: dict[str, list[Candle]]) -> list[dict[str, list[Candle]]]:
    """Symbols whose periods overlap run together; data from different years runs apart."""
    spans = sorted((rows[0].open_time, rows[-1].open_time, s) for s, rows in candles.items())
    groups: list[dict[str, list[Candle]]] = []
    group_end = None
    for start, end, symbol in spans:
        if group_end is None or start > group_end:
            groups.append({})
            group_end = end
        groups[-1][symbol] = candles[symbol]
        group_end = max(group_end, end)
    return groups


def run_backtest_cli(settings: Settings, args: argparse.Namespace) -> int:
    from trader.market.replay import load_bundled, load_bundled_funding, load_candles
    funding = None
    load_strategy(settings.strategy)   # a bad TRADEBOT_STRATEGY stops here, before any work
    try:
        if args.data is not None:
            rows = load_candles(args.data)
            data = {rows[0].symbol: rows} if rows else {}
        else:
            data = load_bundled()
            funding = load_bundled_funding()
        symbols = [s.strip().upper() for s in args.symbols.split(",")] if args.symbols else None
        candles = select_candles(data, symbols, args.start, args.end)
    except (BacktestError, ValueError, OSError) as exc:
        print(f"backtest error: {exc}")
        return 2
    if settings.log_level == "INFO":
        setup_logging(json_lines=settings.log_json, level="ERROR")   # the progress bar speaks
    groups = overlapping_groups(candles)
    for group in groups:
        out = args.out if len(groups) == 1 else args.out / "-".join(sorted(group))
        logger.info("backtest symbols={} candles={}", ",".join(sorted(group)),
                    sum(len(c) for c in group.values()))
        report = asyncio.run(run_backtest(settings, group, out, progress=not args.no_progress,
                                          funding=funding))
        files = write_report(report, out)
        print(render_text(report, files))
        print()
    return 0
