"""Peak RSS of the agent replaying 5 symbols of 1m candles on the paper exchange.

    python benchmarks/memory_rss.py                  # ~20 s
    python benchmarks/memory_rss.py --hours 240      # ten days of market time

"An hour of replayed trading": by default 60 h of market time (what an hour of `tradebot run
--replay` covers at its default speed of 60), after 2.5 h of strategy warm-up, replayed as
fast as possible; the peak is reached once the bounded histories fill (candles, the paper
exchange's 1000 orders and fills), which happens within that span.

Each figure is a separate process, so peaks do not mix:
  5 symbols     the real command line on the 5 generated CSVs, `python -m trader run
                --replay --data <5 csv>` (trader.app.run_agent: boot, headless alert sink,
                replay loop, shutdown).
  1 symbol      the same command line on one of them.
  baseline      a Python process that imports the same modules and does nothing.
  candles       a process that imports the same modules and loads the 5 CSVs as the replay
                does (trader.market.replay.load_candles); its RSS growth over the load is the
                replayed candles held in memory (a live agent holds none).
Peak RSS is VmHWM from /proc/<pid>/status, sampled while the child runs, and the kernel's
ru_maxrss when it exits (the larger is reported). The goal: < 150 MB with 5 symbols.
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    ROOT,
    bench_symbols,
    figure,
    peak_rss_mb,
    random_walk_candles,
    scratch_dir,
    script_parser,
    write_candles_csv,
)

GOAL_MB = 150.0
WARMUP_HOURS = 2.5   # the default strategy needs 120 closed candles before it trades
DATA_MARK = "replay data MB: "
BASELINE_IMPORTS = "import trader.app, trader.engine, trader.exchange.paper, bot.app, trader.reconcile"


def generate(folder: Path, symbols: list[str], hours: float, seed: int) -> list[Path]:
    count = int(hours * 60)
    return [write_candles_csv(folder / f"{symbol}-1m.csv",
                              random_walk_candles(symbol, count, seed=seed))
            for symbol in symbols]


def child_env(folder: Path, symbols: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "BINANCE_", "TRADEBOT_", "HEARTBEAT"))}
    env.update({"TRADEBOT_DB": str(folder / "agent.db"), "TRADEBOT_EXCHANGE": "paper",
                "TRADEBOT_SYMBOLS": ",".join(symbols), "LOG_LEVEL": "WARNING",
                "PYTHONPATH": f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"})
    return env


@dataclass
class ChildRun:
    peak_mb: float
    seconds: float
    output: str


def peak_of(command: list[str], env: dict[str, str], folder: Path) -> ChildRun:
    """Run a child to its end and read its peak RSS (its output goes to files: a pipe
    nobody reads while it runs would block a chatty child)."""
    started = time.perf_counter()
    out_path, err_path = folder / "child.out", folder / "child.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=err)
        sampled = [0.0]
        sampler = threading.Thread(target=_sample, args=(child, sampled), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.join()
    if child.returncode != 0:
        errors = err_path.read_text(errors="replace")
        raise RuntimeError(f"child failed ({child.returncode}): {' '.join(command)}\n"
                           f"{errors[-3000:]}")
    peak = max(sampled[0], usage.ru_maxrss / 1024)   # ru_maxrss is in KB on Linux
    return ChildRun(peak, time.perf_counter() - started, out_path.read_text(errors="replace"))


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _sample(child: subprocess.Popen, sampled: list[float]) -> None:  # type: ignore[type-arg]
    while child.returncode is None:
        try:
            sampled[0] = max(sampled[0], peak_rss_mb(child.pid))
        except (FileNotFoundError, ProcessLookupError, RuntimeError):
            return   # the child is gone (or a zombie without memory figures)
        time.sleep(0.05)


def trading_summary(db_path: Path) -> str:
    """What the replayed agent did, read back from its database (proof it traded)."""
    from trader.trade_store import TradeStore
    store = TradeStore.open(db_path)
    try:
        closed = len(store.closed_positions())
        orders = store.db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    finally:
        store.close()
    return f"{orders} orders recorded, {closed} positions closed"


# --- the candles child: what the replay input alone holds in memory ----------------------
def load_child(files: list[Path]) -> int:
    import trader.app  # noqa: F401 - the same imports as the agent, before measuring
    from trader.market.replay import load_candles

    before = current_rss_mb()
    candles = [load_candles(path) for path in files]
    print(f"{DATA_MARK}{current_rss_mb() - before:.1f} ({sum(map(len, candles))} candles)",
          flush=True)
    return 0


def run_children(args: argparse.Namespace, folder: Path,
                 symbols: list[str]) -> tuple[ChildRun, ChildRun, ChildRun, ChildRun]:
    files = generate(folder, symbols, args.hours + args.warmup, args.seed)
    python = sys.executable
    baseline = peak_of([python, "-c", BASELINE_IMPORTS], child_env(folder, symbols), folder)
    one_folder = folder / "one"
    one_folder.mkdir()
    one = peak_of([python, "-m", "trader", "run", "--replay", "--speed", str(args.speed),
                   "--data", str(files[0])], child_env(one_folder, symbols[:1]), one_folder)
    five = peak_of([python, "-m", "trader", "run", "--replay", "--speed", str(args.speed),
                    "--data", *map(str, files)], child_env(folder, symbols), folder)
    data = peak_of([python, str(Path(__file__).resolve()), "--load-only", *map(str, files)],
                   child_env(folder, symbols), folder)
    # `run --replay` keeps its own database next to TRADEBOT_DB (agent-replay.db).
    replay_db = folder / "agent-replay.db"
    print(f"5-symbol run: {trading_summary(replay_db if replay_db.exists() else folder / 'agent.db')}")
    return baseline, one, five, data


def main(args: argparse.Namespace) -> None:
    symbols = bench_symbols(5)
    hours = args.hours + args.warmup
    print(f"{len(symbols)} symbols x {int(hours * 60):,} 1m candles ({hours:g} h of market time: "
          f"{args.hours:g} h of trading after {args.warmup:g} h of warm-up), replayed at speed "
          f"{args.speed:g}")
    with scratch_dir("memory-rss-", args.dir) as folder:
        baseline, one, five, loaded = run_children(args, folder, symbols)
    data = float(loaded.output.split(DATA_MARK)[1].split()[0])
    agent = five.peak_mb - baseline.peak_mb - data
    print(figure("baseline: python + the agent's imports", baseline.peak_mb, "MB"))
    print(figure("1 symbol: tradebot run --replay (CLI)", one.peak_mb, "MB",
                 baseline=f"+{one.peak_mb - baseline.peak_mb:.1f} MB over imports, "
                          f"{one.seconds:.1f} s"))
    print(figure("5 symbols: the agent itself", agent, "MB",
                 baseline=f"peak - imports - the replayed candles held in memory ({data:.1f} MB)"))
    print(figure("5 symbols: tradebot run --replay, peak", five.peak_mb, "MB",
                 goal=f"< {GOAL_MB:g} MB",
                 baseline=f"imports {baseline.peak_mb:.1f} MB, {five.seconds:.1f} s"))


def parse_args() -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--hours", type=float, default=60.0,
                        help="hours of replayed trading after the warm-up (market time)")
    parser.add_argument("--warmup", type=float, default=WARMUP_HOURS,
                        help="hours of candles before those (the strategy's warm-up)")
    parser.add_argument("--speed", type=float, default=1e9,
                        help="replay speed (feed seconds per wall second); default: flat out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where CSVs and databases go (default: $TMPDIR)")
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.load_only:
        sys.exit(load_child(arguments.files))
    main(arguments)
