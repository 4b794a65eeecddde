"""Storage: exact round-trips, the append-only journal, the outbox, migrations, refusing unsafe
files untouched, loud `SaveStateFailure` on read-only or full disks, and WAL readers."""

import hashlib
import json
import random
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlite_utils import Database

from storage import SaveStateFailure, StorageError, Store, open_database
from storage.db import LATEST_VERSION, MIGRATIONS
from trader.domain import (
    CloseReason,
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionState,
    Side,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HERE = Path(__file__).resolve().parent


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tradebot.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_only_store(path: Path) -> Store:
    """The tests run as root, so chmod cannot stop writes: open the file read-only instead."""
    return Store(Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True)))


def make_intent(client_id: str = "tb-BTCUSDT-s9x0a0-sl1", minutes: int = 0,
                status: IntentStatus = IntentStatus.PENDING) -> Intent:
    return Intent(client_id=client_id, symbol="BTCUSDT", role=OrderRole.STOP_LOSS,
                  side=Side.SELL, type=OrderType.STOP_MARKET, quantity=Decimal("0.010"),
                  position_key="s9x0a0", created_at=NOW + timedelta(minutes=minutes),
                  status=status, stop_price=Decimal("61234.10"), reduce_only=True,
                  sent_at=NOW + timedelta(seconds=1), detail="attach after entry")


def make_position(key: str = "s9x0a0", **changes: object) -> Position:
    fields: dict[str, object] = {
        "symbol": "BTCUSDT", "key": key, "side": Side.SELL, "state": PositionState.PROTECTED,
        "quantity": Decimal("0.010"), "entry_price": Decimal("62000.00"), "leverage": 5,
        "opened_at": NOW, "sl_price": Decimal("62500.5"), "tp_price": Decimal("1E+3"),
        "sl_client_id": "tb-BTCUSDT-s9x0a0-sl2", "initial_quantity": Decimal("0.0200"),
        "partial_taken": True, "breakeven_attempts": 2, "best_price": Decimal("61999.99"),
        "time_limit": timedelta(minutes=37, seconds=30), "cooldown": timedelta(seconds=90),
        "trail_activation": Decimal("0.0060"), "seq": {"en": 1, "sl": 2, "tp": 1},
        "realized_pnl": Decimal("-0.00000001"), "fees": Decimal("0.12345678"),
    }
    fields.update(changes)
    return Position(**fields)  # type: ignore[arg-type]


def closed(position: Position, at: datetime) -> Position:
    return replace(position, state=PositionState.CLOSED, closed_at=at,
                   close_reason=CloseReason.TAKE_PROFIT, exit_price=Decimal("61000.0"))


# --- exact round-trips -----------------------------------------------------------------

def test_intent_round_trips_exactly(store: Store) -> None:
    intent = make_intent()
    store.save_intent(intent, NOW)
    assert repr(store.intent(intent.client_id)) == repr(intent)
    assert store.intent("tb-BTCUSDT-s9x0a0-tp1") is None


def test_intent_status_update_replaces_the_row(store: Store) -> None:
    intent = make_intent()
    store.save_intent(intent, NOW)
    store.save_intent(intent.with_status(IntentStatus.ACKED, "order 991"), NOW)
    assert store.intent(intent.client_id) == intent.with_status(IntentStatus.ACKED, "order 991")
    assert store.db["intents"].count == 1


def test_unresolved_intents_oldest_first_and_purge_keeps_them(store: Store) -> None:
    for minutes, status in [(2, IntentStatus.SENT), (0, IntentStatus.PENDING),
                            (1, IntentStatus.FILLED), (3, IntentStatus.ACKED),
                            (4, IntentStatus.FAILED)]:
        store.save_intent(make_intent(f"tb-BTCUSDT-s9x0a0-sl{minutes + 1}", minutes, status))
    assert [i.status for i in store.unresolved_intents()] == [
        IntentStatus.PENDING, IntentStatus.SENT, IntentStatus.ACKED]
    assert store.purge_resolved_intents(before=NOW + timedelta(minutes=2)) == 1
    assert len(store.intents_for("BTCUSDT", "s9x0a0")) == 4


