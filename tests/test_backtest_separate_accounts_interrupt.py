"""Ctrl-C in `tradebot backtest --separate-accounts` while its worker processes run the
accounts (the process pool's stop, as a sweep's: trader/sweep_signals.py): the backtest
exits within seconds, says "interrupted", leaves no worker and no half-made run behind."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interrupt_support import session_processes, wait_for, write_long_candles

EXIT_BOUND = 20.0     # seconds from the signal to the exit
START_BOUND = 180.0   # imports, the data and two spawned workers on a busy machine
TILES = 30            # 60,000 candles an account: far longer than EXIT_BOUND


def start_two_accounts(folder: Path) -> subprocess.Popen[str]:
    files = [write_long_candles(folder / f"{symbol}-5m.csv", tiles=TILES)
             for symbol in ("XRPUSDT", "ADAUSDT")]          # the same period
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "trader", "backtest", "--data", *map(str, files),
         "--separate-accounts", "--run-id", "stopped"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def both_accounts_running(folder: Path) -> bool:
    # each worker writes its account's journal into the run's staging folder
    databases = folder / "out" / ".stopped.partial" / "databases"
    return all((databases / symbol / "backtest.db").exists() for symbol in ("ADAUSDT", "XRPUSDT"))


@pytest.mark.parametrize(("signal_to", "signum", "exit_code"), [
    ("group", signal.SIGINT, 130), ("main", signal.SIGTERM, 143)])
def test_a_stop_ends_the_accounts_and_their_workers(tmp_path: Path, signal_to: str,
                                                    signum: int, exit_code: int) -> None:
    """Ctrl-C (SIGINT to the whole group: the workers ignore it, the parent ends them) or
    SIGTERM to the backtest alone."""
    backtest = start_two_accounts(tmp_path)
    try:
        wait_for(lambda: both_accounts_running(tmp_path) or backtest.poll() is not None,
                 START_BOUND, "both accounts start")
        assert backtest.poll() is None, backtest.communicate()
        assert len(session_processes(backtest.pid)) >= 3    # the backtest and two workers
        (os.killpg if signal_to == "group" else os.kill)(backtest.pid, signum)
        try:
            _, stderr = backtest.communicate(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the backtest was still running {EXIT_BOUND:.0f} s after the signal")
        assert backtest.returncode == exit_code, stderr
        assert stderr.strip().splitlines()[-1] == "interrupted", stderr
        assert "Traceback" not in stderr, stderr
        wait_for(lambda: not session_processes(backtest.pid), 10, "every worker ends")
        assert list((tmp_path / "out").iterdir()) == []     # no half-made run left behind
    finally:
        for line in session_processes(backtest.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        if backtest.poll() is None:
            backtest.communicate()


def worker_pids(backtest: int) -> list[int]:
    """The backtest's pool workers (spawned interpreters), not its resource tracker."""
    found = []
    for line in session_processes(backtest):
        pid = int(line.split()[0])
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:   # ended while we looked
            continue
        if b"spawn_main" in command:
            found.append(pid)
    return found


def test_a_worker_killed_ends_the_run_with_one_line(tmp_path: Path) -> None:
    """A worker that dies (the OOM killer's SIGKILL) ends the run: exit 2, one line saying
    so, the other worker terminated, no half-made run."""
    backtest = start_two_accounts(tmp_path)
    try:
        wait_for(lambda: both_accounts_running(tmp_path) or backtest.poll() is not None,
                 START_BOUND, "both accounts start")
        workers = worker_pids(backtest.pid)
        assert len(workers) == 2, session_processes(backtest.pid)
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = backtest.communicate(timeout=EXIT_BOUND)
        assert backtest.returncode == 2, stderr
        assert stderr.strip().splitlines()[-1].startswith(
            "backtest error: a worker process running an account ended without its result"), stderr
        assert "Traceback" not in stderr, stderr
        wait_for(lambda: not session_processes(backtest.pid), 10, "the other worker ends")
        assert list((tmp_path / "out").iterdir()) == []
    finally:
        for line in session_processes(backtest.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        if backtest.poll() is None:
            backtest.communicate()
