"""Instructions (valgrind callgrind) per phase of a backtest: where a trade's cost goes.

    python benchmarks/instruction_phases.py                   # 2,000 candles, ~10 min on 2 cores
    python benchmarks/instruction_phases.py --phases protect,entry_send --candles 5000
    python benchmarks/instruction_phases.py --phases orders        # a trade's order actions
    python benchmarks/instruction_phases.py --phases in-position   # its quiet candles' parts

instructions.py counts a whole backtest; this counts one phase of it per run: the methods
of the phase are called through `operator.call`, whose C function toggles callgrind's
collection (instructions.py's docstring says why that function), so only the instructions
inside them are counted, nested calls included. Each phase runs with the default strategy
and, where the idle market has it too, with instructions.py's `NeverSignals`; per trade is
(default - never) / trades. The engine is not changed: the phase's methods are wrapped in
the measured process only. An async phase is driven in one go, as instructions.py drives a
live tick: on the paper exchange it never waits (the run stops with an error if it does).

The phases are not disjoint: `tick` holds all but `feed`; `protect` and `entry_send` hold
`perform`, `submit`, `step` and `journal_commit`; `strategy` is the strategy's own signal,
also asked inside `says_close` and on every flat candle (the never-signalling strategy
asks nothing, so instructions.py's "per trade" includes it).

Two groups split a trade's cost further (not in the default run: ~5 and ~4 min more).
`orders`, the order actions: `enter` (a signal's entry: plan and send), `steps` (the
interpreter's full steps: the entry's fill and legs, the exit, leg replacements) and,
inside them, `place_leg`, `flatten`, `cancel`, `finalize` (the close's reads), the paper
exchange's `sim_place` and `sim_reads`, the executor's `refresh` and `answer_journal` (an
answer's intent and order saved), the tracker's `tracker` (an answer merged) and `alerts`
(publishing). `in-position`, what an open position adds to a candle besides its steps:
`quiet_tick`, `stream_fills` (the fills the stream reports a tick after an order),
`maker_check` (whether a maker entry still works), `intents_for` (a position's intents, also
read by the close), `invariants` (the monitor's check) and `intent_cleanup`; with `balance`,
`says_close`, `feed` and `housekeeping` above.
"""

import argparse
import asyncio
import json
import operator
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from instructions import FIVE_MINUTES, TOGGLE, child_environment, start_instrumentation, write_data

ROOT = Path(__file__).resolve().parent.parent
RESULT_MARK = "PHASE-RESULT "
# measured on `never` too
IDLE_TOO = ("tick", "housekeeping", "events", "balance", "feed", "alerts", "invariants",
            "intent_cleanup")

# phase -> (module, attribute path, async?) of the methods counted
PHASES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "tick": (("trader.engine", "Engine.tick", True),),
    "protect": (("trader.position_keeper", "PositionKeeper.protect", True),),
    "entry_send": (("trader.entry_sender", "EntrySender.send", True),),
    "entry_plan": (("trader.entry", "EntryDesk.plan", False),),
    "says_close": (("trader.entry_sender", "EntrySender.says_close", False),),
    "strategy": (("trader.strategy.default", "DefaultStrategy.signal", False),),
    "housekeeping": (("trader.housekeeping", "Housekeeping.run", True),),
    "events": (("trader.exchange_view", "ExchangeView.on_events", False),
               ("trader.position_journal", "PositionJournal.record_stream_fills", False)),
    "balance": (("trader.balance_keeper", "BalanceKeeper.refresh", True),
                ("trader.risk_state", "RiskState.update_fraction", False)),
    "feed": (("trader.exchange.paper", "PaperExchange.feed_candle", False),),
    "perform": (("trader.interpreter", "Interpreter.perform", True),),
    "step": (("trader.interpreter", "step", False),),
    "journal_commit": (("trader.position_journal", "PositionJournal.commit", False),),
    "close": (("trader.position_journal", "PositionJournal.close", False),),
    "submit": (("trader.executor", "Executor.submit", True),),
    # the `orders` group
    "enter": (("trader.entry_sender", "EntrySender.enter_on_signal", True),),
    "steps": (("trader.interpreter", "Interpreter.steps", True),),
    "place_leg": (("trader.exchange_actions", "ActionRunner.place_leg", True),),
    "flatten": (("trader.exchange_actions", "ActionRunner.flatten", True),),
    "cancel": (("trader.exchange_actions", "ActionRunner.cancel", True),),
    "finalize": (("trader.closing", "Finalizer.finalize", True),),
    "sim_place": (("trader.exchange.paper", "PaperExchange.place", True),),
    "sim_reads": (("trader.exchange.paper", "PaperExchange.cancel", True),
                  ("trader.exchange.paper", "PaperExchange.order_by_client_id", True),
                  ("trader.exchange.paper", "PaperExchange.fills", True),
                  ("trader.exchange.paper", "PaperExchange.position", True)),
    "refresh": (("trader.executor", "Executor.refresh", True),),
    "answer_journal": (("trader.executor", "Executor._record_answer", False),),
    "tracker": (("trader.order_tracker", "OrderTracker.learned", False),),
    "alerts": (("trader.alerter", "Alerter.publish", False),),
    # the `in-position` group
    "quiet_tick": (("trader.interpreter", "Interpreter.quiet_tick", False),),
    "stream_fills": (("trader.position_journal", "PositionJournal.record_stream_fills", False),),
    "maker_check": (("trader.maker_quoter", "MakerQuoter.working", False),),
    "intents_for": (("trader.intent_records", "IntentRecords.intents_for", False),),
    "invariants": (("trader.invariant_monitor", "InvariantMonitor.check", True),),
    "intent_cleanup": (("trader.housekeeping", "Housekeeping.clean_intents", True),),
}
GROUPS = {
    "orders": ("enter", "steps", "place_leg", "flatten", "cancel", "finalize", "sim_place",
               "sim_reads", "refresh", "answer_journal", "tracker", "alerts"),
    "in-position": ("quiet_tick", "stream_fills", "maker_check", "intents_for", "invariants",
                    "intent_cleanup"),
}
DEFAULT = tuple(name for name in PHASES if not any(name in group for group in GROUPS.values()))