def test_order_round_trips_exactly(store: Store) -> None:
    order = Order("BTCUSDT", "tb-BTCUSDT-s9x0a0-tp1", Side.SELL, OrderType.TAKE_PROFIT_MARKET,
                  OrderStatus.PARTIALLY_FILLED, Decimal("0.010"), filled_qty=Decimal("0.004"),
                  avg_price=Decimal("63000.10"), stop_price=Decimal("63000.1"),
                  reduce_only=True, exchange_id="8389765", updated_at=NOW)
    store.save_order(order)
    assert repr(store.order(order.client_id)) == repr(order)


def test_fill_round_trips_exactly_and_is_recorded_once(store: Store) -> None:
    fill = Fill("77001", "BTCUSDT", "tb-BTCUSDT-s9x0a0-en1", Side.SELL, Decimal("0.010"),
                Decimal("62000.00"), Decimal("0.24800000"), Decimal("-1.5E-7"), NOW, maker=True)
    assert store.record_fill(fill) is True
    assert store.record_fill(fill) is False
    assert [repr(f) for f in store.fills("BTCUSDT")] == [repr(fill)]
    assert store.fills("ETHUSDT") == [] and store.fills(since=NOW + timedelta(seconds=1)) == []
    assert store.fill_ids("BTCUSDT") == {"77001"}


def test_position_round_trips_with_decimals_enums_timedeltas_and_seq(store: Store) -> None:
    position = make_position()
    store.save_position(position)
    assert repr(store.position("BTCUSDT", position.key)) == repr(position)
    assert [repr(p) for p in store.open_positions()] == [repr(position)]


def test_closed_position_leaves_the_open_list(store: Store) -> None:
    position = make_position()
    store.save_position(position)
    done = closed(position, NOW + timedelta(minutes=20))
    store.save_position(done)
    assert store.open_positions() == []
    assert [repr(p) for p in store.closed_positions(since=NOW)] == [repr(done)]
    assert store.closed_positions(since=NOW + timedelta(hours=1)) == []


# --- journal, outbox, state, equity ---------------------------------------------------------

def test_events_journal_keeps_order_and_filters_by_kind(store: Store) -> None:
    for index, kind in enumerate(["entry", "fill", "entry"]):
        store.append_event(NOW + timedelta(seconds=index), kind, "BTCUSDT", {"n": index})
    assert [e["body"]["n"] for e in store.events()] == [0, 1, 2]
    assert [e["body"]["n"] for e in store.events("entry")] == [0, 2]
    assert [e["body"]["n"] for e in store.events(limit=2)] == [1, 2]


@pytest.mark.parametrize("statement", ["UPDATE events SET kind = 'edited'", "DELETE FROM events"])
def test_events_journal_is_append_only_in_the_database(store: Store, statement: str) -> None:
    store.append_event(NOW, "entry", "BTCUSDT", {"qty": "0.01"})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute(statement)
    assert [e["kind"] for e in store.events()] == ["entry"]


def test_alerts_outbox_delivers_in_order_and_counts_attempts(store: Store) -> None:
    ids = [store.enqueue_alert(NOW + timedelta(seconds=n), f"A{n}", "WARN", "BTCUSDT",
                               f"A{n}:BTCUSDT", f"text {n}") for n in range(3)]
    assert [a.id for a in store.pending_alerts()] == ids
    store.count_alert_attempt(ids[0])
    store.mark_alert(ids[1], "sent", NOW)
    assert [(a.name, a.attempts) for a in store.pending_alerts()] == [("A0", 1), ("A2", 0)]
    assert [(a.name, a.status) for a in store.recent_alerts()] == [
        ("A0", "pending"), ("A1", "sent"), ("A2", "pending")]


