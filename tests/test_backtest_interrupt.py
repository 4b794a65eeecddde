"""Ctrl-C in `tradebot backtest` as a terminal sends it (SIGINT to the whole process group):
the backtest stops at once and says so."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert list((tmp_path / "out").iterdir()) == []    # no half-made run left behind


def test_stop_signals_are_taken_from_before_the_run_folder_exists(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """The test above sends its SIGINT once the run's folder exists. The handler came a few
    statements later, so a SIGINT the process had inherited as ignored (a background job;
    pytest-xdist's workers) was lost in between and the backtest ran to its end: exit 0."""
    import trader.backtest_cli as backtest_cli
    from trader.cli import main
    from trader.sweep_signals import STOP_SIGNALS, _raise_interrupted

    handlers: list[object] = []
    real_new_run_dir = backtest_cli.new_run_dir

    def new_run_dir(out, run_id):  # type: ignore[no-untyped-def]
        handlers.extend(signal.getsignal(sig) for sig in STOP_SIGNALS)
        return real_new_run_dir(out, run_id)
    monkeypatch.setattr(backtest_cli, "new_run_dir", new_run_dir)
    monkeypatch.setenv("TRADEBOT_SYMBOLS", "XRPUSDT")
    assert main(["backtest", "--out", str(tmp_path), "--run-id", "x", "--no-progress"]) == 0
    assert handlers == [_raise_interrupted] * len(STOP_SIGNALS)


# Two symbols of different periods run as two groups, one after the other on one account
# (the bundled data swapped for long files).
TWO_GROUPS = '''
import sys
from pathlib import Path

import pytest
import trader.market.replay as replay
files = [Path(name) for name in sys.argv[1:3]]
replay.load_bundled = lambda: {rows[0].symbol: rows for rows in map(replay.load_candles, files)}
from trader.cli import main
sys.exit(main(["backtest", "--run-id", "stopped", "--no-progress"]))
'''


GROUP_TILES = 30   # 60,000 candles a group: far longer than EXIT_BOUND, also on a fast machine


def start_two_groups(folder: Path) -> subprocess.Popen[str]:
    first = write_long_candles(folder / "XRPUSDT-5m.csv", tiles=GROUP_TILES)
    later = write_long_candles(folder / "ADAUSDT-5m.csv", tiles=GROUP_TILES,
                               first_tile=GROUP_TILES + 1)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, "-c", TWO_GROUPS, str(first), str(later)],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def groups_running(folder: Path) -> bool:
    # a run writes into its staging folder until it is kept (trader/backtest_folders.py);
    # XRPUSDT's period comes first
    return (folder / "out" / ".stopped.partial" / "databases" / "XRPUSDT" / "backtest.db").exists()


@pytest.mark.parametrize(("signal_to", "signum", "exit_code"), [
    ("group", signal.SIGINT, 130), ("main", signal.SIGINT, 130), ("main", signal.SIGTERM, 143)])
def test_a_stop_ends_a_run_of_periods_apart(tmp_path: Path, signal_to: str, signum: int,
                                             exit_code: int) -> None:
    """Ctrl-C (SIGINT to the whole group), or SIGINT / SIGTERM to the backtest alone: exit
    within seconds, "interrupted", no traceback, no process left behind."""
    backtest = start_two_groups(tmp_path)
    try:
        wait_for(lambda: groups_running(tmp_path) or backtest.poll() is not None, START_BOUND,
                 "the first group starts")
        assert backtest.poll() is None, backtest.communicate()
        (os.killpg if signal_to == "group" else os.kill)(backtest.pid, signum)
        try:
            _, stderr = backtest.communicate(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the backtest was still running {EXIT_BOUND:.0f} s after the signal")
        assert backtest.returncode == exit_code, stderr
        assert stderr.strip().splitlines()[-1] == "interrupted", stderr
        assert "Traceback" not in stderr, stderr
        wait_for(lambda: not session_processes(backtest.pid), 10, "every process ends")
    finally:
        for line in session_processes(backtest.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        if backtest.poll() is None:
            backtest.communicate()
