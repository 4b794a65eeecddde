"""Instructions (valgrind callgrind) per backtest candle, per trade and per live tick: the
figure that compares two trees when timings on a shared host swing by +-25 %.

    python benchmarks/instructions.py                      # ~110 s of CPU, ~1-1.5 min on 2 idle cores
    python benchmarks/instructions.py --against 9849334    # also that commit, and the change
    python benchmarks/instructions.py --candles 20000 --profiles /tmp/cg   # keep the profiles

Three runs, each a process of its own under `valgrind --tool=callgrind` with
PYTHONHASHSEED=0 (string hashes, so set and dict orders, are the same every run):
(a) `trader.backtest.run_backtest` (`tradebot backtest`'s code path) over N generated
    XRPUSDT 5m candles (common.random_walk_candles, seed 1, streamed from a CSV) with the
    default strategy; (b) the same with `NeverSignals` below, a strategy that never signals
    (through TRADEBOT_STRATEGY=instructions:NeverSignals): the cost of an idle candle;
(c) `engine.tick()` alone in tick_overhead.py's 1-symbol setup (paper exchange with its
    stream up, WAL database file, default strategy, 1m candles), after its warm-up ticks.
Per trade is (a - b) x N / (a's trades): what a trade adds to the candles it spans.

How only the measured part is counted (CPython 3.11): a Python function has no C symbol of
its own for `--toggle-collect`, so the measured call goes through `operator.call` (new in
3.11; its C function `_operator_call` is in libpython's symbol table and nothing in the
agent, its libraries or the standard library calls it). Valgrind runs with
`--collect-atstart=no --toggle-collect=_operator_call`: counting starts when that function
is entered and stops when it returns, so the interpreter's start-up, the imports, the
candle generation and the set-up are not counted. (A marker call before and one after would
not do: `--toggle-collect` flips on a function's entry and again on its exit.) Start-up is
also made ~8x faster by `--instr-atstart=no`: the process runs uninstrumented until, just
before the measured part, it has `vgdb` (valgrind's gdbserver client) switch callgrind's
instrumentation on; the counts are the same as with instrumentation from the start. Before
the measured backtest an uncounted one over a few candles of other times runs, so the
imports and the code generated at a first call are not in the figure (modules still
imported inside the measured part are named in the output). A live tick runs inside the
counted call by sending None to its coroutine: on the paper exchange a tick never waits (the
run stops with an error if it does).

`--against REF` measures git REF (a commit or branch of this repository) too: a temporary
worktree at a path of the same length as this tree's (path lengths change CPython's counts
slightly), the same interpreter and this script's harness (this tree's benchmarks/ folder),
with PYTHONPATH set to that tree so `trader` and `storage` come from it. The worktree is
removed at the end. Four runs of one tree spread by 0.1-0.2 % (per tick, per trade, per
candle default) and 0.5 % (never signals), whatever else ran on the machine: a change under
~0.5 % is noise (the cause is not known: the temporary paths and the heap's addresses differ
from run to run; nothing measured reads a clock).
"""

import argparse
import asyncio
import json
import operator
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOGGLE = "_operator_call"          # the C function of operator.call (see the docstring)
RESULT_MARK = "INSTRUCTIONS-RESULT "
CASES = ("default", "never", "tick")
FIVE_MINUTES = timedelta(minutes=5)
WARMUP_CANDLES = 30                # the uncounted backtest before (a) and (b)


class NeverSignals:
    """A strategy that never signals: the backtest of an idle market (case b)."""
    name = "never"
    warmup = 50                    # as the earlier scripts' never-strategy

    def signal(self, closed: Sequence[Any]) -> None:
        return None


@dataclass(frozen=True)
class Count:
    """One counted run: its instructions, what they were spent on and what it saw."""
    case: str
    instructions: int
    units: int                     # candles (a, b) or ticks (c)
    trades: int                    # closed trades (a, b) or ticks that sent orders (c)
    late_imports: tuple[str, ...]
    seconds: float