def test_key_value_state_put_get_delete(store: Store) -> None:
    store.put("sleep", {"since": NOW, "reason": "shutdown", "risk": Decimal("0.025")}, NOW)
    assert store.get("sleep") == {"since": NOW.isoformat(), "reason": "shutdown", "risk": "0.025"}
    store.put("sleep", False, NOW)
    assert store.get("sleep") is False
    store.delete("sleep")
    assert store.get("sleep", "absent") == "absent"


def test_keys_match_a_literal_prefix(store: Store) -> None:
    for key in ("cooldown:BTCUSDT", "cooldown:ETHUSDT", "cooldownX", "Cooldown:SOLUSDT",
                "breaker:spread"):
        store.put(key, 1, NOW)
    assert store.keys("cooldown:") == ["cooldown:BTCUSDT", "cooldown:ETHUSDT"]
    assert store.keys("cooldown_") == []
    assert store.keys("%") == []


def test_equity_curve_is_exact_and_in_time_order(store: Store) -> None:
    store.record_equity(NOW + timedelta(minutes=1), Decimal("10000.12345678"), Decimal("10000"))
    store.record_equity(NOW, Decimal("9999.50"), Decimal("9999.50"))
    curve = store.equity_curve()
    assert [(at, str(value)) for at, value in curve] == [
        (NOW, "9999.50"), (NOW + timedelta(minutes=1), "10000.12345678")]
    assert len(store.equity_curve(since=NOW + timedelta(seconds=1))) == 1


# --- opening files: WAL, migrations, refusals ---------------------------------------------

def test_database_is_created_in_wal_mode_with_the_latest_schema(store: Store,
                                                                 db_path: Path) -> None:
    assert db_path.exists()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in store.db.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_migration_from_v1_adds_later_versions_and_keeps_v1_data(db_path: Path) -> None:
    old = open_database(db_path, migrations=MIGRATIONS[:1])
    old["kv"].insert({"key": "sleep", "value": "true", "updated_at": NOW.isoformat()})
    old["alerts"].insert({"created_at": NOW.isoformat(), "name": "SL_MISSING",
                          "severity": "CRITICAL", "symbol": "BTCUSDT", "dedup_key": "k",
                          "text": "stop missing", "status": "pending"})
    old.close()
    upgraded = Store.open(db_path)
    assert "equity" in upgraded.db.table_names()
    assert "attempts" in upgraded.db["alerts"].columns_dict
    assert upgraded.get("sleep") is True
    assert [(a.name, a.attempts) for a in upgraded.pending_alerts()] == [("SL_MISSING", 0)]
    upgraded.record_equity(NOW, Decimal("1"), Decimal("1"))
    upgraded.close()
    reopened = Store.open(db_path)
    assert [r[0] for r in reopened.db.execute("SELECT version FROM schema_version")] == [1, 2, 3]
    assert "order_id" in reopened.db["fills"].columns_dict
    reopened.close()


def test_newer_schema_is_refused_and_the_file_left_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, ?)", [LATEST_VERSION + 1, "later"])
    conn.close()
    before = sha256(db_path)
    with pytest.raises(StorageError, match=rf"schema version {LATEST_VERSION + 1}, newer .*upgrade tradebot"):
        Store.open(db_path)
    assert sha256(db_path) == before


def test_older_code_refuses_a_file_migrated_by_newer_code(db_path: Path) -> None:
    Store.open(db_path).close()
    before = sha256(db_path)
    with pytest.raises(StorageError, match="newer than this tradebot understands"):
        open_database(db_path, migrations=MIGRATIONS[:1])
    assert sha256(db_path) == before


def test_random_bytes_are_refused_and_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(random.Random(7).randbytes(16384))
    before = sha256(db_path)
    with pytest.raises(StorageError, match="not a readable SQLite database.*left untouched"):
        Store.open(db_path)
    assert sha256(db_path) == before


