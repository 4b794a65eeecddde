"""The generic store (storage/): the append-only journal, the alert outbox, key-value state
and equity round-trip exactly; files are opened in WAL mode, migrated forward, or refused
untouched; and nothing in storage/ depends on the trading core (bot -> trader -> storage).
Failed writes and the write health: tests/test_storage_failures.py; the trading records:
tests/test_trade_store.py."""

import ast
import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from storage import StorageError, Store, open_database
from storage.db import LATEST_VERSION, MIGRATIONS
from tests.storage_support import NOW, run_helper, sha256

HERE = Path(__file__).resolve().parent


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tradebot.db"     # a directory the store has to create


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


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
    assert [r[0] for r in reopened.db.execute("SELECT version FROM schema_version")] == list(
        range(1, LATEST_VERSION + 1))
    assert {tuple(index.columns) for index in reopened.db["events"].indexes} >= {("kind", "at")}
    assert {tuple(index.columns) for index in reopened.db["fills"].indexes} >= {("symbol", "time")}
    assert "trigger_price" in reopened.db["intents"].columns_dict
    assert "stop_price" not in reopened.db["orders"].columns_dict
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


# --- the layering: storage knows nothing of the trading core -------------------------------

STORAGE_WITHOUT_TRADER_SCRIPT = """
import importlib, json, pkgutil, sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
sys.modules["trader"] = None     # any `import trader...` now raises ImportError
sys.modules["bot"] = None
import storage
modules = sorted(m.name for m in pkgutil.walk_packages(storage.__path__, "storage."))
for name in modules:
    importlib.import_module(name)
now = datetime(2024, 3, 1, tzinfo=UTC)
store = storage.Store.open(Path(sys.argv[1]))
with store.transaction("smoke"):
    store.put("sleep", True, now)
    store.append_event(now, "entry", "BTCUSDT", {"qty": Decimal("0.01")})
    store.enqueue_alert(now, "SL_MISSING", "CRITICAL", "BTCUSDT", "k", "t")
    store.record_equity(now, Decimal("1"), Decimal("1"))
assert store.get("sleep") is True and not store.health.failing
loaded = sorted(n for n in sys.modules if n.split(".")[0] in ("trader", "bot")
                and sys.modules[n] is not None)
print(json.dumps({"modules": modules, "loaded": loaded}))
"""


def test_storage_works_with_the_trading_core_unimportable(db_path: Path) -> None:
    """Dependencies flow bot -> trader -> storage: every storage module imports, and the
    generic store opens, migrates and writes, in a process where `trader` cannot load."""
    result = run_helper(STORAGE_WITHOUT_TRADER_SCRIPT, str(db_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"storage.store", "storage.db", "storage.codec", "storage.health"} <= set(
        report["modules"])
    assert report["loaded"] == []


def test_no_storage_module_mentions_trader_or_bot_in_an_import() -> None:
    """Also the imports a smoke run does not reach (inside functions, under TYPE_CHECKING)."""
    offending = []
    for path in sorted((HERE.parent / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offending += [f"{path.name}:{node.lineno} {name}" for name in names
                          if name.split(".")[0] in ("trader", "bot", "tests")]
    assert offending == []
