"""Replay throughput and peak memory of `tradebot backtest` (the live engine on the paper
exchange), in candles per second, at 2k, 100k and 500k candles of one symbol.

    python benchmarks/replay_throughput.py                    # 2k, 100k, 500k (~8 min)
    python benchmarks/replay_throughput.py --sizes 2k,100k    # a quicker look
    python benchmarks/replay_throughput.py --sizes 100k --profile   # plus cProfile hot spots

Sizes: "2k" is the bundled real data (XRPUSDT 5m, 1,999 candles, with its funding rates);
the others are seeded random-walk XRPUSDT 5m candles (benchmarks/common.py) written to a
CSV and streamed from it (`trader.market.replay.iter_candles`), as a long backtest would.
Each figure is its own child process, so its peak RSS (VmHWM) is its own:
  backtest    `trader.backtest.run_backtest`, database on disk: exactly `tradebot backtest`
  feed only   the replay feed and the simulator, no engine (the floor of any backtest)
Rates are given per wall-clock second and per CPU second of the child (the machine is
shared: the CPU rate is the steadier). Goals: >= 8,000 candles/s per symbol; peak RSS of
the 500k run within 60 MB of the 2k run.
"""

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import (
    figure,
    peak_rss_mb,
    quiet_logs,
    random_walk_candles,
    script_parser,
    write_candles_csv,
)

GOAL_RATE = 8_000
GOAL_MEMORY_MB = 60.0
SYMBOL = "XRPUSDT"
FIVE_MINUTES = timedelta(minutes=5)
SIZES = {"2k": 0, "100k": 100_000, "500k": 500_000}    # 0: the bundled data
RESULT_MARK = "RESULT "


# --- the child: one measured run ----------------------------------------------------------
def run_child(kind: str, csv_path: str, profile: bool) -> None:
    from trader.backtest import run_backtest
    from trader.config import load_settings
    from trader.market.replay import iter_candles, load_bundled, load_bundled_funding

    quiet_logs("ERROR")
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS=SYMBOL, TRADEBOT_EXCHANGE="paper")
    if csv_path:
        candles, funding = {SYMBOL: iter_candles(Path(csv_path), SYMBOL, FIVE_MINUTES)}, None
    else:
        candles, funding = {SYMBOL: load_bundled()[SYMBOL]}, load_bundled_funding()
    before_mb = peak_rss_mb()
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="replay-") as folder:
        if profiler is not None:
            profiler.enable()
        if kind == "backtest":
            report = asyncio.run(run_backtest(settings, candles, Path(folder), progress=False,
                                              funding=funding))
            count, trades = report.candles, len(report.trades)
        else:
            count, trades = asyncio.run(feed_only(candles)), 0
        if profiler is not None:
            profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        print(hot_spots(profiler, 30))
    print(RESULT_MARK + json.dumps({"candles": count, "trades": trades, "wall": wall, "cpu": cpu,
                                    "peak_mb": peak_rss_mb(), "before_mb": before_mb}))


async def feed_only(candles: dict) -> int:  # type: ignore[type-arg]
    """The replay feed and the simulator, no engine: what any backtest costs at least."""
    from trader.backtest import first_open_time
    from trader.clock import ManualClock
    from trader.exchange.paper import PaperExchange
    from trader.exchange.sim import SimConfig
    from trader.market.replay import ReplayFeed
    from trader.trade_store import TradeStore

    start, candles = first_open_time(candles)
    clock = ManualClock(start)
    store = TradeStore.open(":memory:")
    paper = PaperExchange(store, clock, SimConfig(), persist_every=0, save_state=False)
    await paper.start(sorted(candles), 10)
    count = 0
    async for batch in ReplayFeed(candles, clock):
        for candle in batch:
            paper.feed_candle(candle)
        count += len(batch)
    store.close()
    return count


