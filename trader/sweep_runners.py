"""Where sweep trials run: local worker processes (default, one per core), or Ray tasks on
the cluster that RAY_ADDRESS names (`pip install 'tradebot[ray]'`; the cluster's nodes need
tradebot installed too, and a --data file at the same absolute path: it is shipped as its
path, resolved on this machine, not as its rows).

Both give the same `TrialRunner` interface: `run(plans)` yields each trial's result as it
finishes, in finishing order. A trial that raises becomes a failed `TrialResult` (logged
with its parameters); it never ends the sweep. The candles are sent once per worker
process (local) or stored once in Ray's object store, not once per trial.

Leaving a runner's `with` block on an exception (e.g. SweepInterrupted on Ctrl-C, see
trader/sweep_signals.py) stops the trials still running: local workers are terminated, Ray
tasks cancelled. Local workers ignore SIGINT and exit when the sweep's process is gone.
"""

import dataclasses
import multiprocessing
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from loguru import logger

from trader.backtest_input import CandleSource
from trader.logs import setup_logging
from trader.sweep_signals import detach_worker, sigint_held, terminate_workers
from trader.sweep_spec import SweepError
from trader.sweep_trial import (
    BacktestData,
    TrialPlan,
    TrialResult,
    describe,
    failed_trial,
    run_trial,
)

RAY_ADDRESS = "RAY_ADDRESS"
REACH_SECONDS = 5.0   # a head that is up answers a TCP connect in milliseconds


class TrialRunner(Protocol):
    slots: int            # trials that run at the same time
    where: str            # for the summary line, e.g. "2 local processes"

    def run(self, plans: Sequence[TrialPlan]) -> Iterator[TrialResult]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "TrialRunner": ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


def make_runner(data: BacktestData, *, workers: int | None, log_level: str,
                environ: Mapping[str, str] = os.environ,
                trials: int | None = None) -> TrialRunner:
    """Ray tasks when RAY_ADDRESS is set, local processes otherwise. `workers` caps the
    trials run at once (default: the machine's cores, or the Ray cluster's CPUs); so does
    `trials`, the sweep's count, for local processes: each one started loads the candles,
    and one with no trial to run is only a cost (and a wrong "ran on 2 local processes")."""
    address = environ.get(RAY_ADDRESS, "").strip()
    if address:
        return RayRunner(data, address=address, workers=workers, log_level=log_level)
    processes = workers or os.cpu_count() or 1
    if trials is not None:
        processes = max(1, min(processes, trials))
    return LocalRunner(data, workers=processes, log_level=log_level)


class LocalRunner:
    def __init__(self, data: BacktestData, *, workers: int, log_level: str) -> None:
        self.slots = workers
        self.where = f"{workers} local process{'es' if workers > 1 else ''}"
        # The trials' databases: removed as a whole on close, also after terminated trials.
        self._scratch = tempfile.TemporaryDirectory(prefix="tradebot-sweep-")
        # spawn: a clean interpreter per worker (no inherited threads or open databases)
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(data, log_level, os.getpid(), Path(self._scratch.name)))

    def run(self, plans: Sequence[TrialPlan]) -> Iterator[TrialResult]:
        with sigint_held():   # the pool starts its workers in submit()
            futures = {self._pool.submit(_run_in_worker, plan): plan for plan in plans}
        for future in as_completed(futures):
            yield _local_outcome(futures[future], future)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        self._scratch.cleanup()

    def stop_running_trials(self) -> None:
        """Terminate the workers now instead of waiting for their trials."""
        terminate_workers(self._pool)

    def __enter__(self) -> "LocalRunner":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is not None:
            self.stop_running_trials()
        self.close()


# This worker process's candles and scratch folder, sent once by the pool's initializer.
_worker_data: BacktestData | None = None
_worker_scratch: Path | None = None


def _start_worker(data: BacktestData, log_level: str, parent_pid: int, scratch: Path) -> None:
    global _worker_data, _worker_scratch
    detach_worker(parent_pid)
    _worker_data, _worker_scratch = data, scratch
    setup_logging(level=log_level)


def _run_in_worker(plan: TrialPlan) -> TrialResult:
    assert _worker_data is not None, "the pool initializer sets the data"
    return run_trial(plan, _worker_data, _worker_scratch)


def _local_outcome(plan: TrialPlan, future: "Future[TrialResult]") -> TrialResult:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - one trial's failure must not end the sweep
        return _trial_failed(plan, exc, "")


def _trial_failed(plan: TrialPlan, exc: BaseException, where: str) -> TrialResult:
    """One ERROR line per failed trial (the table lists it too); the traceback, which a
    process pool wraps in a remote one of ~100 lines, only at LOG_LEVEL=DEBUG."""
    logger.opt(exception=exc).debug("sweep trial failed{} trial={}", where, plan.number)
    logger.error("sweep trial failed{} trial={} params={} error={}: {}", where, plan.number,
                 describe(plan.params), type(exc).__name__, exc)
    return failed_trial(plan, exc)


