"""A sweep signalled after its last trial, while it writes the table, the results file and
the equity pictures (seconds of matplotlib): the default handlers were back by then, so
SIGTERM killed it with no word and some pictures missing (found by a reviewer). Now it says
so, the results file is whole, and the exit code is the signal's (143)."""

import csv
import os
import subprocess
import sys

SWEEP = """
import os, signal, time
import trader.sweep_report as report

def signalled_midway(board, top, out):
    os.kill(os.getpid(), signal.SIGTERM)    # the operator's kill, while pictures are drawn
    time.sleep(5)
    raise AssertionError("the signal was not taken")

report.write_pictures = signalled_midway
from trader.cli import main
raise SystemExit(main(["sweep", "--symbols", "XRPUSDT", "--grid", "strategy.channel=20,30",
                       "--workers", "1", "--out", {out!r}, "--run-id", "late",
                       "--no-progress"]))
"""


def test_a_signal_while_the_results_are_written_is_said_and_keeps_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEBOT_", "RAY_"))}
    done = subprocess.run([sys.executable, "-c", SWEEP.format(out=str(tmp_path / "out"))],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
                          check=False)
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
    assert "interrupted while writing the results of all 2 trials" in done.stderr, done.stderr
    with (tmp_path / "out" / "late" / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2