def hot_spots(profiler: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


# --- the parent: data, children, figures --------------------------------------------------
def measure(kind: str, csv_path: Path | None, profile: bool = False) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
               "--csv", str(csv_path or "")] + (["--profile"] if profile else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    results = [line for line in lines if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not results:
        raise RuntimeError(f"{kind} run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    if profile:
        print("\n".join(line for line in lines if not line.startswith(RESULT_MARK)))
    return json.loads(results[0][len(RESULT_MARK):])


def size_count(size: str) -> int | None:
    """Candles of a size: 0 for "2k" (the bundled data), else "20k" -> 20,000 generated."""
    if size in SIZES:
        return SIZES[size]
    digits = size.removesuffix("k")
    if not digits.isdigit() or int(digits) == 0:
        return None
    return int(digits) * (1000 if size.endswith("k") else 1)


def generated_csv(folder: Path, count: int, seed: int) -> Path:
    started = time.perf_counter()
    candles = random_walk_candles(SYMBOL, count, seed=seed, interval=FIVE_MINUTES)
    path = write_candles_csv(folder / f"{SYMBOL}-5m-{count}.csv", candles)
    print(f"{count:,} generated {SYMBOL} 5m candles written in "
          f"{time.perf_counter() - started:.1f} s")
    return path


def report(size: str, run: dict[str, float], floor: dict[str, float]) -> None:
    count = run["candles"]
    print(figure(f"{size} backtest: candles/s (wall)", count / run["wall"], "c/s",
                 goal=f">= {GOAL_RATE:,} c/s",
                 baseline=f"feed only {count / floor['wall']:,.0f} c/s"))
    print(figure(f"{size} backtest: candles/s (CPU)", count / run["cpu"], "c/s",
                 goal=f">= {GOAL_RATE:,} c/s",
                 baseline=f"feed only {count / floor['cpu']:,.0f} c/s; {int(run['trades'])} "
                          f"trades, {run['wall']:.1f} s"))
    print(figure(f"{size} backtest: peak RSS", run["peak_mb"], "MB",
                 baseline=f"feed only {floor['peak_mb']:.1f} MB; "
                          f"{run['before_mb']:.1f} MB before the replay"))


def main(args: argparse.Namespace) -> None:
    sizes = [size.strip() for size in args.sizes.split(",") if size.strip()]
    unknown = [size for size in sizes if size_count(size) is None]
    if unknown:
        raise SystemExit(f"unknown size(s) {', '.join(unknown)}: 2k (the bundled data) or a "
                         "number of generated candles such as 20k, 100k, 500k")
    runs: dict[str, dict[str, float]] = {}
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="replay-data-", dir=args.dir) as folder:
        for size in sizes:
            count = size_count(size)
            csv_path = generated_csv(Path(folder), count, args.seed) if count else None
            floor = measure("feed", csv_path)
            runs[size] = measure("backtest", csv_path, profile=args.profile)
            report(size, runs[size], floor)
    if "2k" in runs and len(runs) > 1:
        largest = max((size for size in runs if size != "2k"), key=lambda size: size_count(size) or 0)
        growth = runs[largest]["peak_mb"] - runs["2k"]["peak_mb"]
        print(figure(f"peak RSS growth 2k -> {largest}", growth, "MB",
                     goal=f"<= {GOAL_MEMORY_MB:g} MB",
                     baseline=f"2k {runs['2k']['peak_mb']:.1f} MB"))
    slowest = min(runs.values(), key=lambda run: run["candles"] / run["cpu"])
    print(figure("backtest: candles/s (CPU, slowest size)", slowest["candles"] / slowest["cpu"],
                 "c/s", goal=f">= {GOAL_RATE:,} c/s"))


def parse_args() -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--sizes", default="2k,100k,500k",
                        help="comma-separated: 2k (bundled real data), 100k, 500k, or any "
                             "number of generated candles (20k, 5000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the generated CSVs go ($TMPDIR)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile each backtest run and print its hot spots")
    parser.add_argument("--child", choices=("backtest", "feed"), help=argparse.SUPPRESS)
    parser.add_argument("--csv", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        run_child(arguments.child, arguments.csv, arguments.profile)
    else:
        main(arguments)