# --- the measured processes (run under valgrind; `--measure CASE`) ---------------------

def use_tree(tree: Path) -> None:
    """Import `trader` and `storage` from `tree` and the harness (common.py, tick_overhead.py)
    from this script's folder. common.py puts its own repository first on sys.path unless it
    is there already: it is put last, so the measured tree's packages win."""
    sys.path.insert(0, str(tree))
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))


def count_backtest(args: argparse.Namespace) -> dict[str, Any]:
    """Case a or b: one uncounted short backtest, then the measured one."""
    from common import quiet_logs

    from trader.backtest import run_backtest
    from trader.config import load_settings
    from trader.market.replay import iter_candles

    quiet_logs("ERROR")
    strategy = {} if args.measure == "default" else {
        "TRADEBOT_STRATEGY": f"{Path(__file__).stem}:NeverSignals"}
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS="XRPUSDT",
                             TRADEBOT_EXCHANGE="paper", **strategy)

    def backtest(csv: Path, out: Path):  # type: ignore[no-untyped-def]
        return run_backtest(settings, {"XRPUSDT": iter_candles(csv, "XRPUSDT", FIVE_MINUTES)},
                            out, progress=False)

    asyncio.run(backtest(args.warmup_data, args.work / "warm-up"))
    before = set(sys.modules)
    start_instrumentation()
    report = operator.call(asyncio.run, backtest(args.data, args.work / "measured"))
    return {"units": report.candles, "trades": len(report.trades),
            "late_imports": sorted(set(sys.modules) - before)}


