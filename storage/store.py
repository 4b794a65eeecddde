"""The database's generic repositories: the append-only journal, the alert outbox, key-value
state and equity snapshots, and the one gate every write goes through.

Every public write is one transaction and raises `SaveStateFailure` naming what was being
saved; every outcome is reported to `health` (the save-failure monitor). Group several
writes into one state change with `store.transaction("what")`:

    with store.transaction("finalize BTCUSDT"):
        store.append_event(now, "position_closed", "BTCUSDT", {...})
        store.put("guards", {...}, now)

The trading records (intents, orders, fills, positions) are typed by the trading core:
`trader.trade_store.TradeStore` extends this class. Nothing here imports `trader`.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.codec import dumps, to_json
from storage.db import SaveStateFailure, open_database, saving
from storage.health import WriteHealth


@dataclass(frozen=True, slots=True)
class StoredAlert:
    id: int
    created_at: datetime
    name: str
    severity: str
    symbol: str
    dedup_key: str
    text: str
    status: str
    attempts: int


_upsert_sql: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}


def _upsert_statement(table: str, columns: tuple[str, ...], pk: tuple[str, ...]) -> str:
    """INSERT ... ON CONFLICT DO UPDATE: what sqlite-utils' upsert does, in one statement
    built once per shape (the library rebuilds it and re-reads the schema on every call)."""
    key = (table, columns, pk)
    sql = _upsert_sql.get(key)
    if sql is None:
        names = ", ".join(f"[{c}]" for c in columns)
        updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c not in pk)
        sql = (f"INSERT INTO [{table}] ({names}) VALUES ({', '.join('?' * len(columns))}) "
               f"ON CONFLICT ({', '.join(f'[{c}]' for c in pk)}) DO UPDATE SET {updates}")
        _upsert_sql[key] = sql
    return sql


class Store:
    """Typed access to the tradebot database. One instance per process (the engine's)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.health = WriteHealth()
        self._depth = 0
        self._batching = False
        # A batch's rows held back until it ends: (table, key) -> (the row, when written; pk)
        self._later: dict[tuple[str, tuple[Any, ...]],
                          tuple[Callable[[], dict[str, Any]], tuple[str, ...]]] = {}

    @classmethod
    def open(cls, path: Path | str, *, wal: bool = True) -> "Store":
        """`wal=False` for the live agent's database (storage/db.py: journal mode)."""
        return cls(open_database(path, wal=wal))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        with self._saving(what, grouped=True):
            yield

    @contextmanager
    def batch(self, what: str) -> Iterator[None]:
        """Replay only (trader/backtest.py, one candle): the writes inside are committed
        together when the block ends, one commit instead of one per write, and a record
        written several times (`_upsert_later`: positions, intents) is written once, as it
        is last; a read of its table writes it first. Each write still reports to `health`
        and raises `SaveStateFailure` as it would alone; a failed one leaves nothing behind
        (a single statement is atomic in SQLite, a `transaction` keeps its savepoint). A
        crash loses the whole block, which a backtest replays from the start anyway. The
        live agent never batches: there every state change is committed before the
        exchange action that depends on it. Raises SaveStateFailure(what) when the held-back
        rows or the final commit cannot be written."""
        if self._batching or self._depth or self.db.conn.in_transaction:
            yield                   # inside a transaction already: that one commits
            return
        self._batching = True
        try:
            with saving(self.db, what):
                yield
                self._batching = False
                self._flush()
        finally:
            self._batching = False
            self._later.clear()     # rolled back with the batch when it failed

    @contextmanager
    def _saving(self, what: str, grouped: bool = False) -> Iterator[None]:
        """The storage gate: every write runs here, and the outermost one reports its outcome
        to `health` (a write inside `transaction` is part of that one state change). In a
        `batch` only a `transaction` takes a savepoint: a lone write is one statement, and a
        failed write inside a transaction fails all of it."""
        self._depth += 1
        held = dict(self._later) if grouped and self._later else None
        try:
            with saving(self.db, what, atomic=not self._batching or (grouped and self._depth == 1)):
                yield
        except BaseException as exc:
            if held is not None or grouped:
                self._later = held or {}    # a failed transaction keeps none of its rows
            if isinstance(exc, SaveStateFailure) and self._depth == 1:
                self.health.failed(exc)
            raise
        else:
            if self._depth == 1:
                self.health.succeeded()
        finally:
            self._depth -= 1

    def _upsert(self, table: str, row: dict[str, Any], *pk: str) -> None:
        columns = tuple(row)
        self.db.execute(_upsert_statement(table, columns, pk), [row[c] for c in columns])

    def _upsert_later(self, table: str, key: tuple[Any, ...],
                      row: Callable[[], dict[str, Any]], *pk: str) -> None:
        """`_upsert(table, row(), *pk)` now, or in a `batch` when it ends (or before its
        table is read): the last version of a record only, encoded once. Inside the gate
        (`_saving`), like every write."""
        if self._batching:
            self._later[(table, key)] = (row, pk)
        else:
            self._upsert(table, row(), *pk)

    def _flush(self, table: str | None = None) -> None:
        """Write the rows a batch holds back (of `table`, or all): before a read of them.
        Raises SaveStateFailure."""
        if not self._later:
            return
        keys = [key for key in self._later if table is None or key[0] == table]
        if not keys:
            return
        with self._saving(f"held-back {table or 'rows'}", grouped=True):
            for key in keys:
                row, pk = self._later.pop(key)
                self._upsert(key[0], row(), *pk)

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    # --- journal ------------------------------------------------------------------
    def append_event(self, at: datetime, kind: str, symbol: str = "",
                     body: dict[str, Any] | None = None) -> None:
        with self._saving(f"event {kind}"):
            self.db.execute("INSERT INTO events (at, kind, symbol, body) VALUES (?, ?, ?, ?)",
                            [at.isoformat(), kind, symbol, dumps(body or {})])

    def events(self, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("kind = ?", [kind]) if kind else ("1=1", [])
        rows = self.db["events"].rows_where(where, args, order_by="id desc", limit=limit)
        return [{**r, "body": json.loads(r["body"])} for r in rows][::-1]

    # --- alerts outbox ------------------------------------------------------------
    def enqueue_alert(self, at: datetime, name: str, severity: str, symbol: str,
                      dedup_key: str, text: str) -> int:
        with self._saving(f"alert {name}"):
            cursor = self.db.execute(
                "INSERT INTO alerts (created_at, name, severity, symbol, dedup_key, text, status, "
                "sent_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, 0)",
                [at.isoformat(), name, severity, symbol, dedup_key, text])
        return int(cursor.lastrowid or 0)

    def pending_alerts(self, limit: int = 50) -> list[StoredAlert]:
        rows = self.db["alerts"].rows_where("status = ?", ["pending"], order_by="id", limit=limit)
        return [self._alert(r) for r in rows]

    def recent_alerts(self, limit: int = 20) -> list[StoredAlert]:
        rows = self.db["alerts"].rows_where(order_by="id desc", limit=limit)
        return [self._alert(r) for r in rows][::-1]

    def mark_alert(self, alert_id: int, status: str, at: datetime) -> None:
        with self._saving(f"alert {alert_id} {status}"):
            self.db.execute("UPDATE alerts SET status = ?, sent_at = ?, attempts = attempts + 1 "
                            "WHERE id = ?", [status, at.isoformat(), alert_id])

    def count_alert_attempt(self, alert_id: int) -> None:
        with self._saving(f"alert {alert_id} attempt"):
            self.db.execute("UPDATE alerts SET attempts = attempts + 1 WHERE id = ?", [alert_id])

    @staticmethod
    def _alert(row: dict[str, Any]) -> StoredAlert:
        return StoredAlert(
            id=row["id"], created_at=datetime.fromisoformat(row["created_at"]), name=row["name"],
            severity=row["severity"], symbol=row["symbol"] or "", dedup_key=row["dedup_key"] or "",
            text=row["text"], status=row["status"], attempts=row["attempts"] or 0)

    # --- key-value state ----------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any, now: datetime) -> None:
        self.put_json(key, to_json(value), now)

    def put_json(self, key: str, text: str, now: datetime) -> None:
        """Store already-encoded JSON text under `key` (read back by `get` like `put`'s).
        For large states assembled from cached parts (the paper exchange's)."""
        with self._saving(f"state {key}"):
            self._upsert("kv", {"key": key, "value": text, "updated_at": now.isoformat()}, "key")

    def delete(self, key: str) -> None:
        with self._saving(f"state {key}"):
            self.db.execute("DELETE FROM kv WHERE key = ?", [key])

    def keys(self, prefix: str) -> list[str]:
        # Not LIKE: it is case-insensitive and treats "_" and "%" in the prefix as wildcards.
        return [r["key"] for r in self.db.query(
            "SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key", [len(prefix), prefix])]

    # --- equity snapshots ---------------------------------------------------------
    def record_equity(self, at: datetime, equity: Decimal, wallet: Decimal) -> None:
        with self._saving("equity snapshot"):
            self._upsert("equity", {"at": at.isoformat(), "equity": str(equity),
                                    "wallet": str(wallet)}, "at")

    def equity_curve(self, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
        where, args = ("at >= ?", [since.isoformat()]) if since else ("1=1", [])
        return [(datetime.fromisoformat(r["at"]), Decimal(r["equity"]))
                for r in self.db["equity"].rows_where(where, args, order_by="at")]

