"""Opening the SQLite file: integrity and version checks, journal mode, forward migrations.

A file that is not a tradebot database, is corrupt, or carries a newer schema than this
code knows is refused with `StorageError` before anything is written to it.

Journal mode. WAL is fast (a commit without fsync) but keeps its index in a memory-mapped
-shm file: when the disk goes read-only under a running process (a filesystem remounted
read-only after an I/O error), the next write into a mapped page kills the process with
SIGBUS, with no log line and no alert (https://www.sqlite.org/wal.html, "Use of WAL Without
Shared-Memory"; tests/chaos/test_read_only_disk.py). The live agent's money-bearing
database therefore uses a rollback journal (`wal=False`: TRUNCATE, synchronous=FULL), where
a refused write is an ordinary error (SaveStateFailure); it costs about 3 ms per commit on
this machine (benchmarks/README.md). Backtests, replays and tests keep WAL: a fresh file of
their own, where speed matters and nothing outlives the run.
"""

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger
from sqlite_utils import Database


class StorageError(Exception):
    """The database cannot be opened safely; the message says why and what to do."""


class SaveStateFailure(Exception):
    """A write failed. `what` names the state that was being saved; nothing was kept."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"could not save {what}: {cause}")
        self.what = what
        self.cause = cause


Migration = Callable[[Database], None]


def _v1(db: Database) -> None:
    """Initial schema: intents, orders, fills, positions, events, alerts, kv."""
    db.table("intents").create({
        "client_id": str, "symbol": str, "role": str, "side": str, "type": str,
        "quantity": str, "price": str, "stop_price": str, "reduce_only": int,
        "close_position": int, "position_key": str, "status": str, "created_at": str,
        "sent_at": str, "updated_at": str, "detail": str,
    }, pk="client_id", not_null={"symbol", "role", "status", "created_at"})
    db.table("intents").create_index(["status"])
    db.table("orders").create({
        "client_id": str, "exchange_id": str, "symbol": str, "side": str, "type": str,
        "status": str, "quantity": str, "filled_qty": str, "avg_price": str, "price": str,
        "stop_price": str, "reduce_only": int, "close_position": int, "updated_at": str,
    }, pk="client_id")
    db.table("fills").create({
        "symbol": str, "trade_id": str, "client_id": str, "side": str, "quantity": str,
        "price": str, "fee": str, "realized_pnl": str, "time": str, "maker": int,
    }, pk=("symbol", "trade_id"))
    db.table("positions").create({
        "symbol": str, "key": str, "state": str, "side": str, "opened_at": str,
        "closed_at": str, "body": str,
    }, pk=("symbol", "key"))
    db.table("positions").create_index(["state"])
    db.table("events").create({
        "id": int, "at": str, "kind": str, "symbol": str, "body": str,
    }, pk="id")
    # The journal is append-only: the database itself refuses edits.
    db.execute("CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
               "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END")
    db.execute("CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
               "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END")
    db.table("alerts").create({
        "id": int, "created_at": str, "name": str, "severity": str, "symbol": str,
        "dedup_key": str, "text": str, "status": str, "sent_at": str,
    }, pk="id")
    db.table("alerts").create_index(["status"])
    db.table("kv").create({"key": str, "value": str, "updated_at": str}, pk="key")


def _v2(db: Database) -> None:
    """Equity snapshots (risk fraction, breakers, chart) and alert delivery attempts."""
    db.table("equity").create({"at": str, "equity": str, "wallet": str}, pk="at")
    db.table("alerts").add_column("attempts", int, not_null_default=0)


def _v3(db: Database) -> None:
    """Fills keep the exchange's order id (userTrades carry it; the client id comes later)."""
    db.table("fills").add_column("order_id", str, not_null_default="")


def _v4(db: Database) -> None:
    """One name per concept: a stop's or take-profit's price is its trigger price."""
    for table in ("intents", "orders"):
        db.execute(f"ALTER TABLE {table} RENAME COLUMN stop_price TO trigger_price")


def _v5(db: Database) -> None:
    """Reads that grew with the journal: a close's funding (events of one kind since a
    time) and its fills (one symbol's since a time) scanned every row ever written."""
    db.table("events").create_index(["kind", "at"], find_unique_name=True)
    db.table("fills").create_index(["symbol", "time"], find_unique_name=True)


def _v6(db: Database) -> None:
    """Closed positions since a time (the daily summary, reports) read by an index: they
    scanned every closed position ever recorded."""
    db.table("positions").create_index(["state", "closed_at"], find_unique_name=True)


def _v7(db: Database) -> None:
    """Fills keep the asset their fee was charged in (BNB when the account pays its fees
    in BNB); every fill recorded before was booked as USDT."""
    db.table("fills").add_column("fee_asset", str, not_null_default="USDT")


MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
LATEST_VERSION = len(MIGRATIONS)


