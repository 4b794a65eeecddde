"""Engine overhead per tick (observe -> decide -> persist) on the paper exchange with a file
database, per symbol-tick, for 1 and 10 symbols.

    python benchmarks/tick_overhead.py                  # ~30 s on 2 cores
    python benchmarks/tick_overhead.py --ticks 20000    # longer, steadier tails

The real engine and the default strategy run on seeded random-walk 1m candles, so the
measured ticks include entries, stop/target attachment, management and closes (the tail).
A per symbol-tick figure is one tick's time divided by the number of symbols. Only
`engine.tick()` is timed; moving the simulated market (`paper.feed_candle`, which also
saves the paper exchange's state) is the exchange's work and is reported on its own line.
The paper exchange plays a healthy user-data stream by default, so, as on Binance with its
stream up, the engine's view of each symbol comes from its order tracker and the pushed
quotes (trader/exchange_view.py), not from per-tick reads; `--polling` plays the stream
down (every tick takes a snapshot: position, open orders, book).
The database is a WAL file by default (a commit does not wait for the disk), as in tests
and backtests; `--live-journal` opens it as the live agent does (trader/engine_setup.py: a rollback
journal with synchronous=FULL, storage/db.py), so each of a busy tick's commits also waits
for the disk: that figure is the disk's time as much as the engine's.
The time spent inside the paper exchange's calls (its simulator and its own state saving:
on Binance, the network's and the exchange's time) is also subtracted, for the engine's own
work per tick ("engine-only").
Baselines measured in the same run: the bare paper-exchange calls of one polling snapshot
(position + open orders + book, no engine) and one empty asyncio loop iteration.
Goal: p99 < 2 ms per symbol-tick.
"""

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from common import (
    bench_symbols,
    figure,
    percentile,
    quiet_logs,
    random_walk_candles,
    scratch_dir,
    script_parser,
)

from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.config import load_settings
from trader.engine import Engine
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.strategy.default import DefaultStrategy
from trader.trade_store import TradeStore

GOAL_P99_MS = 2.0
NS_PER_MS = 1_000_000


@dataclass
class TickRun:
    """What one measured run saw, in nanoseconds per symbol-tick unless named otherwise."""
    symbols: int
    per_symbol_tick: list[float] = field(default_factory=list)
    whole_ticks: list[float] = field(default_factory=list)     # all symbols of one tick
    busy_ticks: list[float] = field(default_factory=list)      # ticks that sent orders
    bare_observe: list[float] = field(default_factory=list)    # per symbol, no engine
    paper_candle: list[float] = field(default_factory=list)    # feed_candle incl. state save
    own: list[float] = field(default_factory=list)     # per symbol-tick, exchange calls' out
    empty_loop: list[float] = field(default_factory=list)
    orders_sent: int = 0
    closed_positions: int = 0


async def build_engine(db_path: Path, symbols: list[str], start: datetime, polling: bool,
                       live_journal: bool = False
                       ) -> tuple[Engine, PaperExchange, ManualClock, TradeStore]:
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS=",".join(symbols),
                             TRADEBOT_DB=str(db_path), TRADEBOT_EXCHANGE="paper")
    clock = ManualClock(start)
    store = TradeStore.open(db_path, wal=not live_journal)
    paper = PaperExchange(store, clock, SimConfig(balance=settings.paper_balance, seed=1,
                                                  default_leverage=settings.leverage),
                         stream=not polling)
    await paper.start(symbols, settings.leverage)
    engine = Engine(settings, paper, store, clock, Alerter(store, clock), strategy=DefaultStrategy())
    return engine, paper, clock, store


# The exchange calls a tick may make. On Binance their time is the network's and the
# exchange's; on the paper exchange it is the simulator's and its own state saving.
EXCHANGE_CALLS = ("place", "cancel", "order_by_client_id", "open_orders", "position",
                  "balance", "fills", "klines", "book_ticker", "mark_price", "funding_rate",
                  "set_leverage")


class ExchangeTime:
    """Nanoseconds spent inside the paper exchange's calls (wrapped on the instance)."""

    def __init__(self, paper: PaperExchange) -> None:
        self.ns = 0
        for name in EXCHANGE_CALLS:
            setattr(paper, name, self._timed(getattr(paper, name)))

    def _timed(self, call):  # type: ignore[no-untyped-def]
        async def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter_ns()
            try:
                return await call(*args, **kwargs)
            finally:
                self.ns += time.perf_counter_ns() - started
        return timed


async def bare_observe_ns(paper: PaperExchange, symbol: str) -> int:
    """The exchange reads of one polling snapshot, straight on the paper exchange."""
    started = time.perf_counter_ns()
    await paper.position(symbol)
    await paper.open_orders(symbol)
    await paper.book_ticker(symbol)
    return time.perf_counter_ns() - started


async def empty_loop_ns() -> int:
    started = time.perf_counter_ns()
    await asyncio.sleep(0)
    return time.perf_counter_ns() - started