def test_damaged_pages_behind_a_valid_header_are_refused(db_path: Path) -> None:
    store = Store.open(db_path)
    for n in range(40):
        store.append_event(NOW, "filler", "BTCUSDT", {"n": n, "pad": "x" * 500})
    store.close()
    data = bytearray(db_path.read_bytes())
    data[4096:] = random.Random(3).randbytes(len(data) - 4096)
    db_path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="left untouched"):
        Store.open(db_path)
    assert db_path.read_bytes() == bytes(data)


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.close()
    before = sha256(db_path)
    with pytest.raises(StorageError, match="no tradebot schema"):
        Store.open(db_path)
    assert sha256(db_path) == before


def test_an_empty_file_is_initialised(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    store = Store.open(db_path)
    store.put("ok", 1, NOW)
    assert store.get("ok") == 1
    store.close()


# --- failed writes are loud and leave nothing behind -------------------------------------

WRITES: dict[str, Callable[[Store], object]] = {
    "intent": lambda s: s.save_intent(make_intent()),
    "order": lambda s: s.save_order(Order("BTCUSDT", "tb-BTCUSDT-k-en1", Side.BUY,
                                          OrderType.MARKET, OrderStatus.NEW, Decimal("1"))),
    "fill": lambda s: s.record_fill(Fill("1", "BTCUSDT", "c", Side.BUY, Decimal("1"),
                                         Decimal("1"), Decimal("0"), Decimal("0"), NOW)),
    "position": lambda s: s.save_position(make_position()),
    "event": lambda s: s.append_event(NOW, "entry", "BTCUSDT", {}),
    "alert": lambda s: s.enqueue_alert(NOW, "SL_MISSING", "CRITICAL", "BTCUSDT", "k", "t"),
    "state": lambda s: s.put("sleep", True, NOW),
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


def fill_the_disk(store: Store) -> SaveStateFailure:
    """Cap the file at its current size, then write until SQLite reports the disk full."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(500):
        try:
            store.append_event(NOW, "filler", "", {"n": n, "pad": "x" * 2000})
        except SaveStateFailure as failure:
            return failure
    raise AssertionError("the capped database never filled up")


def test_full_disk_raises_save_state_failure_naming_the_write(store: Store) -> None:
    failure = fill_the_disk(store)
    assert failure.what == "event filler"
    assert "full" in str(failure.cause)


def test_failed_transaction_on_a_full_disk_keeps_none_of_its_writes(store: Store) -> None:
    store.put("cooldown:BTCUSDT", "before", NOW)
    fill_the_disk(store)
    with pytest.raises(SaveStateFailure), store.transaction("finalize BTCUSDT"):
        store.put("cooldown:BTCUSDT", "after", NOW)
        store.save_position(make_position())
        store.append_event(NOW, "position_closed", "BTCUSDT", {"pad": "y" * 200_000})
    assert not store.db.conn.in_transaction
    assert store.get("cooldown:BTCUSDT") == "before"
    assert store.position("BTCUSDT", "s9x0a0") is None
    assert store.events("position_closed") == []
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.put("cooldown:BTCUSDT", "after space freed", NOW)
    assert store.get("cooldown:BTCUSDT") == "after space freed"


def run_helper(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=60, check=False)


FILE_SIZE_LIMIT_SCRIPT = """
import json, resource, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from storage import SaveStateFailure, Store
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


# --- readers while the engine writes ----------------------------------------------------------

WRITES_PER_RUN = 300


def write_transactions(store: Store) -> None:
    """Each state change writes three rows; a reader must see all of them or none."""
    for n in range(1, WRITES_PER_RUN + 1):
        with store.transaction(f"change {n}"):
            store.put("a", n, NOW)
            store.append_event(NOW, "change", "BTCUSDT", {"n": n})
            store.put("b", n, NOW)


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
    try:
        write_transactions(store)
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
