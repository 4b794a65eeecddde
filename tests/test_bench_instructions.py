"""benchmarks/instructions.py on a tiny run under valgrind: it counts only the measured part
and prints instructions per candle (default strategy, never signals), per trade and per
live tick. (The timeout only stops a run that hangs: valgrind slows the run ~50x, and at
load 10-16 the tiny run took more than the 120 s it had.)"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from instructions import same_length_path  # noqa: E402 - the benchmarks folder is not a package

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("vgdb") is None,
    reason="valgrind (callgrind and vgdb) is not installed")

FIGURE = re.compile(r"^(?P<name>.+?)\s+(?P<value>[\d,]+\.\d{3}) instr$", re.MULTILINE)


@needs_valgrind
def test_a_tiny_run_prints_instructions_per_candle_per_trade_and_per_live_tick(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "instructions.py"),
                           "--candles", "180", "--ticks", "10"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {match["name"]: float(match["value"].replace(",", ""))
               for match in FIGURE.finditer(done.stdout)}
    assert set(figures) == {"backtest, default strategy, per candle",
                            "backtest, never signals, per candle",
                            "1-symbol live tick, per tick",
                            "per trade ((a - b) x N / trades)"}, done.stdout
    # An idle candle costs hundreds of thousands of instructions, not the interpreter's
    # start-up (hundreds of millions): only the measured part was counted.
    assert 50_000 < figures["backtest, never signals, per candle"] < 5_000_000
    assert figures["backtest, never signals, per candle"] < figures[
        "backtest, default strategy, per candle"]
    assert 50_000 < figures["1-symbol live tick, per tick"] < 20_000_000


def test_the_other_tree_goes_to_a_free_path_as_long_as_this_one():
    shortest = len(tempfile.gettempdir()) + 4      # a folder name of 3 characters in it
    for length in (shortest, shortest + 20, shortest + 60):
        path = same_length_path(length)
        assert len(str(path)) == length and not path.exists()
