"""The database's generic repositories: the append-only journal, the alert outbox, key-value
state and equity snapshots, and the one gate every write goes through.

Every public write is one transaction and raises `SaveStateFailure` naming what was being
saved; every outcome is reported to `health` (the save-failure monitor). Group several
writes into one state change with `store.transaction("what")`:

    with store.transaction("finalize BTCUSDT"):
        store.append_event(now, "position_closed", "BTCUSDT", {...})
        store.put("guards", {...}, now)

A replay groups each candle's writes with `store.batch` (candles share a commit; see
there). The gate itself is storage/write_gate.py.

The trading records (intents, orders, fills, positions) are typed by the trading core:
`trader.trade_store.TradeStore` extends this class. Nothing here imports `trader`.
"""

import json
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, TypeVar

from loguru import logger
from sqlite_utils import Database

from storage.codec import dumps, to_json
from storage.db import LOCK_WAIT_SECONDS, open_database, wait_for_locks
from storage.health import WriteHealth
from storage.iso_text import iso_text
from storage.unit_of_work import UnitOfWork
from storage.write_gate import WriteGate

T = TypeVar("T")
EVENT_INSERT = "INSERT INTO events (at, kind, symbol, body) VALUES (?, ?, ?, ?)"


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


class Store:
    """Typed access to the tradebot database. One instance per process (the engine's)."""

    def __init__(self, db: Database, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
        self.db = db
        self.lock_wait = lock_wait
        self.health = WriteHealth(on_streak=self._wait_for_locks)
        self._gate = WriteGate(db, self.health, self._forget_cached)
        self.unit = UnitOfWork(self._gate)

    @classmethod
    def open(cls, path: Path | str, *, wal: bool = True,
             lock_wait: float = LOCK_WAIT_SECONDS) -> Self:
        """`wal=False` for the live agent's database (storage/db.py: journal mode);
        `lock_wait`: seconds a statement waits for another process's lock
        (AGENT_LOCK_WAIT_SECONDS for the agent)."""
        return cls(open_database(path, wal=wal, lock_wait=lock_wait), lock_wait)

    def _wait_for_locks(self, failing: bool) -> None:
        """A streak of failed writes begins (True) or ends (False): see `wait_for_locks`. A
        database that refuses even that (a broken file) keeps its wait: the failure being
        reported matters more."""
        try:
            wait_for_locks(self.db.conn, 0 if failing else self.lock_wait)
        except sqlite3.Error as exc:
            logger.warning("database lock wait not changed failing={} error={}", failing, exc)

    def close(self) -> None:
        """Commit what a replay's batches left uncommitted, then close. Raises
        SaveStateFailure when that cannot be written (the file is closed all the same)."""
        try:
            self._gate.settle()
        finally:
            self.db.close()

    def transaction(self, what: str) -> AbstractContextManager[None]:
        """Several writes as one state change, all or none. Raises SaveStateFailure(what)."""
        return self._gate.saving(what, grouped=True)

    def batch(self, what: str) -> AbstractContextManager[None]:
        """Replay only (trader/backtest.py, one candle): the writes of consecutive batches
        are committed together, every `REPLAY_COMMIT_EVERY` batches (storage/write_gate.py),
        before any write outside a batch and when the store closes, one commit instead of
        one per write; a record written several times (`upsert_later`: positions, intents,
        orders) is written once, as it is last, when they are committed; a read of one such
        record is answered from what is held, a read of its table writes the table's held
        records first. The transaction begins at the first write: a candle that writes
        nothing issues no statement. Each write still reports to `health` and raises
        `SaveStateFailure` as it would alone; a failed one leaves nothing behind (a single
        statement is atomic in SQLite; a `transaction` of several statements takes a
        savepoint before its first write, or shares the batch's, and rolls back to it), and
        a batch that raises undoes its own writes only. A
        crash loses the uncommitted batches, which a backtest replays from the start
        anyway. The live agent never batches: there every state change is committed before
        the exchange action that depends on it. Raises SaveStateFailure(what) when its
        writes, the held-back rows or a due commit cannot be written."""
        return self._gate.batch(what)

    def unit_of_work(self, work: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """The live tick: `work`'s writes share one transaction, committed at each
        `commit_point`, before each suspension and at the end (storage/unit_of_work.py).
        Inside a replay batch it is `work` itself. Await it: work's result, or its error."""
        return self.unit.run(work)

    def commit_point(self, what: str) -> None:
        """Commit the open unit of work now (before an order request leaves). Nothing
        outside a unit. Raises SaveStateFailure(what): rolled back to the last commit."""
        self.unit.commit_point(what)

    def _forget_cached(self) -> None:
        """A write failed (or a batch was rolled back): what a subclass remembers of the
        database is no longer known to be in it; its reads ask the database again."""

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    # --- journal ------------------------------------------------------------------
    def append_event(self, at: datetime, kind: str, symbol: str = "",
                     body: dict[str, Any] | None = None) -> None:
        self.append_event_json(at, kind, symbol, dumps(body or {}))

    def append_event_json(self, at: datetime, kind: str, symbol: str, text: str) -> None:
        """`append_event` with its body already encoded (`codec.dumps` of it, read back by
        `events` like `append_event`'s)."""
        self._gate.write_one(f"event {kind}", EVENT_INSERT, [iso_text(at), kind, symbol, text])

    def _append_event_last(self, at: datetime, kind: str, symbol: str, text: str) -> None:
        """`append_event_json` as the last statement of the open group: nothing may run
        after it inside the group (`WriteGate.write`'s `last`; a store method's final
        line)."""
        self._gate.write_one(f"event {kind}", EVENT_INSERT, [iso_text(at), kind, symbol, text],
                             last=True)

    def events(self, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("kind = ?", [kind]) if kind else ("1=1", [])
        rows = self.db["events"].rows_where(where, args, order_by="id desc", limit=limit)
        return [{**r, "body": json.loads(r["body"])} for r in rows][::-1]

    # --- alerts outbox ------------------------------------------------------------
    def enqueue_alert(self, at: datetime, name: str, severity: str, symbol: str,
                      dedup_key: str, text: str) -> int:
        cursor = self._gate.write_one(
            f"alert {name}",
            "INSERT INTO alerts (created_at, name, severity, symbol, dedup_key, text, status, "
            "sent_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, 0)",
            [iso_text(at), name, severity, symbol, dedup_key, text])
        return int(cursor.lastrowid or 0)

    def pending_alerts(self, limit: int = 50, severity: str | None = None,
                       names: Sequence[str] = ()) -> list[StoredAlert]:
        """Up to `limit` pending alerts, oldest first; when `severity` or `names` is given,
        only those of that severity or with one of those names."""
        where, values = "status = ?", ["pending"]
        if severity is not None or names:
            where += f" AND (severity = ? OR name IN ({', '.join('?' * len(names))}))"
            values += [severity or "", *names]
        rows = self.db["alerts"].rows_where(where, values, order_by="id", limit=limit)
        return [self._alert(r) for r in rows]

    def recent_alerts(self, limit: int = 20) -> list[StoredAlert]:
        rows = self.db["alerts"].rows_where(order_by="id desc", limit=limit)
        return [self._alert(r) for r in rows][::-1]

    def alerts_with_key(self, dedup_key: str, since: datetime) -> list[StoredAlert]:
        """The alerts of one dedup key created at `since` or later, oldest first (a process
        that starts again reads what the one before it said)."""
        rows = self.db["alerts"].rows_where("dedup_key = ? AND created_at >= ?",
                                            [dedup_key, iso_text(since)], order_by="id")
        return [self._alert(r) for r in rows]

    def mark_alert(self, alert_id: int, status: str, at: datetime) -> None:
        with self._gate.saving(f"alert {alert_id} {status}"):
            self._gate.write("UPDATE alerts SET status = ?, sent_at = ?, attempts = attempts + 1 "
                        "WHERE id = ?", [status, at.isoformat(), alert_id])

    def count_alert_attempt(self, alert_id: int) -> None:
        with self._gate.saving(f"alert {alert_id} attempt"):
            self._gate.write("UPDATE alerts SET attempts = attempts + 1 WHERE id = ?", [alert_id])

    @staticmethod
    def _alert(row: dict[str, Any]) -> StoredAlert:
        return StoredAlert(
            id=row["id"], created_at=datetime.fromisoformat(row["created_at"]), name=row["name"],
            severity=row["severity"], symbol=row["symbol"] or "", dedup_key=row["dedup_key"] or "",
            text=row["text"], status=row["status"], attempts=row["attempts"] or 0)

    # --- key-value state ----------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        self._gate.flush("kv")      # a replay batch's held-back `put_later` rows first
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any, now: datetime) -> None:
        self.put_json(key, to_json(value), now)

    def put_later(self, key: str, value: Callable[[], Any], now: datetime) -> None:
        """`put(key, value(), now)`; inside a replay batch, held back until the batches
        are committed (`WriteGate.upsert_later`): the last value of `key` only, `value()`
        called then (a state saved on every trade costs one write per commit). Raises
        SaveStateFailure like `put`."""
        def row() -> dict[str, Any]:
            return {"key": key, "value": to_json(value()), "updated_at": iso_text(now)}
        self._gate.save_later("state", "kv", (key,), row, ("key",), None)

    def put_json(self, key: str, text: str, now: datetime) -> None:
        """Store already-encoded JSON text under `key` (read back by `get` like `put`'s).
        For large states assembled from cached parts (the paper exchange's)."""
        with self._gate.saving(f"state {key}"):
            self._gate.upsert("kv", {"key": key, "value": text, "updated_at": iso_text(now)},
                              ("key",))

    def delete(self, key: str) -> None:
        with self._gate.saving(f"state {key}"):
            self._gate.drop_held("kv", [(key,)])
            self._gate.write("DELETE FROM kv WHERE key = ?", [key])

    def keys(self, prefix: str) -> list[str]:
        self._gate.flush("kv")
        # Not LIKE: it is case-insensitive and treats "_" and "%" in the prefix as wildcards.
        return [r["key"] for r in self.db.query(
            "SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key", [len(prefix), prefix])]

    # --- equity snapshots ---------------------------------------------------------
    def record_equity(self, at: datetime, equity: Decimal, wallet: Decimal) -> None:
        with self._gate.saving("equity snapshot"):
            self._gate.upsert("equity", {"at": at.isoformat(), "equity": str(equity),
                                         "wallet": str(wallet)}, ("at",))

    def equity_curve(self, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
        where, args = ("at >= ?", [since.isoformat()]) if since else ("1=1", [])
        return [(datetime.fromisoformat(r["at"]), Decimal(r["equity"]))
                for r in self.db["equity"].rows_where(where, args, order_by="at")]