# How long a statement waits for another connection's lock (a CLI command's write, a reader)
# before it fails with "database is locked". The live agent waits less
# (AGENT_LOCK_WAIT_SECONDS): each of its statements runs on its event loop, and while
# another process held the file (a `sqlite3` shell in a transaction, a database browser)
# every read and write waiting five seconds froze protection and Telegram alike: a stop
# cancelled by hand stayed unreplaced, and no alert went out, for as long as the lock lasted.
# A CLI command's own write holds the lock for milliseconds.
LOCK_WAIT_SECONDS = 5.0
AGENT_LOCK_WAIT_SECONDS = 0.5


def _connect(path: Path, *, read_only: bool = False,
             lock_wait: float = LOCK_WAIT_SECONDS) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=lock_wait,
                               check_same_thread=False)
    return sqlite3.connect(str(path), timeout=lock_wait, check_same_thread=False)


def wait_for_locks(conn: sqlite3.Connection, seconds: float) -> None:
    """How long statements on `conn` wait for another connection's lock (0: they fail at
    once). While writes fail (storage/store.py), the agent's statements wait no more: the
    tick goes on with entries blocked and positions protected (SAVE_STATE_FAILURE), the
    alerts from memory, and the first write that works restores the wait."""
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def schema_version(conn: sqlite3.Connection) -> int:
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if not has_table:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _inspect_existing(path: Path) -> int:
    """Check an existing file read-only; return its schema version or raise StorageError.
    A hot rollback journal beside it (a process killed mid-transaction) needs a writable
    connection: SQLite rolls the interrupted transaction back on the first read."""
    journal = Path(f"{path}-journal")
    hot_journal = journal.exists() and journal.stat().st_size > 0
    try:
        conn = _connect(path, read_only=not hot_journal)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise StorageError(f"database {path} is corrupt ({check[0] if check else 'no answer'}); "
                               "left untouched: move it away or set TRADEBOT_DB to another file")
        version = schema_version(conn)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database {path} is not a readable SQLite database ({exc}); "
                           "left untouched: move it away or set TRADEBOT_DB to another file") from exc
    finally:
        conn.close()
    if version == 0 and tables:
        raise StorageError(f"database {path} holds tables but no tradebot schema; left untouched: "
                           "set TRADEBOT_DB to a file of its own")
    if version > LATEST_VERSION:
        raise StorageError(f"database {path} has schema version {version}, newer than this tradebot "
                           f"understands ({LATEST_VERSION}); left untouched: upgrade tradebot")
    return version


def open_database(path: Path | str, *, migrations: list[Migration] | None = None,
                  wal: bool = True, lock_wait: float = LOCK_WAIT_SECONDS) -> Database:
    """Open (or create) the database file, set its journal mode (WAL, or with `wal=False` a
    rollback journal: see the module docstring) and apply pending migrations. `lock_wait`:
    seconds a statement waits for another connection's lock.

    Raises StorageError when the file cannot be opened safely."""
    path = Path(path)
    steps = MIGRATIONS if migrations is None else migrations
    if path.exists() and path.stat().st_size > 0:
        current = _inspect_existing(path)
        if current > len(steps):
            raise StorageError(f"database {path} has schema version {current}, newer than "
                               f"this tradebot understands ({len(steps)}); left untouched")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the directory for {path}: {exc}") from exc
        current = 0
    try:
        conn = _connect(path, lock_wait=lock_wait)
        db = Database(conn, execute_plugins=False)
        if wal:
            if current < len(steps):
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        else:
            _use_rollback_journal(db, path)
        db.execute("PRAGMA foreign_keys=ON")
        _migrate(db, current, steps, path)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return db


def _use_rollback_journal(db: Database, path: Path) -> None:
    """TRUNCATE journal, synchronous=FULL; a WAL file is converted back (that needs the only
    connection: with another process on it, it stays WAL, which works, and is logged)."""
    mode = db.execute("PRAGMA journal_mode=TRUNCATE").fetchone()[0]
    if str(mode).lower() != "truncate":
        logger.warning("database journal stays {} (another process has it open) path={}",
                       mode, path)
    db.execute("PRAGMA synchronous=FULL")


def _migrate(db: Database, current: int, steps: list[Migration], path: Path) -> None:
    """Apply the steps after `current`. A fresh file is one DEBUG line (every CLI command
    on a new disk makes one: not news); an existing database upgraded, one INFO line per
    step."""
    if current == 0:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version "
                   "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    for version in range(current + 1, len(steps) + 1):
        with db.atomic():
            steps[version - 1](db)
            db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                       [version, datetime.now(UTC).isoformat()])
        if current > 0:
            logger.info("storage migrated version={} path={}", version, path)
    if current == 0:
        logger.debug("database created at schema version {} path={}", len(steps), path)


def save_failure(what: str, cause: BaseException) -> SaveStateFailure:
    """The SaveStateFailure for a write that failed with `cause`, logged."""
    logger.error("save failed what={} error={}", what, cause)
    return SaveStateFailure(what, cause)
