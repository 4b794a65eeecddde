"""Whether a replay's cost per candle grows with its length: CPU seconds per chunk of
candles of one `tradebot backtest` run (replay_throughput.py's generated candles), the
trades closed in each chunk, and two chunks profiled side by side.

    python benchmarks/replay_chunks.py                        # 100k candles, 10k a chunk
    python benchmarks/replay_chunks.py --candles 50000 --compare 2,5

A table growing without an index, a list scanned per tick or a cache that never forgets
shows as chunks getting slower at the same number of trades. CPU time swings with the
host's load (+-25 % on a shared 2-core machine), so `--compare A,B` also profiles chunks A
and B (cProfile, 1-based) and prints the functions whose calls or own time differ most:
call counts do not depend on the load, and a function called more often per trade late
in the run is the growth.
"""

import argparse
import asyncio
import cProfile
import gc
import pstats
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import figure, quiet_logs, random_walk_candles, script_parser, write_candles_csv

import trader.market.replay as replay
from trader.backtest import run_backtest
from trader.config import load_settings
from trader.domain import Candle

SYMBOL = "XRPUSDT"
FIVE_MINUTES = timedelta(minutes=5)


class Chunks:
    """The marks taken at each chunk's end (candles, CPU seconds, the last close time,
    garbage collections so far) and the chunks to profile (0-based index -> profiler)."""

    def __init__(self, size: int, compared: tuple[int, ...]) -> None:
        self.size = size
        self.marks: list[tuple[int, float, datetime | None, int]] = []
        self.profiles = {index - 1: cProfile.Profile() for index in compared}
        self.collections = 0


def timed_feed(chunks: Chunks) -> type[replay.ReplayFeed]:
    """The replay feed, taking a mark at every chunk's end (the engine's code is untouched:
    `run_backtest` builds its feed from `trader.market.replay`)."""

    class TimedFeed(replay.ReplayFeed):
        async def _run(self) -> AsyncIterator[list[Candle]]:
            count = 0
            chunks.marks.append((0, time.process_time(), None, chunks.collections))
            async for batch in super()._run():
                profile = chunks.profiles.get(count // chunks.size)
                if profile is not None and count % chunks.size == 0:
                    profile.enable()
                yield batch
                count += len(batch)
                if count % chunks.size == 0:
                    if profile is not None:
                        profile.disable()
                    chunks.marks.append((count, time.process_time(), batch[-1].close_time,
                                         chunks.collections))

    return TimedFeed


def compare(first: pstats.Stats, second: pstats.Stats, labels: tuple[int, int],
            limit: int) -> list[str]:
    """The functions whose own time and whose calls differ most between two chunks."""
    a: dict[Any, Any] = first.stats      # type: ignore[attr-defined]
    b: dict[Any, Any] = second.stats     # type: ignore[attr-defined]
    rows = []
    for function in set(a) | set(b):
        calls_a, own_a = (a[function][1], a[function][2]) if function in a else (0, 0.0)
        calls_b, own_b = (b[function][1], b[function][2]) if function in b else (0, 0.0)
        rows.append((own_b - own_a, calls_a, calls_b, function))
    name = "{0}:{1} {2}".format
    lines = [f"--- chunk {labels[0]} -> chunk {labels[1]} (profiled): largest differences of "
             "own time"]
    for own, calls_a, calls_b, function in sorted(rows, key=lambda r: -abs(r[0]))[:limit]:
        lines.append(f"  {own:+7.3f} s  calls {calls_a:>8} -> {calls_b:>8}  "
                     f"{name(Path(function[0]).name, function[1], function[2])}")
    lines.append("--- largest growth of calls")
    for _own, calls_a, calls_b, function in sorted(rows, key=lambda r: r[1] - r[2])[:limit]:
        lines.append(f"  calls {calls_a:>8} -> {calls_b:>8}  "
                     f"{name(Path(function[0]).name, function[1], function[2])}")
    return lines


def main(args: argparse.Namespace) -> None:
    compared = tuple(int(part) for part in args.compare.split(",")) if args.compare else ()
    if len(compared) not in (0, 2) or any(not 1 <= i <= args.candles // args.chunk
                                          for i in compared):
        raise SystemExit("--compare takes two chunk numbers (1-based), e.g. 2,10")
    quiet_logs("ERROR")
    chunks = Chunks(args.chunk, compared)
    gc.callbacks.append(lambda phase, info: setattr(
        chunks, "collections", chunks.collections + (phase == "stop")))
    replay.ReplayFeed = timed_feed(chunks)       # type: ignore[misc]
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS=SYMBOL, TRADEBOT_EXCHANGE="paper")
    with tempfile.TemporaryDirectory(prefix="replay-chunks-") as folder:
        csv = write_candles_csv(Path(folder) / f"{SYMBOL}-5m.csv", random_walk_candles(
            SYMBOL, args.candles, seed=args.seed, interval=FIVE_MINUTES))
        report = asyncio.run(run_backtest(
            settings, {SYMBOL: replay.iter_candles(csv, SYMBOL, FIVE_MINUTES)},
            Path(folder) / "out", progress=False))
    print(f"{report.candles:,} candles, {len(report.trades):,} trades, chunks of "
          f"{args.chunk:,} (CPU seconds; profiled chunks run slower)")
    closes = sorted(trade.closed_at for trade in report.trades)
    rates = []          # of the chunks not profiled (a profiled one runs ~3x slower)
    for index, (before, mark) in enumerate(zip(chunks.marks, chunks.marks[1:], strict=False)):
        cpu = mark[1] - before[1]
        profiled = index in chunks.profiles
        trades = sum(1 for at in closes if (before[2] is None or at > before[2])
                     and mark[2] is not None and at <= mark[2])
        if not profiled:
            rates.append(args.chunk / cpu)
        print(f"  up to {mark[0]:>8,}  {cpu:6.2f} s  {args.chunk / cpu:8,.0f} c/s  "
              f"{trades:5d} trades  {mark[3] - before[3]:5d} collections"
              + ("  (profiled)" if profiled else ""))
    for first, second in [compared] if compared else []:
        print("\n".join(compare(pstats.Stats(chunks.profiles[first - 1]),
                                pstats.Stats(chunks.profiles[second - 1]),
                                (first, second), args.limit)))
    if len(rates) > 1:
        print(figure("last / first chunk not profiled, c/s (CPU)", rates[-1] / rates[0], "x",
                     goal="~1 (flat; the host's load moves it +-25 %)"))


def parse_args() -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare", default="2,10",
                        help="two chunks (1-based) to profile and compare; '' for none")
    parser.add_argument("--limit", type=int, default=15, help="functions listed per table")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