def start_instrumentation() -> None:
    """Switch callgrind's instrumentation on in this process (it starts off: see the
    docstring) through valgrind's gdbserver, which vgdb reaches while we wait for it."""
    done = subprocess.run(["vgdb", f"--pid={os.getpid()}", "instrumentation", "on"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"vgdb could not switch instrumentation on: {done.stderr.strip()}"
                           " (is this process running under valgrind --tool=callgrind?)")


def run_to_end(tick: Any) -> None:
    """Run a tick's coroutine in one go inside the counted call; it must not wait."""
    try:
        tick.send(None)
    except StopIteration:
        return
    tick.close()
    raise RuntimeError("engine.tick() waited on the event loop: its count would be split")


async def count_ticks(args: argparse.Namespace) -> dict[str, Any]:
    """Case c: tick_overhead.py's 1-symbol setup; only `engine.tick()` is counted."""
    from common import bench_symbols, quiet_logs, random_walk_candles
    from tick_overhead import build_engine

    from trader.strategy.default import DefaultStrategy

    quiet_logs("ERROR")
    symbols = bench_symbols(1)
    warmup = DefaultStrategy().warmup + 10         # as tick_overhead.py's --warmup
    candles = random_walk_candles(symbols[0], warmup + args.ticks, seed=args.seed)
    engine, paper, clock, store = await build_engine(args.work / "ticks-1.db", symbols,
                                                     candles[0].open_time, polling=False)
    busy, before = 0, set(sys.modules)
    for index, candle in enumerate(candles):
        paper.feed_candle(candle)
        engine.on_candle(candle)
        clock.set(candle.close_time)
        if index < warmup:
            await engine.tick()
            continue
        if index == warmup:
            start_instrumentation()
        sent = engine.executor.sent_count
        operator.call(run_to_end, engine.tick())
        busy += engine.executor.sent_count > sent
    store.close()
    return {"units": args.ticks, "trades": busy,
            "late_imports": sorted(set(sys.modules) - before)}


def measure(args: argparse.Namespace) -> None:
    use_tree(args.tree)
    result = (asyncio.run(count_ticks(args)) if args.measure == "tick"
              else count_backtest(args))
    print(RESULT_MARK + json.dumps(result), flush=True)


# --- the parent: data, processes, worktree, figures -------------------------------------

def child_environment(tree: Path) -> dict[str, str]:
    """The caller's environment without the agent's settings (TRADEBOT_*, LOG_LEVEL), with
    a fixed hash seed and `tree` first on the import path."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("TRADEBOT_") and name != "LOG_LEVEL"}
    environment.update(PYTHONHASHSEED="0", PYTHONPATH=str(tree))
    return environment


def run_counted(case: str, tree: Path, args: argparse.Namespace, data: Path, warmup_data: Path,
                work: Path, profile: Path) -> Count:
    """One case on one tree under valgrind. Its files go to `work`, a folder whose path is as
    long as the other tree's of the same case: the paths' strings (their hashes and lengths)
    are then the same for both trees, which keeps an A/B's difference down to the code's."""
    work.mkdir()
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--toggle-collect={TOGGLE}", f"--callgrind-out-file={profile}",
               sys.executable, str(Path(__file__).resolve()), "--measure", case,
               "--tree", str(tree), "--data", str(data), "--warmup-data", str(warmup_data),
               "--work", str(work), "--ticks", str(args.ticks), "--seed", str(args.seed)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=tree,
                          env=child_environment(tree), check=False)
    seconds = time.perf_counter() - started
    results = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    collected = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or not results or collected is None:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise RuntimeError(f"the {case} run on {tree} failed (exit {done.returncode}):\n{tail}")
    result = json.loads(results[-1][len(RESULT_MARK):])
    if int(collected.group(1)) == 0:
        raise RuntimeError(f"callgrind counted nothing: {TOGGLE} is not in this Python's "
                           "symbols (a stripped build?)")
    return Count(case, int(collected.group(1)), result["units"], result["trades"],
                 tuple(result["late_imports"]), seconds)


def write_data(folder: Path, candles: int, seed: int) -> tuple[Path, Path]:
    """The measured candles and the few of the uncounted warm-up backtest (other times)."""
    from common import random_walk_candles, write_candles_csv
    data = write_candles_csv(folder / "candles.csv", random_walk_candles(
        "XRPUSDT", candles, seed=seed, interval=FIVE_MINUTES))
    warmup = write_candles_csv(folder / "warm-up.csv", random_walk_candles(
        "XRPUSDT", WARMUP_CANDLES, seed=seed + 1, interval=FIVE_MINUTES,
        start=datetime(2020, 1, 1, tzinfo=UTC)))
    return data, warmup


def same_length_path(length: int) -> Path:
    """A path that does not exist yet, `length` characters long: in the temporary folder
    when it is short enough, else beside this tree."""
    for base in (Path(tempfile.gettempdir()), ROOT.parent):
        room = length - len(str(base)) - 1
        if room < 3:
            continue
        for _ in range(50):
            candidate = base / secrets.token_hex(room)[:room]
            if not candidate.exists():
                return candidate
    raise RuntimeError(f"no free path of {length} characters for the worktree")


def git(*arguments: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *arguments], capture_output=True, text=True,
                          check=True).stdout.strip()


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """`ref` checked out (detached) at a path as long as this tree's; removed after."""
    path = same_length_path(len(str(ROOT)))
    git("worktree", "add", "--detach", str(path), ref)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))


def count_trees(trees: dict[str, Path], args: argparse.Namespace) -> dict[str, dict[str, Count]]:
    """Every case on every tree, `--jobs` processes at a time (the live tick first: longest)."""
    from common import scratch_dir
    with scratch_dir("instructions-data-") as folder:
        data, warmup = write_data(folder, args.candles, args.seed)
        profiles = Path(args.profiles) if args.profiles else folder
        profiles.mkdir(parents=True, exist_ok=True)
        jobs = [(label, case) for case in ("tick", "default", "never") for label in trees]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {job: pool.submit(
                run_counted, job[1], trees[job[0]], args, data, warmup,
                folder / f"{job[1]}-{list(trees).index(job[0])}",
                profiles / f"callgrind.out.{job[0].split()[0]}.{job[1]}") for job in jobs}
            counts = {job: future.result() for job, future in futures.items()}
    return {label: {case: counts[(label, case)] for case in CASES} for label in trees}


