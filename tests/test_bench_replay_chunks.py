"""benchmarks/replay_chunks.py on a tiny run: a line per chunk (CPU, candles/s, trades) and
the two chunks it was asked to compare, profiled side by side."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CHUNK_LINE = re.compile(r"^  up to\s+[\d,]+\s+[\d.]+ s\s+[\d,]+ c/s\s+\d+ trades", re.MULTILINE)


def test_a_tiny_run_prints_one_line_per_chunk_and_compares_the_two_asked_for(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "replay_chunks.py"),
                           "--candles", "800", "--chunk", "200", "--compare", "1,4",
                           "--limit", "3"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(CHUNK_LINE.findall(done.stdout)) == 4, done.stdout
    assert done.stdout.count("(profiled)") == 3      # chunks 1 and 4, and the comparison's title
    assert "--- chunk 1 -> chunk 4 (profiled)" in done.stdout
    assert "last / first chunk not profiled" in done.stdout

