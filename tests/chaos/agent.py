"""`tradebot run` as a subprocess for the chaos test and the soak benchmark: its environment
against the fake servers, start, wait for boot (by condition, with a bound), and a database
that stops taking writes under it."""

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.binance_server import FakeBinance

REPO = Path(__file__).resolve().parents[2]
BOOTED = "boot reconciliation done"       # the agent's log line once every position is protected


def agent_env(fake: FakeBinance, db_path: Path, symbol: str,
              **overrides: str) -> dict[str, str]:
    """The environment of `tradebot run` trading `symbol` on the fake Binance with the chaos
    strategy (it trades every few candles); `overrides` are further variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRADEBOT_", "TELEGRAM_", "BINANCE_", "HEARTBEAT"))}
    env.update({
        "TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": fake.api_key,
        "BINANCE_API_SECRET": fake.api_secret, "BINANCE_FUTURES_URL": fake.url,
        "BINANCE_FUTURES_WS_URL": fake.ws_url, "TRADEBOT_SYMBOLS": symbol,
        "TRADEBOT_DB": str(db_path), "TRADEBOT_TICK_SECONDS": "1.0",
        "TRADEBOT_STRATEGY": "tests.chaos.strategy:EveryCandle",
        "TRADEBOT_COOLDOWN_MINUTES": "0", "TRADEBOT_SENTINEL_DEBOUNCE_SECONDS": "1",
        "TRADEBOT_SENTINEL_DEBOUNCE_CYCLES": "2", "TRADEBOT_RECONCILE_SECONDS": "3",
        "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **overrides,
    })
    return env


async def start_agent(env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    """`python -m trader run` from the repository, stdout and stderr appended to `log_path`."""
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trader", "run", cwd=REPO, env=env,
        stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL)
    log.close()
    return process


async def exit_after_sigterm(process: asyncio.subprocess.Process,
                             bound: float = 45.0) -> tuple[int, float]:
    """SIGTERM `process`: its exit code and the seconds it took (TimeoutError past `bound`)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), bound)
    return code, time.monotonic() - started


def log_since(log_path: Path, offset: int) -> str:
    return log_path.read_bytes()[offset:].decode(errors="replace")


async def wait_for_boot(log_path: Path, offset: int, process: asyncio.subprocess.Process,
                        bound: float) -> float:
    """Seconds until the agent logged its boot reconciliation (after `offset` in its log).
    AssertionError with the log's tail if it exited or `bound` seconds passed first."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if BOOTED in log_since(log_path, offset):
            return time.monotonic() - started
        if process.returncode is not None:
            raise AssertionError(f"agent exited with {process.returncode}:\n"
                                 f"{log_since(log_path, offset)[-3000:]}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"agent did not finish boot reconciliation within {bound:.0f} s:\n"
                         f"{log_since(log_path, offset)[-3000:]}")


class ReadOnlyDatabase:
    """The agent's database stops taking writes under the running agent, then takes them again.

        read_only = ReadOnlyDatabase(db_path)
        how = read_only.start()     # "chattr", "write-lock", or "" if neither could be done
        ...
        read_only.stop()

    "chattr": `chattr +i` on the database and its -wal (stops root too; chmod would not stop
    an already open file): every write fails with EPERM, as on a disk gone read-only. The
    -shm file stays writable unless `include_shm`: SQLite keeps it memory-mapped, and a mapped
    page of an immutable (or read-only remounted) file faults with SIGBUS, which kills the
    process (see test_read_only_disk.py). "write-lock", where chattr is unavailable: a write
    transaction held open from another connection, so each of the agent's writes fails with
    "database is locked" after its busy timeout.
    """

    def __init__(self, db_path: Path, include_shm: bool = False) -> None:
        self.db_path, self.include_shm = db_path, include_shm
        self.how = ""
        self._lock: sqlite3.Connection | None = None

    def _files(self, include_shm: bool) -> list[Path]:
        names = [self.db_path, Path(f"{self.db_path}-wal")]
        names += [Path(f"{self.db_path}-shm")] if include_shm else []
        return [path for path in names if path.exists()]

    def start(self) -> str:
        if shutil.which("chattr") is not None and self._chattr("+i", self.include_shm):
            self.how = "chattr"
        else:
            self.how = self._hold_write_lock()
        return self.how

    def stop(self) -> None:
        if self.how == "chattr":
            self._chattr("-i", include_shm=True)
        elif self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            self._lock = None
        self.how = ""

    def _chattr(self, flag: str, include_shm: bool) -> bool:
        files = self._files(include_shm)
        if not files:
            return False
        result = subprocess.run(["chattr", flag, *map(str, files)], capture_output=True,
                                check=False)
        return result.returncode == 0

    def _hold_write_lock(self) -> str:
        if not self.db_path.exists():            # connecting would create it
            return ""
        lock = sqlite3.connect(self.db_path, timeout=1.0, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:      # the agent is writing right now: no fault
            lock.close()
            return ""
        self._lock = lock
        return "write-lock"