# --- the measured process ---------------------------------------------------------------
def run_to_end(work: Coroutine[Any, Any, Any]) -> Any:
    """A phase's coroutine in one go (inside the counted call); it must not wait."""
    try:
        work.send(None)
    except StopIteration as done:
        return done.value
    work.close()
    raise RuntimeError("a counted phase waited on the event loop: its count would be split")


def counted(method: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    if is_async:
        async def counted_async(*args: Any, **kwargs: Any) -> Any:
            return operator.call(run_to_end, method(*args, **kwargs))
        return counted_async

    def counted_sync(*args: Any, **kwargs: Any) -> Any:
        return operator.call(method, *args, **kwargs)
    return counted_sync


def wrap_phase(phase: str) -> None:
    import importlib
    for module_name, path, is_async in PHASES[phase]:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, counted(getattr(owner, name), is_async))


def measure(args: argparse.Namespace) -> None:
    from common import quiet_logs

    from trader.backtest import run_backtest
    from trader.config import load_settings
    from trader.market.replay import iter_candles

    quiet_logs("ERROR")
    wrap_phase(args.measure)
    strategy = {} if args.case == "default" else {
        "TRADEBOT_STRATEGY": "instructions:NeverSignals"}
    settings = load_settings(_env_file=None, TRADEBOT_SYMBOLS="XRPUSDT",
                             TRADEBOT_EXCHANGE="paper", **strategy)

    def backtest(csv: Path, out: Path):  # type: ignore[no-untyped-def]
        return run_backtest(settings, {"XRPUSDT": iter_candles(csv, "XRPUSDT", FIVE_MINUTES)},
                            out, progress=False)

    asyncio.run(backtest(args.warmup_data, args.work / "warm-up"))   # instrumentation off
    start_instrumentation()
    report = asyncio.run(backtest(args.data, args.work / "measured"))
    print(RESULT_MARK + json.dumps({"candles": report.candles, "trades": len(report.trades)}),
          flush=True)


# --- the parent ---------------------------------------------------------------------------
def run_counted(phase: str, case: str, data: Path, warmup: Path, folder: Path) -> dict[str, int]:
    work = folder / f"{phase}-{case}"
    work.mkdir()
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--toggle-collect={TOGGLE}", f"--callgrind-out-file={work / 'callgrind.out'}",
               sys.executable, str(Path(__file__).resolve()), "--measure", phase,
               "--case", case, "--data", str(data), "--warmup-data", str(warmup),
               "--work", str(work)]
    environment = child_environment(ROOT)
    environment["PYTHONPATH"] = f"{ROOT}:{Path(__file__).resolve().parent}"
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=environment,
                          check=False)
    collected = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    results = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or collected is None or not results:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise RuntimeError(f"phase {phase} ({case}) failed (exit {done.returncode}):\n{tail}")
    return {**json.loads(results[-1][len(RESULT_MARK):]), "instructions": int(collected[1])}


def chosen_phases(names: str) -> list[str]:
    """The phases `--phases` names (a group stands for its phases), in that order, each
    once; the default run's without any."""
    if not names.strip():
        return list(DEFAULT)
    chosen: list[str] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        chosen += GROUPS.get(name, (name,))
    return list(dict.fromkeys(chosen))


def main(args: argparse.Namespace) -> None:
    phases = chosen_phases(args.phases)
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(unknown)}: {', '.join(PHASES)}")
    jobs = [(p, "default") for p in phases] + [(p, "never") for p in phases if p in IDLE_TOO]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="phases-") as name:
        folder = Path(name)
        data, warmup = write_data(folder, args.candles, args.seed)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            counts = dict(zip(jobs, pool.map(
                lambda job: run_counted(job[0], job[1], data, warmup, folder), jobs),
                strict=True))
    trades = counts[jobs[0]]["trades"]
    print(f"instructions per phase, backtest of {args.candles:,} generated XRPUSDT 5m candles "
          f"(seed {args.seed}), {trades} trades; per trade = (default - never) / trades")
    for phase in phases:
        default = counts[(phase, "default")]["instructions"]
        never = counts[(phase, "never")]["instructions"] if phase in IDLE_TOO else 0
        per_trade = (default - never) / trades if trades else float("nan")
        print(f"  {phase:<16} default {default:>15,}   never {never:>15,}   "
              f"per trade {per_trade:>13,.0f}   per candle (default) {default / args.candles:>10,.0f}")
    print(f"    ({time.perf_counter() - started:.0f} s wall)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="", help="comma-separated of: "
                        f"{', '.join([*PHASES, *GROUPS])} (a group: its phases)")
    parser.add_argument("--jobs", type=int, default=2, help="runs under valgrind at once")
    parser.add_argument("--measure", choices=tuple(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=("default", "never"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warmup-data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.measure:
        measure(arguments)
    else:
        main(arguments)
