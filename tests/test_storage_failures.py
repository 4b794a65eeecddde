"""Failed writes are loud and leave nothing behind: read-only files, a full disk and a real
EFBIG raise `SaveStateFailure` naming the write, a failed transaction keeps none of its
writes; `store.health` counts each failed state change once and reports the recovery; and
readers never see half a transaction."""

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from storage import SaveStateFailure, Store
from storage.db import AGENT_LOCK_WAIT_SECONDS, LOCK_WAIT_SECONDS
from tests.storage_support import NOW, fill_the_disk, read_only_store, run_helper

WRITES: dict[str, Callable[[Store], object]] = {
    "event": lambda s: s.append_event(NOW, "entry", "BTCUSDT", {}),
    "alert": lambda s: s.enqueue_alert(NOW, "SL_MISSING", "CRITICAL", "BTCUSDT", "k", "t"),
    "alert 1 sent": lambda s: s.mark_alert(1, "sent", NOW),
    "alert 1 attempt": lambda s: s.count_alert_attempt(1),
    "state": lambda s: s.put("sleep", True, NOW),
    "state sleep": lambda s: s.delete("sleep"),
    "equity": lambda s: s.record_equity(NOW, Decimal("1"), Decimal("1")),
}


@pytest.mark.parametrize("what", list(WRITES))
def test_every_write_to_a_read_only_database_raises_save_state_failure(
        db_path: Path, what: str) -> None:
    Store.open(db_path).close()
    store = read_only_store(db_path)
    with pytest.raises(SaveStateFailure) as caught:
        WRITES[what](store)
    assert caught.value.what.startswith(what)
    assert isinstance(caught.value.cause, sqlite3.OperationalError)
    assert "readonly" in str(caught.value.cause)
    assert store.get("sleep", "unset") == "unset"
    store.close()


def test_full_disk_raises_save_state_failure_naming_the_write(store: Store) -> None:
    failure = fill_the_disk(store)
    assert failure.what == "event filler"
    assert "full" in str(failure.cause)


def test_failed_transaction_on_a_full_disk_keeps_none_of_its_writes(store: Store) -> None:
    store.put("cooldown:BTCUSDT", "before", NOW)
    fill_the_disk(store)
    with pytest.raises(SaveStateFailure), store.transaction("finalize BTCUSDT"):
        store.put("cooldown:BTCUSDT", "after", NOW)
        store.record_equity(NOW, Decimal("9999.5"), Decimal("9999.5"))
        store.append_event(NOW, "position_closed", "BTCUSDT", {"pad": "y" * 200_000})
    assert not store.db.conn.in_transaction
    assert store.get("cooldown:BTCUSDT") == "before"
    assert store.equity_curve() == []
    assert store.events("position_closed") == []
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.put("cooldown:BTCUSDT", "after space freed", NOW)
    assert store.get("cooldown:BTCUSDT") == "after space freed"


FILE_SIZE_LIMIT_SCRIPT = """
import json, resource, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from storage import SaveStateFailure, Store
from storage.db import AGENT_LOCK_WAIT_SECONDS, LOCK_WAIT_SECONDS
path = Path(sys.argv[1])
store = Store.open(path)
now = datetime(2024, 3, 1, tzinfo=UTC)
store.put("start", 1, now)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
largest = max(p.stat().st_size for p in (path, Path(f"{path}-wal")))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 65536, hard))
committed, outcome = 0, None
for n in range(2000):
    try:
        with store.transaction("burst"):
            store.put(f"a{n}", "x" * 3000, now)
            store.put(f"b{n}", "x" * 3000, now)
    except SaveStateFailure as failure:
        outcome = {"what": failure.what, "cause": type(failure.cause).__name__}
        break
    committed += 1
print(json.dumps({"committed": committed, "failure": outcome}))
"""