def per_figures(counts: dict[str, Count]) -> dict[str, float]:
    default, never, tick = counts["default"], counts["never"], counts["tick"]
    figures = {"backtest, default strategy, per candle": default.instructions / default.units,
               "backtest, never signals, per candle": never.instructions / never.units,
               "1-symbol live tick, per tick": tick.instructions / tick.units}
    if default.trades:
        figures["per trade ((a - b) x N / trades)"] = (
            (default.instructions / default.units - never.instructions / never.units)
            * default.units / default.trades)
    return figures


def report(trees: dict[str, Path], counts: dict[str, dict[str, Count]]) -> list[str]:
    from common import figure
    lines: list[str] = []
    for label, tree_counts in counts.items():
        default, tick = tree_counts["default"], tree_counts["tick"]
        lines.append(f"--- {label}: {default.units:,} candles, {default.trades} trades; "
                     f"{tick.units:,} live ticks, {tick.trades} of them sent orders")
        for name, value in per_figures(tree_counts).items():
            lines.append(figure(name, value, "instr"))
        if not default.trades:
            lines.append("    (no trade in the backtest: no figure per trade; more --candles)")
        for count in tree_counts.values():
            if count.late_imports:
                lines.append(f"    ({count.case}: imported inside the counted part: "
                             f"{', '.join(count.late_imports)})")
        lines.append("    (" + ", ".join(f"{count.case} {count.seconds:.0f} s"
                                          for count in tree_counts.values()) + " under valgrind)")
    if len(counts) == 2:
        (new_label, new), (old_label, old) = ((label, per_figures(c)) for label, c in counts.items())
        lines.append(f"--- change, {old_label} -> {new_label}")
        for name in (name for name in new if name in old):
            lines.append(figure(name, (new[name] / old[name] - 1) * 100, "%",
                                baseline=f"{old[name]:,.0f} -> {new[name]:,.0f}"))
    return lines


def describe(tree: Path) -> str:
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{commit or '?'}{' + changes' if dirty else ''}"


def main(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing to count",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(f"instructions (valgrind callgrind, PYTHONHASHSEED=0, Python "
          f"{sys.version.split()[0]}): backtest of {args.candles:,} generated XRPUSDT 5m "
          f"candles (seed {args.seed}); {args.ticks:,} ticks of tick_overhead.py's 1-symbol setup")
    started = time.perf_counter()
    with (worktree(args.against) if args.against else nullpath()) as other:
        trees = {f"this tree ({describe(ROOT)})": ROOT}
        if other is not None:
            trees[f"{args.against} ({describe(other)})"] = other
        lines = report(trees, count_trees(trees, args))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines.append(f"    ({time.perf_counter() - started:.0f} s wall, "
                 f"{children.ru_utime + children.ru_stime:.0f} s CPU of the valgrind runs)")
    for line in lines:
        print(line)
    return 0


@contextmanager
def nullpath() -> Iterator[Path | None]:
    yield None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=int, default=5000, help="backtest candles (a, b)")
    parser.add_argument("--ticks", type=int, default=2000, help="counted live ticks (c)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--against", metavar="REF", help="also count git REF, and the change")
    parser.add_argument("--jobs", type=int, default=2, help="runs under valgrind at once")
    parser.add_argument("--profiles", metavar="DIR",
                        help="keep the callgrind.out files there (for callgrind_annotate)")
    parser.add_argument("--measure", choices=CASES, help=argparse.SUPPRESS)   # a child run
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warmup-data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.measure:
        measure(arguments)
    else:
        sys.exit(main(arguments))
