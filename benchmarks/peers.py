"""tradebot against its peers: the same candles, the same strategy rule, interleaved runs.

    python benchmarks/peers.py                       # 2k, 100k, 500k; medians of 3 (hours)
    python benchmarks/peers.py --quick               # smoke run: 2k candles, one run each
    python benchmarks/peers.py --sizes 2k,100k --peers jesse,freqtrade

Engines: tradebot (`tradebot backtest --data FILE`, the live engine on the paper exchange)
and the peers jesse, freqtrade, nautilus_trader and backtesting.py. Each peer is installed
by this script from the package registry into its own virtualenv under --cache-dir
(~/.cache/tradebot-bench/<peer>, once; ~1-3 minutes each) and runs as a child process,
peer_runners/<peer>_runner.py, which prints one JSON line: candles, seconds, peak RSS (its
own getrusage), trades. The candles (peer_candles.py): a seeded XRPUSDT-like 5m random walk,
aggregated from 1m candles (jesse is fed those). The rule (peer_runners/rule.py): Donchian-30
breakout + EMA20/50 trend filter + body >= 0.8 ATR14, stop 1.5 ATR, target 2x, one position
at a time, taker fee 0.05 %. Runs are interleaved (tradebot, jesse, freqtrade, ..., then
again) so a change in the machine's load hits every engine alike; the figure is the median
of --repeat runs. A peer that cannot be installed or fails prints why in its row. A run
that exceeds --timeout is stopped: "< N (did not finish)", and larger sizes are skipped.
The table (with the 1-minute load average seen during the runs) is printed after each size,
so a long run stopped early keeps the figures of the sizes it finished; the last is complete.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peer_candles import parse_size, size_label, write_candle_files
from peer_envs import DISPLAY, PEERS, RUNNERS, Environment, PeerUnavailable, ensure_environment
from peer_envs import last_line as last_error_line
from peer_table import BASELINE, Run, render_table, trades_line

RESULT_MARK = "RESULT "
DEFAULT_SIZES = "2k,100k,500k"
TRADEBOT_LABEL = "tradebot (event-driven, live engine path)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help="5m candle counts, comma-separated (default 2k,100k,500k)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"peers beside tradebot (default {','.join(PEERS)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and size")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random walk")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one run may take before it is stopped")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "tradebot-bench", help="where the peers' virtualenvs live")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="candles and scratch (default: a temporary directory)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: --sizes 2k --repeat 1")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = "2k", 1
    try:
        args.size_list = [parse_size(text) for text in args.sizes.split(",") if text.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    args.peer_list = [name.strip() for name in args.peers.split(",") if name.strip()]
    unknown = [name for name in args.peer_list if name not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")
    return args


def install_peers(names: list[str], cache: Path) -> tuple[dict[str, Environment], dict[str, str]]:
    """({peer: environment}, {peer: why it is not available}), saying each on stdout."""
    ready, unavailable = {}, {}
    for name in names:
        print(f"{name}: checking its virtualenv in {cache / name} ...", flush=True)
        try:
            ready[name] = env = ensure_environment(PEERS[name], cache)
        except PeerUnavailable as exc:
            unavailable[name] = str(exc)
            print(f"{name}: not available: {exc}", flush=True)
            continue
        how = "cached" if env.install_seconds is None else f"installed in {env.install_seconds:.0f} s"
        print(f"{name}: {PEERS[name].requirement} ({how}, {env.version})", flush=True)
    return ready, unavailable


def run_once(engine: str, python: Path, data: Path, candles: int, scratch: Path,
             timeout: float) -> Run:
    """One child process on the `candles` 5m candles in `data`: its RESULT line, or the
    reason it has none."""
    shutil.rmtree(scratch, ignore_errors=True)    # a --workdir used before
    scratch.mkdir(parents=True)
    runner = RUNNERS / f"{engine}_runner.py"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    stdout_path, stderr_path = scratch / "stdout.txt", scratch / "stderr.txt"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        # its own session: on a timeout the whole process group is stopped, children included
        try:
            child = subprocess.Popen([str(python), str(runner), "--data", str(data),
                                      "--workdir", str(scratch)], cwd=scratch, stdout=stdout,
                                     stderr=stderr, env=environment, start_new_session=True)
        except OSError as exc:
            return Run(engine, candles, error=f"cannot start {python}: {exc}")
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return Run(engine, candles, timed_out_after=timeout)
    for line in reversed(stdout_path.read_text(errors="replace").splitlines()):
        if line.startswith(RESULT_MARK):
            try:
                result = json.loads(line[len(RESULT_MARK):])
                return Run(engine, candles, seconds=float(result["seconds"]),
                           peak_rss_mb=float(result["peak_rss_mb"]), trades=int(result["trades"]),
                           rows=int(result["rows"]), version=str(result["version"]))
            except (ValueError, KeyError, TypeError) as exc:
                return Run(engine, candles, error=f"unreadable result line ({exc}): {line[:100]}")
    reason = last_error_line(stderr_path.read_text(errors="replace"))
    return Run(engine, candles, error=f"exit {child.returncode}: {reason}")


def describe(run: Run) -> str:
    if run.ok:
        rows = f", {run.rows:,} rows fed" if run.rows and run.rows != run.candles else ""
        return (f"{run.seconds:.2f} s = {run.candles / run.seconds:,.0f} c/s, "  # type: ignore[operator]
                f"peak RSS {run.peak_rss_mb:,.0f} MB, {run.trades:,} trades{rows}")
    if run.timed_out_after is not None:
        return f"did not finish in {run.timed_out_after:,.0f} s (stopped)"
    return f"failed: {run.error}"


def measure_size(engines: dict[str, Path], size: int, args: argparse.Namespace,
                 workdir: Path, stopped: set[str], loads: list[float]) -> list[Run]:
    """Interleaved: `repeat` rounds of one run per engine on `size` candles. An engine that
    fails runs no more at this size; one that runs out of time joins `stopped` (no larger
    size)."""
    runs: list[Run] = []
    label = size_label(size)
    data = workdir / "data" / str(size)
    print(f"\n{label}: writing {size:,} 5m candles ({5 * size:,} 1m) to {data}", flush=True)
    write_candle_files(data, size, args.seed)
    failed: set[str] = set()
    for round_number in range(1, args.repeat + 1):
        for engine, python in engines.items():
            if engine in stopped or engine in failed:
                continue
            loads.append(os.getloadavg()[0])
            scratch = workdir / "runs" / f"{engine}-{label}-{round_number}"
            run = run_once(engine, python, data, size, scratch, args.timeout)
            shutil.rmtree(scratch, ignore_errors=True)
            runs.append(run)
            print(f"[{label} {round_number}/{args.repeat}] {engine}: {describe(run)} "
                  f"(load {loads[-1]:.2f})", flush=True)
            if run.timed_out_after is not None:
                stopped.add(engine)
            elif not run.ok:
                failed.add(engine)
    shutil.rmtree(data, ignore_errors=True)
    return runs


def tradebot_revision() -> str:
    """"commit 1a2b3c4" (+ "with uncommitted changes"): which tradebot the figures are of."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "trader"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"commit {commit.strip()}" + (" with uncommitted changes in trader/" if changed else "")