def test_file_size_limit_raises_save_state_failure_and_keeps_whole_transactions(
        db_path: Path) -> None:
    """A real EFBIG from the kernel (RLIMIT_FSIZE), in a child process."""
    Store.open(db_path).close()
    result = run_helper(FILE_SIZE_LIMIT_SCRIPT, str(db_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failure"] == {"what": "burst", "cause": "OperationalError"}
    store = Store.open(db_path)
    assert store.get("start") == 1
    assert len(store.keys("a")) == len(store.keys("b")) == report["committed"]
    store.close()


# --- write health: what the engine reports about failed writes ------------------------------

def test_a_failed_write_counts_once_even_inside_a_transaction(db_path: Path) -> None:
    """One state change that fails is one failure, however many of its writes failed."""
    Store.open(db_path).close()
    store = read_only_store(db_path)
    inner_failures = []
    with pytest.raises(SaveStateFailure) as caught, store.transaction("finalize BTCUSDT"):
        try:
            store.put("cooldown:BTCUSDT", "after", NOW)
        except SaveStateFailure as failure:      # a caller that handles one write itself
            inner_failures.append(failure)
        store.append_event(NOW, "position_closed", "BTCUSDT", {})
    assert [f.what for f in inner_failures] == ["state cooldown:BTCUSDT"]
    assert caught.value.what == "event position_closed"
    assert (store.health.in_a_row, store.health.total_failures) == (1, 1)
    assert store.health.last is caught.value
    assert store.health.take_alert() is True
    assert store.health.take_alert() is False          # told once
    store.close()


def test_failed_writes_alert_on_the_first_the_third_and_each_power_of_ten(db_path: Path) -> None:
    Store.open(db_path).close()
    store = read_only_store(db_path)
    alerted = []
    for attempt in range(1, 121):
        with pytest.raises(SaveStateFailure):
            store.append_event(NOW, "entry", "BTCUSDT", {"n": attempt})
        assert store.health.failing and store.health.in_a_row == attempt
        if store.health.take_alert():
            alerted.append(attempt)
    assert alerted == [1, 3, 10, 100]
    assert store.health.take_recovery() is False       # still failing: nothing recovered
    store.close()


def test_success_after_failures_reports_one_recovery(store: Store) -> None:
    fill_the_disk(store)
    with pytest.raises(SaveStateFailure):
        store.put("cooldown:BTCUSDT", "x" * 100_000, NOW)
    assert store.health.in_a_row == 2
    store.db.execute("PRAGMA max_page_count = 1073741823")      # space freed
    with store.transaction("finalize BTCUSDT"):
        store.put("cooldown:BTCUSDT", "after", NOW)
        # A write inside a transaction is not the state change: no recovery until it commits.
        assert (store.health.in_a_row, store.health.pending_recovery) == (2, False)
        store.append_event(NOW, "position_closed", "BTCUSDT", {})
    assert not store.health.failing and store.health.total_failures == 2
    assert store.health.take_recovery() is True
    assert store.health.take_recovery() is False       # reported once
    store.put("cooldown:BTCUSDT", "later", NOW)
    assert store.health.take_recovery() is False       # no streak, nothing to report


def test_a_new_failure_cancels_an_unreported_recovery(store: Store) -> None:
    """Writes failing again before the engine reported the recovery: it reports the failure,
    never "writes work again" while they do not."""
    fill_the_disk(store)
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.put("a", 1, NOW)
    assert store.health.pending_recovery
    fill_the_disk(store)
    assert store.health.take_recovery() is False
    assert store.health.take_alert() is True and store.health.in_a_row == 1


# --- readers while the engine writes ----------------------------------------------------------

WRITES_PER_RUN = 300


def write_transactions(store: Store, between: float = 0.0) -> None:
    """Each state change writes three rows; a reader must see all of them or none. `between`:
    seconds slept after each change, so reader threads get the GIL while the writes go on."""
    for n in range(1, WRITES_PER_RUN + 1):
        with store.transaction(f"change {n}"):
            store.put("a", n, NOW)
            store.append_event(NOW, "change", "BTCUSDT", {"n": n})
            store.put("b", n, NOW)
        if between:
            time.sleep(between)


READER_SCRIPT = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)  # busy = error at once
target, reads, torn = int(sys.argv[2]), 0, []
print("ready", flush=True)
while True:
    conn.execute("BEGIN")
    a = int(conn.execute("SELECT value FROM kv WHERE key = 'a'").fetchone()[0])
    events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    b = int(conn.execute("SELECT value FROM kv WHERE key = 'b'").fetchone()[0])
    conn.execute("COMMIT")
    reads += 1
    if not a == events == b:
        torn.append([a, events, b])
    if b == target:
        break
print(json.dumps({"reads": reads, "torn": torn[:5]}))
"""


def read_consistently(path: Path, stop: threading.Event, errors: list[str], reads: list[int]) -> None:
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        while not stop.is_set():
            conn.execute("BEGIN")
            a = int(conn.execute("SELECT value FROM kv WHERE key = 'a'").fetchone()[0])
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            b = int(conn.execute("SELECT value FROM kv WHERE key = 'b'").fetchone()[0])
            conn.execute("COMMIT")
            reads.append(b)
            if not a == events == b:
                errors.append(f"torn read a={a} events={events} b={b}")
    except sqlite3.Error as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def test_reader_threads_never_see_partial_transactions_or_locks(store: Store,
                                                                 db_path: Path) -> None:
    store.put("a", 0, NOW)
    store.put("b", 0, NOW)
    stop, errors, reads = threading.Event(), [], []
    readers = [threading.Thread(target=read_consistently, args=(db_path, stop, errors, reads))
               for _ in range(2)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 10
    while not reads and time.monotonic() < deadline:     # the readers are reading
        time.sleep(0.001)
    try:
        # A fast host ran all 300 changes within one GIL switch interval: the readers saw
        # only the first and the last state (nothing overlapped, nothing tested)
        write_transactions(store, between=0.0005)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert errors == []
    assert len(reads) > WRITES_PER_RUN // 10
    assert len(set(reads)) > 2, "the readers never overlapped the writes"


def test_reader_process_never_sees_partial_transactions_or_locks(store: Store,
                                                                 db_path: Path) -> None:
    store.put("a", 0, NOW)
    store.put("b", 0, NOW)
    reader = subprocess.Popen([sys.executable, "-c", READER_SCRIPT, str(db_path),
                               str(WRITES_PER_RUN)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    write_transactions(store)
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["torn"] == []
    assert report["reads"] >= 1


# --- journal mode: a live agent's file never maps its index (tests/chaos/test_read_only_disk.py)
@pytest.mark.parametrize(("replay", "header"), [(False, b"\x01\x01"), (True, b"\x02\x02")])
async def test_the_live_agents_database_keeps_a_rollback_journal_and_a_replays_wal(
        tmp_path: Path, replay: bool, header: bytes) -> None:
    """Bytes 18-19 of an SQLite file: 1 = rollback journal, 2 = WAL
    (https://www.sqlite.org/fileformat.html, "The Database Header")."""
    from trader.config import load_settings
    from trader.engine_setup import build_engine
    settings = load_settings(_env_file=None, exchange="paper", db_path=tmp_path / "t.db")
    engine, close = await build_engine(settings, replay=replay)
    engine.store.put("probe", 1, NOW)
    await close()
    assert (tmp_path / "t.db").read_bytes()[18:20] == header


KILLED_MID_TRANSACTION = """
import os, signal, sys
from datetime import UTC, datetime
from storage import Store
store = Store.open(sys.argv[1], wal=False)
now = datetime.now(UTC)
store.put("kept", 1, now)
with store.transaction("half-done"):
    for n in range(8000):                    # more than the page cache: pages reach the file
        store.put(f"half:{n}", "x" * 1000, now)
    os.kill(os.getpid(), signal.SIGKILL)     # the journal is hot: the transaction half done
"""


def test_a_restart_after_a_kill_mid_transaction_rolls_the_hot_journal_back(db_path: Path) -> None:
    """The live agent's rollback journal: a process killed mid-transaction leaves a hot
    journal; the next open must roll it back (not refuse the file as unreadable)."""
    Store.open(db_path, wal=False).close()
    result = run_helper(KILLED_MID_TRANSACTION, str(db_path))
    assert result.returncode == -9, result.stderr
    assert Path(f"{db_path}-journal").stat().st_size > 0, "no hot journal was left"
    store = Store.open(db_path, wal=False)
    assert store.get("kept") == 1 and store.keys("half:") == []
    store.close()


def _lock_for(path: Path, seconds: float) -> threading.Thread:
    """Another process's transaction on the file (a CLI command, a `sqlite3` shell), held
    `seconds`; started and holding when this returns."""
    held = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        held.set()
        threading.Event().wait(seconds)
        other.execute("COMMIT")
        other.close()
    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    return thread


def test_the_agent_waits_briefly_for_a_lock_then_not_at_all_while_writes_fail(
        db_path: Path) -> None:
    """storage/db.py AGENT_LOCK_WAIT_SECONDS: a lock held longer than the wait fails the
    write after it, and every later statement at once until a write works again."""
    Store.open(db_path, wal=False).close()
    store = Store.open(db_path, wal=False, lock_wait=AGENT_LOCK_WAIT_SECONDS)
    locker = _lock_for(db_path, 4.0)
    started = time.monotonic()
    with pytest.raises(SaveStateFailure, match="locked"):
        store.put("sleep", True, NOW)
    assert AGENT_LOCK_WAIT_SECONDS * 0.8 <= time.monotonic() - started < 3.0
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(SaveStateFailure, match="locked"):
            store.put("sleep", True, NOW)
    assert time.monotonic() - started < 1.0          # no wait while failing (2.5 s if waiting)
    locker.join()
    store.put("sleep", True, NOW)
    assert store.health.take_recovery() is True
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 500
    store.close()


def test_a_lock_shorter_than_the_wait_fails_nothing(db_path: Path) -> None:
    """The negative: a CLI command's write (milliseconds) is waited for, as before."""
    Store.open(db_path, wal=False).close()
    store = Store.open(db_path, wal=False, lock_wait=AGENT_LOCK_WAIT_SECONDS)
    locker = _lock_for(db_path, 0.1)
    store.put("sleep", True, NOW)
    locker.join()
    assert not store.health.failing and store.health.total_failures == 0
    store.close()


def test_other_processes_still_wait_five_seconds(db_path: Path) -> None:
    store = Store.open(db_path)
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == LOCK_WAIT_SECONDS * 1000
    store.close()