async def measure(symbols: list[str], ticks: int, warmup: int, seed: int, folder: Path,
                  polling: bool, live_journal: bool = False) -> TickRun:
    candles = {s: random_walk_candles(s, warmup + ticks, seed=seed) for s in symbols}
    engine, paper, clock, store = await build_engine(folder / f"ticks-{len(symbols)}.db", symbols,
                                                     candles[symbols[0]][0].open_time, polling,
                                                     live_journal)
    run = TickRun(len(symbols))
    inside = ExchangeTime(paper)
    for index in range(warmup + ticks):
        for symbol in symbols:
            candle = candles[symbol][index]
            started = time.perf_counter_ns()
            paper.feed_candle(candle)
            run.paper_candle.append(time.perf_counter_ns() - started)
            engine.on_candle(candle)
        clock.set(candles[symbols[0]][index].close_time)
        sent_before = engine.executor.sent_count
        inside.ns = 0
        started = time.perf_counter_ns()
        await engine.tick()
        elapsed = time.perf_counter_ns() - started
        if index < warmup:
            continue
        run.per_symbol_tick.append(elapsed / len(symbols))
        run.own.append((elapsed - inside.ns) / len(symbols))
        run.whole_ticks.append(elapsed)
        if engine.executor.sent_count > sent_before:
            run.busy_ticks.append(elapsed / len(symbols))
            run.orders_sent += engine.executor.sent_count - sent_before
        for symbol in symbols:
            run.bare_observe.append(await bare_observe_ns(paper, symbol))
        run.empty_loop.append(await empty_loop_ns())
    run.closed_positions = len(store.closed_positions())
    store.close()
    return run


def report(run: TickRun) -> list[str]:
    def ms(values: list[float], q: float) -> float:
        return percentile(values, q) / NS_PER_MS if values else 0.0

    label = f"{run.symbols} symbol{'s' if run.symbols > 1 else ''}"
    bare = f"bare snapshot p50 {ms(run.bare_observe, 50):.3f} / p99 {ms(run.bare_observe, 99):.3f} ms"
    loop = f"empty loop iteration p50 {ms(run.empty_loop, 50) * 1000:.1f} us"
    return [
        f"--- {label}: {len(run.per_symbol_tick)} measured ticks, {run.orders_sent} orders sent "
        f"in {len(run.busy_ticks)} ticks, {run.closed_positions} positions closed",
        figure(f"{label}: p50 per symbol-tick", ms(run.per_symbol_tick, 50), "ms", baseline=bare),
        figure(f"{label}: p99.9 per symbol-tick", ms(run.per_symbol_tick, 99.9), "ms", baseline=loop),
        figure(f"{label}: p99 of ticks that sent orders", ms(run.busy_ticks, 99), "ms"),
        figure(f"{label}: p99 of a whole tick (all symbols)", ms(run.whole_ticks, 99), "ms"),
        figure(f"{label}: paper exchange per candle, p99", ms(run.paper_candle, 99), "ms",
               baseline=f"p50 {ms(run.paper_candle, 50):.3f} ms (market move + state save; "
                        "not in the tick)"),
        figure(f"{label}: p99 engine-only per symbol-tick", ms(run.own, 99), "ms",
               goal=f"< {GOAL_P99_MS:g} ms",
               baseline=f"p50 {ms(run.own, 50):.3f} ms (the engine's own work: the paper "
                        "exchange's calls, simulator and state saving, subtracted)"),
        figure(f"{label}: p99 per symbol-tick", ms(run.per_symbol_tick, 99), "ms",
               goal=f"< {GOAL_P99_MS:g} ms", baseline=bare),
    ]


async def main(args: argparse.Namespace) -> None:
    quiet_logs(args.log_level)
    lines: list[str] = [f"paper exchange {'polled (stream down)' if args.polling else 'streaming'}"
                        f"; database {'rollback journal, synchronous=FULL (the live agent)' if args.live_journal else 'WAL'}"]
    with scratch_dir("tick-overhead-", args.dir) as folder:
        for count in (1, 10):
            ticks = args.ticks if count == 1 else max(args.ticks // 3, 200)
            started = time.perf_counter()
            run = await measure(bench_symbols(count), ticks, args.warmup, args.seed, folder,
                                args.polling, args.live_journal)
            lines += report(run)
            lines.append(f"    ({time.perf_counter() - started:.1f} s wall for this part)")
    for line in lines:
        print(line)
    headline = [line for line in lines if line.startswith("10 symbols: p99 per symbol-tick ")][0]
    print(f"HEADLINE {headline}")


def parse_args() -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--ticks", type=int, default=6000,
                        help="measured ticks with 1 symbol (10 symbols: a third of it)")
    parser.add_argument("--warmup", type=int, default=DefaultStrategy().warmup + 10,
                        help="unmeasured ticks first (the strategy needs its window)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the database file goes (default: $TMPDIR)")
    parser.add_argument("--polling", action="store_true",
                        help="the paper exchange's stream down: every tick reads a snapshot")
    parser.add_argument("--live-journal", action="store_true",
                        help="open the database as the live agent does (rollback journal, "
                             "synchronous=FULL): commits wait for the disk")
    parser.add_argument("--log-level", default="ERROR")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
