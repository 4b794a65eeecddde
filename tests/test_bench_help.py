"""The benchmark scripts' command lines as a new user meets them (h-review13): --help cut
the description after its first line, mid-sentence ("...(the live engine on the paper"),
and `replay_throughput.py --dir` naming a folder not made yet ended in a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = ["replay_throughput.py", "tick_overhead.py", "soak.py", "instructions.py",
           "memory_rss.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_the_whole_description(script: str) -> None:
    shown = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    doc = (BENCHMARKS / script).read_text().split('"""')[1]
    first_paragraph = doc.strip().split("\n\n")[0]
    assert first_paragraph in shown, shown


def test_replay_throughput_makes_the_folder_it_is_given(tmp_path) -> None:
    folder = tmp_path / "not" / "made"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "replay_throughput.py"),
                           "--sizes", "400", "--dir", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "400 backtest: candles/s (CPU)" in done.stdout
