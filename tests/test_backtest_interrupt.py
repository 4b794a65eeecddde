"""Ctrl-C in `tradebot backtest` as a terminal sends it (SIGINT to the whole process group):
the backtest stops at once and says so."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.interrupt_support import session_processes, wait_for, write_long_candles

EXIT_BOUND = 20.0     # seconds from the signal to the exit
START_BOUND = 180.0   # imports and the data on a busy machine


def test_ctrl_c_stops_a_backtest_and_says_interrupted(tmp_path: Path) -> None:
    data = write_long_candles(tmp_path / "XRPUSDT-5m.csv", tiles=10)   # ~20 s or more to run
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    backtest = subprocess.Popen(
        [sys.executable, "-m", "trader", "backtest", "--data", str(data), "--run-id", "stopped"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        wait_for(lambda: (tmp_path / "out" / "stopped").exists() or backtest.poll() is not None,
                 START_BOUND, "the backtest starts")
        os.killpg(backtest.pid, signal.SIGINT)
        _, stderr = backtest.communicate(timeout=EXIT_BOUND)
    finally:
        for line in session_processes(backtest.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
    assert backtest.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
