"""Replay throughput of the full engine (the `tradebot backtest` code path) in candles per
second, one symbol of seeded random-walk 1m candles.

    python benchmarks/replay_throughput.py               # 14 days, well under 2 min
    python benchmarks/replay_throughput.py --days 365 --variants records
                                                         # the year of the goal (~7 min)
    python benchmarks/replay_throughput.py --profile     # plus the cProfile hot spots

Variants, all measured in the same run on the same candles:
  file DB         `trader.backtest.run_backtest` with its database in a temporary directory
                  on disk (the headline: exactly what `tradebot backtest` does)
  tmpfs DB        the same call with the database under /dev/shm (no disk under it)
  memory DB       run_backtest's loop on TradeStore.open(":memory:")
  orders/fills    run_backtest's loop on a file DB with the paper exchange's own state not
    only          saved (PaperExchange(save_state=False)): only what the engine records
                  (intents, orders, fills, positions, alerts) is written, as in the goal
  feed only       the replay feed and the simulator without the engine (the floor)
Goal: 50,000 candles/s with persistence of orders/fills only.
"""

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import (
    MINUTES_PER_DAY,
    figure,
    quiet_logs,
    random_walk_candles,
    scratch_dir,
    shm_available,
)

from storage import Store
from trader.alerter import Alerter
from trader.backtest import run_backtest
from trader.clock import ManualClock
from trader.config import Settings, load_settings
from trader.domain import Candle
from trader.engine import Engine
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.market.replay import ReplayFeed
from trader.trade_store import TradeStore

GOAL = 50_000
HEADLINE = "file DB (tradebot backtest path)"
RECORDS_ONLY = "file DB, orders/fills only"
FLOOR = "feed only (no engine)"
YEAR_CANDLES = 365 * MINUTES_PER_DAY

Candles = dict[str, list[Candle]]


async def file_backtest(settings: Settings, candles: Candles, folder: Path) -> int:
    """The `tradebot backtest` path; returns the number of closed trades."""
    report = await run_backtest(settings, candles, folder, progress=False)
    return len(report.trades)


async def memory_backtest(settings: Settings, candles: Candles, folder: Path) -> int:
    """run_backtest's loop on an in-memory database (no file at all)."""
    return await backtest_loop(settings, candles, ":memory:", save_state=True)


async def records_only_backtest(settings: Settings, candles: Candles, folder: Path) -> int:
    """run_backtest's loop on a file database, without saving the paper exchange's state."""
    return await backtest_loop(settings, candles, folder / "backtest.db", save_state=False)


async def backtest_loop(settings: Settings, candles: Candles, db_path: Path | str,
                        save_state: bool) -> int:
    """The loop of trader.backtest.run_backtest (without its report), on any database."""
    clock = ManualClock(min(rows[0].open_time for rows in candles.values()))
    store = TradeStore.open(db_path)
    paper = PaperExchange(store, clock, SimConfig(balance=settings.paper_balance, seed=settings.seed,
                                                  default_leverage=settings.leverage),
                          persist_every=0, save_state=save_state)
    await paper.start(sorted(candles), settings.leverage)
    engine = Engine(settings, paper, store, clock, Alerter(store))
    async for batch in ReplayFeed(candles, clock):
        for candle in batch:
            paper.feed_candle(candle)
            engine.on_candle(candle)
        await engine.tick()
    trades = len(store.closed_positions())
    store.close()
    return trades


async def feed_only(settings: Settings, candles: Candles, folder: Path) -> int:
    """The replay feed and the simulator, no engine: what any backtest costs at least."""
    clock = ManualClock(min(rows[0].open_time for rows in candles.values()))
    store = Store.open(":memory:")
    paper = PaperExchange(store, clock, SimConfig(), persist_every=0)
    await paper.start(sorted(candles), settings.leverage)
    async for batch in ReplayFeed(candles, clock):
        for candle in batch:
            paper.feed_candle(candle)
    store.close()
    return 0


Variant = Callable[[Settings, Candles, Path], Awaitable[int]]


def timed(variant: Variant, settings: Settings, candles: Candles, folder: Path,
          profiler: cProfile.Profile | None = None) -> tuple[float, int]:
    """Seconds for one variant (the whole call: setup, replay, report) and its trades."""
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    trades = asyncio.run(variant(settings, candles, folder))
    if profiler is not None:
        profiler.disable()
    return time.perf_counter() - started, trades


def hot_spots(profiler: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def run_variants(args: argparse.Namespace, candles: Candles,
                 profiler: cProfile.Profile | None) -> dict[str, tuple[float, int]]:
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS=args.symbol, TRADEBOT_EXCHANGE="paper")
    wanted = set(args.variants.split(","))
    results: dict[str, tuple[float, int]] = {}
    with scratch_dir("replay-file-", args.dir) as folder:
        results[HEADLINE] = timed(file_backtest, settings, candles, folder, profiler)
    if "tmpfs" in wanted and shm_available():
        with scratch_dir("replay-shm-", "/dev/shm") as folder:
            results["tmpfs DB (/dev/shm)"] = timed(file_backtest, settings, candles, folder)
    if "memory" in wanted:
        results["memory DB"] = timed(memory_backtest, settings, candles, Path("."))
    if "records" in wanted:
        with scratch_dir("replay-records-", args.dir) as folder:
            results[RECORDS_ONLY] = timed(records_only_backtest, settings, candles, folder)
    results[FLOOR] = timed(feed_only, settings, candles, Path("."))
    return results


def print_results(results: dict[str, tuple[float, int]], count: int, days: float) -> None:
    floor = count / results[FLOOR][0]
    for name, (seconds, trades) in results.items():
        if name != HEADLINE:
            print(figure(f"{name}: candles/s", count / seconds, "c/s",
                         goal=f">= {GOAL:,} c/s" if name == RECORDS_ONLY else "",
                         baseline=f"{seconds:.1f} s, {trades} trades"))
    seconds, trades = results[HEADLINE]
    rate = count / seconds
    print(f"{trades} trades closed; a year of 1m candles ({YEAR_CANDLES:,}) at this rate takes "
          f"{YEAR_CANDLES / rate / 60:.1f} min" + ("" if days >= 365 else
                                                   " (extrapolated linearly from this run)"))
    print(figure(f"{HEADLINE}: candles/s", rate, "c/s", goal=f">= {GOAL:,} c/s",
                 baseline=f"feed only {floor:,.0f} c/s"))


def main(args: argparse.Namespace) -> None:
    quiet_logs(args.log_level)
    count = int(args.days * MINUTES_PER_DAY)
    started = time.perf_counter()
    candles = {args.symbol: random_walk_candles(args.symbol, count, seed=args.seed)}
    print(f"{count:,} 1m candles of {args.symbol} ({args.days:g} days) generated in "
          f"{time.perf_counter() - started:.1f} s")
    profiler = cProfile.Profile() if args.profile else None
    results = run_variants(args, candles, profiler)
    if profiler is not None:
        print(hot_spots(profiler, args.top))
    print_results(results, count, args.days)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=14.0, help="days of 1m candles (365: a year)")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the file DB goes (default: $TMPDIR)")
    parser.add_argument("--variants", default="tmpfs,memory,records",
                        help="comparisons run beside the headline and the feed-only floor "
                             "(comma-separated: tmpfs, memory, records; '' for none)")
    parser.add_argument("--profile", action="store_true", help="cProfile the file-DB run")
    parser.add_argument("--top", type=int, default=25, help="hot spots listed with --profile")
    parser.add_argument("--log-level", default="ERROR")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
