"""benchmarks/instruction_phases.py's phases: each names a method the engine has (a rename
would only show as a failed valgrind run minutes in), and its groups (`orders`,
`in-position`) split a trade's cost without growing the default run."""

import importlib
import inspect
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from instruction_phases import DEFAULT, GROUPS, PHASES, chosen_phases  # noqa: E402 - not a package

# `Engine.tick` hands out its unit's awaitable from a plain method (trader/engine.py): driven
# as async, though not a coroutine function
PLAIN_AWAITABLE = {("trader.engine", "Engine.tick")}


def test_every_phase_names_a_method_the_engine_has_with_its_kind():
    for phase, methods in PHASES.items():
        for module_name, path, is_async in methods:
            owner = importlib.import_module(module_name)
            for name in path.split("."):
                owner = getattr(owner, name)
            if (module_name, path) not in PLAIN_AWAITABLE:
                assert inspect.iscoroutinefunction(owner) is is_async, (phase, path)


def test_the_groups_split_a_trade_without_growing_the_default_run():
    assert set(GROUPS) == {"orders", "in-position"}
    grouped = {phase for group in GROUPS.values() for phase in group}
    assert grouped <= set(PHASES)
    assert not grouped & set(DEFAULT)
    assert set(DEFAULT) | grouped == set(PHASES)
    assert "submit" in DEFAULT and "finalize" in GROUPS["orders"] \
        and "quiet_tick" in GROUPS["in-position"]


def test_a_group_stands_for_its_phases_in_order_each_once():
    assert chosen_phases("") == list(DEFAULT)
    assert chosen_phases("tick, orders") == ["tick", *GROUPS["orders"]]
    assert chosen_phases("finalize,orders") == ["finalize", *[
        phase for phase in GROUPS["orders"] if phase != "finalize"]]
    assert chosen_phases("nonsense") == ["nonsense"]      # main() names it unknown