def import_ray() -> Any:
    """The ray module, or SweepError saying how to install it or run without it."""
    try:
        import ray
    except ImportError:
        raise SweepError(f"{RAY_ADDRESS} is set, so trials would run on Ray, but ray is not "
                         f"installed: pip install 'tradebot[ray]' (or unset {RAY_ADDRESS} to "
                         "run in local processes)") from None
    return ray


def check_reachable(address: str, seconds: float = REACH_SECONDS, *,
                    target: str | None = None) -> None:
    """SweepError within `seconds` unless something accepts a TCP connection at a
    host:port (or ray://host:port) `address`, or at `target`, what "auto" stands for:
    ray.init has no bound of its own and, with nothing there, warns every 5 s for minutes
    (and takes ~40 s to take a Ctrl-C). Other forms are left to Ray."""
    host, sep, port = (target or address).removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    host = host.strip("[]") or "127.0.0.1"
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as exc:
        timed_out = isinstance(exc, TimeoutError)
        why = f"no answer within {seconds:g} s" if timed_out else exc.strerror or str(exc)
        named = f"{address} ({target}, the cluster last started on this machine)" if target \
            else address
        raise SweepError(f"{RAY_ADDRESS}={named}: no Ray cluster answers there ({why}); "
                         f"start one with `ray start --head` or unset {RAY_ADDRESS}") from None


def this_machines_cluster(address: str) -> str | None:
    """The host:port RAY_ADDRESS=auto stands for, as ray.init finds it (a running head, else
    /tmp/ray/ray_current_cluster, which a head that died leaves behind); None for any other
    address, or when this Ray has no such lookup (a private function of Ray's)."""
    if address != "auto":
        return None
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return None
    try:
        return canonicalize_bootstrap_address(address)
    except ConnectionError:
        raise SweepError(f"{RAY_ADDRESS}=auto: no Ray cluster runs on this machine; start one "
                         f"with `ray start --head` or unset {RAY_ADDRESS}") from None


class RayRunner:
    def __init__(self, data: BacktestData, *, address: str, workers: int | None,
                 log_level: str) -> None:
        self._ray = import_ray()
        # ray.init retries a dead address for minutes, unbounded
        check_reachable(address, target=this_machines_cluster(address))
        try:
            self._ray.init(address=address, logging_level=log_level)
        except ConnectionError as exc:
            raise SweepError(f"{RAY_ADDRESS}={address}: no Ray cluster answers there ({exc}); "
                             f"start one with `ray start --head` or unset {RAY_ADDRESS}") from None
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self.slots = workers or cpus
        self.where = f"Ray at {address} ({cpus} CPUs)"
        self._log_level = log_level
        self._data = self._ray.put(anchored(data))
        self._task = self._ray.remote(num_cpus=1)(_run_ray_trial)
        self._pending: dict[Any, TrialPlan] = {}   # task reference -> its trial

    def run(self, plans: Sequence[TrialPlan]) -> Iterator[TrialResult]:
        pending = self._pending
        pending.update({self._task.remote(plan, self._data, self._log_level): plan
                        for plan in plans})
        while pending:
            done, _ = self._ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield self._ray_outcome(pending.pop(ref), ref)

    def stop_running_trials(self) -> None:
        """Cancel every task not finished: queued ones never start, running ones are
        killed (force: a trial is CPU-bound Python that a polite cancel cannot reach)."""
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending.clear()

    def _ray_outcome(self, plan: TrialPlan, ref: Any) -> TrialResult:
        try:
            return self._ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - one trial's failure must not end the sweep
            cause = getattr(exc, "cause", None) or exc   # RayTaskError wraps the task's error
            return _trial_failed(plan, cause, " on ray")

    def close(self) -> None:
        self._ray.shutdown()

    def __enter__(self) -> "RayRunner":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is not None:
            self.stop_running_trials()
        self.close()


def anchored(data: BacktestData) -> BacktestData:
    """`data` with its candle files by absolute path. A --data file is shipped as its path,
    not its rows (trader/market/replay.py CandleFile, candle_series.py CandleSeries: a long
    file streams, its rows would fill Ray's object store and every worker's memory); Ray
    workers run in a folder of their own, where a relative path names nothing."""
    candles = {symbol: rows.anchored() if isinstance(rows, CandleSource) else rows
               for symbol, rows in data.candles.items()}
    return dataclasses.replace(data, candles=candles)


def _run_ray_trial(plan: TrialPlan, data: BacktestData, log_level: str) -> TrialResult:
    """A Ray task: Ray resolves `data` from its object store before calling."""
    setup_logging(level=log_level)
    return run_trial(plan, data)
