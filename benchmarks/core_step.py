"""Cost per call of the pure core that runs for every position on every tick: the state
machine `trader.lifecycle.step` (by event kind), `trader.observe.observe` and
`trader.protection.confirms`, in microseconds of CPU.

    python benchmarks/core_step.py                     # 20k candles, ~1 min on 2 cores
    python benchmarks/core_step.py --candles 5000 --exit-plan two

The calls are the real ones: a backtest (`trader.backtest.run_backtest`, the default
strategy on seeded random-walk XRPUSDT 5m candles) runs once and every top-level call of
the three functions is recorded with its arguments (pickled, so each round works on fresh
copies, as the engine would). They are then replayed alone, several rounds, and the best
round counts (the machine is shared: the least disturbed round is the closest to the cost).
The backtest's own candles/s is printed beside them as the baseline: the core is a part of
every one of its ticks.
"""

import asyncio
import copyreg
import pickle
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from common import figure, quiet_logs, random_walk_candles, script_parser, write_candles_csv

import trader.interpreter
import trader.position_keeper
import trader.protection
from trader import lifecycle, observe, protection
from trader.backtest import run_backtest
from trader.config import load_settings
from trader.market.replay import iter_candles

CORE: dict[str, Callable[..., Any]] = {"step": lifecycle.step, "observe": observe.observe,
                                        "confirms": protection.confirms}
Recorded = dict[str, list[bytes]]      # "step:Tick", "observe", ... -> pickled arguments
# A view's orders are the tracker's read-only snapshot (trader/order_tracker.py `for_symbol`),
# which pickle cannot take as it is: recorded as the dict it shows, read back as a snapshot.
def snapshot(orders: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(orders)


copyreg.pickle(MappingProxyType, lambda orders: (snapshot, (dict(orders),)))


def record(candles: int, exit_plan: str) -> tuple[Recorded, float]:
    """Run a backtest with the core's entry points wrapped; its calls and candles/s (CPU)."""
    calls: Recorded = defaultdict(list)

    def recording(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            kind = f"{name}:{type(args[1]).__name__}" if name == "step" else name
            calls[kind].append(pickle.dumps(args))
            return function(*args)
        return wrapper

    trader.interpreter.step = recording("step", lifecycle.step)            # type: ignore[assignment]
    trader.position_keeper.observe = recording("observe", observe.observe)  # type: ignore[assignment]
    trader.protection.confirms = recording("confirms", protection.confirms)  # type: ignore[assignment]
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS="XRPUSDT",
                             TRADEBOT_EXCHANGE="paper", TRADEBOT_EXIT_PLAN=exit_plan)
    with tempfile.TemporaryDirectory() as folder:
        csv = write_candles_csv(Path(folder) / "c.csv", random_walk_candles(
            "XRPUSDT", candles, seed=1, interval=timedelta(minutes=5)))
        feed = {"XRPUSDT": iter_candles(csv, "XRPUSDT", timedelta(minutes=5))}
        started = time.process_time()
        report = asyncio.run(run_backtest(settings, feed, Path(folder) / "out", progress=False))
        rate = report.candles / (time.process_time() - started)
    trader.interpreter.step = lifecycle.step
    trader.position_keeper.observe = observe.observe
    trader.protection.confirms = protection.confirms
    return calls, rate


def best_round(function: Callable[..., Any], pickled: list[bytes], rounds: int) -> float:
    """Seconds of CPU for all the calls, the best of `rounds` (fresh arguments each round)."""
    best = float("inf")
    for _ in range(rounds):
        arguments = [pickle.loads(blob) for blob in pickled]
        started = time.process_time()
        for args in arguments:
            function(*args)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--candles", type=int, default=20_000)
    parser.add_argument("--exit-plan", choices=["one", "two"], default="one")
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    quiet_logs("ERROR")
    calls, rate = record(options.candles, options.exit_plan)
    print(figure("backtest (baseline, recording on)", rate, "candles/s"))
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for kind in sorted(calls):
        name = kind.split(":")[0]
        seconds = best_round(CORE[name], calls[kind], options.rounds)
        totals[name] += seconds
        counts[name] += len(calls[kind])
        print(figure(f"{kind} ({len(calls[kind])} calls)", seconds / len(calls[kind]) * 1e6,
                     "us/call"))
    for name in ("observe", "confirms"):
        print(figure(f"{name} per call", totals[name] / max(counts[name], 1) * 1e6, "us"))
    print(figure("core per candle (step + observe + confirms)",
                 sum(totals.values()) / options.candles * 1e6, "us"))
    print(figure("step per call, all events", totals["step"] / max(counts["step"], 1) * 1e6,
                 "us"))


if __name__ == "__main__":
    main()
