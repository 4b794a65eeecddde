"""Stopping `tradebot sweep` from outside, as a terminal's Ctrl-C (SIGINT to the whole process
group), a process manager's SIGTERM or `kill -9` does: the running trials stop at once
instead of finishing, the finished ones are kept, and no worker process outlives the sweep."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interrupt_support import session_processes, wait_for, write_long_candles
from trader.sweep import Leaderboard
from trader.sweep_cli import _report_interruption
from trader.sweep_signals import SweepInterrupted
from trader.sweep_spec import SweepSpec, with_options
from trader.sweep_trial import TrialResult

TILES = 10            # 20,000 candles: a trial takes 15 s or more, longer than EXIT_BOUND allows
EXIT_BOUND = 20.0     # seconds from the signal to the sweep's exit
START_BOUND = 180.0   # imports, data, worker start-up on a busy machine
GRID = ("--grid", "strategy.channel=20,25,30,35,40,45")
INTERRUPTED = "interrupted after 0 of 6 trials; results so far in "


@pytest.fixture(scope="module")
def long_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_long_candles(tmp_path_factory.mktemp("long") / "XRPUSDT-5m.csv", TILES)


def start_sweep(cwd: Path, data: Path) -> subprocess.Popen[str]:
    """`python -m trader sweep` in a session of its own (its id is the sweep's pid), with
    its temporary files (the trials' scratch folders) under cwd/tmp."""
    (cwd / "tmp").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
           "TMPDIR": str(cwd / "tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.Popen(
        [sys.executable, "-m", "trader", "sweep", "--data", str(data), *GRID, "--workers", "2",
         "--no-progress", "--run-id", "stopped"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def trials_running(cwd: Path) -> bool:
    return any((cwd / "tmp").rglob("tradebot-trial-*"))


def stop_and_wait(sweep: subprocess.Popen[str], send: Callable[[], None]) -> tuple[float, str, str]:
    """Send the signal; (seconds until the sweep exited, stdout, stderr)."""
    sent = time.monotonic()
    send()
    try:
        stdout, stderr = sweep.communicate(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.communicate()
        pytest.fail(f"the sweep was still running {EXIT_BOUND:.0f} s after the signal")
    return time.monotonic() - sent, stdout, stderr


@pytest.fixture
def sweep(tmp_path: Path, long_data: Path):
    """A sweep whose first trials are running; killed with its whole session afterwards,
    whatever the test did."""
    process = start_sweep(tmp_path, long_data)
    try:
        wait_for(lambda: trials_running(tmp_path) or process.poll() is not None, START_BOUND,
                 "the first trials start")
        assert process.poll() is None, process.communicate()
        yield process
    finally:
        for line in session_processes(process.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        if process.poll() is None:
            process.communicate()


def test_ctrl_c_stops_the_running_trials_and_every_worker(sweep, tmp_path: Path) -> None:
    _, _, stderr = stop_and_wait(sweep, lambda: os.killpg(sweep.pid, signal.SIGINT))
    assert sweep.returncode == 130, stderr
    results = tmp_path / "out" / "stopped" / "results.csv"
    assert stderr.strip().splitlines()[-1] == f"{INTERRUPTED}{results.relative_to(tmp_path)}"
    assert "Traceback" not in stderr, "workers ignore SIGINT: no traceback from them"
    assert results.read_text(encoding="utf-8").startswith("rank,trial,status,strategy.channel")
    wait_for(lambda: not session_processes(sweep.pid), 10, "every worker ends")
    assert not any((tmp_path / "tmp").iterdir()), "the trials' scratch folders are removed"


def test_sigterm_to_the_sweep_alone_stops_its_workers_too(sweep, tmp_path: Path) -> None:
    _, _, stderr = stop_and_wait(sweep, lambda: os.kill(sweep.pid, signal.SIGTERM))
    assert sweep.returncode == 143, stderr
    assert INTERRUPTED in stderr
    wait_for(lambda: not session_processes(sweep.pid), 10, "every worker ends")


def test_workers_end_on_their_own_when_the_sweep_is_killed(sweep) -> None:
    stop_and_wait(sweep, lambda: os.kill(sweep.pid, signal.SIGKILL))
    assert sweep.returncode == -signal.SIGKILL
    wait_for(lambda: not session_processes(sweep.pid), 10, "the orphaned workers exit")


def test_an_interrupted_sweep_keeps_the_finished_trials(tmp_path: Path, capsys) -> None:
    spec = with_options(SweepSpec(), grid=["strategy.channel=20,30,40"], search=[])
    board = Leaderboard(spec.objective, spec.higher_is_better, spec.top)
    board.add(TrialResult(2, {"strategy.channel": 30}, None, error="RuntimeError: x"))
    exit_code = _report_interruption(board, spec, tmp_path, SweepInterrupted(signal.SIGTERM))
    assert exit_code == 143
    assert capsys.readouterr().err == (f"interrupted after 1 of 3 trials; results so far in "
                                       f"{tmp_path / 'results.csv'}\n")
    rows = (tmp_path / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and rows[1].startswith(",2,failed,30,")   # failed: no rank