def labels_for(environments: dict[str, Environment]) -> dict[str, str]:
    labels = {BASELINE: TRADEBOT_LABEL}
    for name, peer in PEERS.items():
        version = environments[name].version if name in environments else \
            peer.requirement.partition("==")[2]
        labels[name] = f"{DISPLAY.get(name, name)} {version} ({peer.kind})"
    return labels


def print_results(names: list[str], sizes: list[int], runs: list[Run], loads: list[float],
                  minutes: float, args: argparse.Namespace, labels: dict[str, str],
                  unavailable: dict[str, str]) -> None:
    load = f"{min(loads):.2f}-{max(loads):.2f}" if loads else "-"
    print(f"\n{len(runs)} runs in {minutes:.1f} min; 1-minute load average during the runs "
          f"{load} on {os.cpu_count()} cores; medians of {args.repeat}; ratios to tradebot")
    print(trades_line(names, sizes, runs))
    print()
    print(render_table(names, sizes, runs, labels, unavailable), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"tradebot vs peers: sizes {', '.join(map(size_label, args.size_list))}, "
          f"{args.repeat} interleaved run(s) each, seed {args.seed}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; tradebot "
          f"{tradebot_revision()}", flush=True)
    environments, unavailable = install_peers(args.peer_list, args.cache_dir)
    engines = {BASELINE: Path(sys.executable)} | {name: env.python
                                                 for name, env in environments.items()}
    names, labels = [BASELINE, *args.peer_list], labels_for(environments)
    runs: list[Run] = []
    loads: list[float] = []
    stopped: set[str] = set()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tradebot-peers-") as temporary:
        workdir = args.workdir or Path(temporary)
        for done, size in enumerate(args.size_list, start=1):
            runs += measure_size(engines, size, args, workdir, stopped, loads)
            # the table so far after each size: a long run can be stopped with its figures
            print_results(names, args.size_list[:done], runs, loads,
                          (time.perf_counter() - started) / 60, args, labels, unavailable)
    return 0


if __name__ == "__main__":
    sys.exit(main())
