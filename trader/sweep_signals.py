"""Stopping a sweep (or a backtest, trader/backtest_cli.py) from outside. Ctrl-C (SIGINT, which a terminal sends to the sweep and
its workers alike) or SIGTERM to the sweep raises `SweepInterrupted` in its main thread;
the runner then terminates the trials still running instead of waiting for them. Worker
processes ignore SIGINT (only the sweep decides when they stop) and exit on their own
within a second when the sweep's process is gone (e.g. killed with SIGKILL).

    with stop_on_signals():          # SIGINT/SIGTERM -> SweepInterrupted(signal)
        with runner:                 # on any exception: workers terminated, queue dropped
            sweep.run(runner, board)

A ProcessPoolExecutor's workers: started under `sigint_held`, `detach_worker` first thing in
each, and `terminate_workers` on the way out of an interrupted wait.
"""

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from types import FrameType

from tqdm import tqdm

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_CHECK_SECONDS = 1.0


class SweepInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while the sweep ran. A KeyboardInterrupt, so no
    `except Exception` on the way up can swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by a signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


# The signal that stopped the block of `stop_on_signals` (main thread only, like signals).
_received: list[int] = []


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside: SIGINT and SIGTERM raise SweepInterrupted in the main thread (the one that
    waits for results), also when a library turned it into a plain KeyboardInterrupt on its
    way up (ray.wait does). Further signals are ignored until the block ends, so the cleanup
    that follows the first one runs to its end. Main thread only (Python's rule)."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    _received.clear()
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_interrupted)
    try:
        yield
    except KeyboardInterrupt as exc:
        # ray.wait/ray.get catch any KeyboardInterrupt raised while they wait, cancel their
        # tasks and raise a plain KeyboardInterrupt of their own: our signal, said again.
        if _received and not isinstance(exc, SweepInterrupted):
            raise SweepInterrupted(_received[0]) from exc
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _received.append(signum)
    raise SweepInterrupted(signum)


@contextmanager
def sigint_held() -> Iterator[None]:
    """SIGINT blocked in this thread while worker processes start: they inherit the block,
    so a Ctrl-C cannot hit one half-imported (a traceback per worker), and drop it in
    `detach_worker`. Here a SIGINT that came meanwhile is delivered when the block ends."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def detach_worker(parent_pid: int) -> None:
    """In a worker process, first thing: SIGINT ignored for good (a pending one dropped),
    a thread-only tqdm lock, and a daemon thread that ends the process once `parent_pid` is no longer its parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # tqdm's default lock is a multiprocessing one: a worker terminated mid-job would leave
    # it to the resource tracker, which warns about "leaked semaphore objects".
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=exit_when_orphaned, args=(parent_pid,), daemon=True,
                     name="sweep-parent-check").start()


def exit_when_orphaned(parent_pid: int) -> None:
    """Runs forever; ends the process at once when the sweep that started it is gone."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers (SIGTERM) now and wait for them: shutdown() waits for
    the jobs they run and for those already queued to them, minutes on long data.
    ProcessPoolExecutor has no public way to do this before Python 3.14 (terminate_workers)."""
    workers = list((pool._processes or {}).values())   # private: see docstring
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join()
