"""Repositories over the database: intents, orders, fills, positions, journal, alerts, state.

Every public write is one transaction and raises `SaveStateFailure` naming what was being
saved. Group several writes into one state change with `store.transaction("what")`:

    with store.transaction("finalize BTCUSDT"):
        store.save_position(closed)
        store.append_event(now, "position_closed", "BTCUSDT", {...})
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.codec import dump, dumps, load, loads, to_json
from storage.db import SaveStateFailure, open_database, saving
from storage.health import WriteHealth
from trader.domain import (
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionState,
    Side,
)


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


def _dec(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


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

    @classmethod
    def open(cls, path: Path | str) -> "Store":
        return cls(open_database(path))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        with self._saving(what):
            yield

    @contextmanager
    def _saving(self, what: str) -> Iterator[None]:
        """The storage gate: every write runs here, and the outermost one reports its outcome
        to `health` (a write inside `transaction` is part of that one state change)."""
        self._depth += 1
        try:
            with saving(self.db, what):
                yield
        except SaveStateFailure as exc:
            if self._depth == 1:
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

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    # --- intents ------------------------------------------------------------------
    def save_intent(self, intent: Intent, now: datetime | None = None) -> None:
        row = dump(intent)
        row["reduce_only"] = int(intent.reduce_only)
        row["close_position"] = int(intent.close_position)
        row["updated_at"] = (now or intent.created_at).isoformat()
        with self._saving(f"intent {intent.client_id} {intent.status}"):
            self._upsert("intents", row, "client_id")

    def intent(self, client_id: str) -> Intent | None:
        rows = self._rows("SELECT * FROM intents WHERE client_id = ?", [client_id])
        return self._intent(rows[0]) if rows else None

    def unresolved_intents(self) -> list[Intent]:
        statuses = [s.value for s in IntentStatus if not s.resolved]
        marks = ",".join("?" * len(statuses))
        return [self._intent(r) for r in self.db["intents"].rows_where(
            f"status IN ({marks})", statuses, order_by="created_at")]

    def intents_for(self, symbol: str, position_key: str) -> list[Intent]:
        return [self._intent(r) for r in self._rows(
            "SELECT * FROM intents WHERE symbol = ? AND position_key = ? ORDER BY created_at",
            [symbol, position_key])]

    def purge_resolved_intents(self, before: datetime) -> int:
        statuses = [s.value for s in IntentStatus if s.resolved]
        marks = ",".join("?" * len(statuses))
        with self._saving("intent cleanup"):
            cursor = self.db.execute(
                f"DELETE FROM intents WHERE status IN ({marks}) AND created_at < ?",
                [*statuses, before.isoformat()])
        return cursor.rowcount

    @staticmethod
    def _intent(row: dict[str, Any]) -> Intent:
        row = {k: v for k, v in row.items() if k != "updated_at"}
        row["reduce_only"] = bool(row["reduce_only"])
        row["close_position"] = bool(row["close_position"])
        return load(Intent, row)

    # --- orders -------------------------------------------------------------------
    def save_order(self, order: Order) -> None:
        row = dump(order)
        row["reduce_only"] = int(order.reduce_only)
        row["close_position"] = int(order.close_position)
        with self._saving(f"order {order.client_id} {order.status}"):
            self._upsert("orders", row, "client_id")

    def order(self, client_id: str) -> Order | None:
        rows = self._rows("SELECT * FROM orders WHERE client_id = ?", [client_id])
        if not rows:
            return None
        row = rows[0]
        return Order(
            symbol=row["symbol"], client_id=row["client_id"], side=Side(row["side"]),
            type=OrderType(row["type"]), status=OrderStatus(row["status"]),
            quantity=Decimal(row["quantity"]), filled_qty=Decimal(row["filled_qty"]),
            avg_price=Decimal(row["avg_price"]), price=_dec(row["price"]),
            stop_price=_dec(row["stop_price"]), reduce_only=bool(row["reduce_only"]),
            close_position=bool(row["close_position"]), exchange_id=row["exchange_id"] or "",
            updated_at=datetime.fromisoformat(row["updated_at"]) if row["updated_at"] else None)

    # --- fills --------------------------------------------------------------------
    def record_fill(self, fill: Fill) -> bool:
        """Store a fill once; False if it was already recorded (idempotent replays)."""
        row = dump(fill)
        row["maker"] = int(fill.maker)
        with self._saving(f"fill {fill.symbol} {fill.trade_id}"):
            known = self.db.execute("SELECT 1 FROM fills WHERE symbol = ? AND trade_id = ?",
                                    [fill.symbol, fill.trade_id]).fetchone()
            if known:
                return False
            columns = tuple(row)
            self.db.execute(f"INSERT INTO fills ({', '.join(f'[{c}]' for c in columns)}) "
                            f"VALUES ({', '.join('?' * len(columns))})", [row[c] for c in columns])
        return True

    def fills(self, symbol: str | None = None, since: datetime | None = None) -> list[Fill]:
        where, args = ["1=1"], []
        if symbol:
            where.append("symbol = ?")
            args.append(symbol)
        if since:
            where.append("time >= ?")
            args.append(since.isoformat())
        rows = self.db["fills"].rows_where(" AND ".join(where), args, order_by="time")
        return [load(Fill, {**r, "maker": bool(r["maker"])}) for r in rows]

    def fill_ids(self, symbol: str) -> set[str]:
        return {r["trade_id"] for r in self.db.query(
            "SELECT trade_id FROM fills WHERE symbol = ?", [symbol])}

    # --- positions ----------------------------------------------------------------
    def save_position(self, position: Position) -> None:
        row = {
            "symbol": position.symbol, "key": position.key, "state": position.state.value,
            "side": position.side.value, "opened_at": position.opened_at.isoformat(),
            "closed_at": position.closed_at.isoformat() if position.closed_at else None,
            "body": dumps(position),
        }
        with self._saving(f"position {position.symbol} {position.key} {position.state}"):
            self._upsert("positions", row, "symbol", "key")

    def open_positions(self) -> list[Position]:
        rows = self.db["positions"].rows_where("state != ?", [PositionState.CLOSED.value],
                                               order_by="opened_at")
        return [loads(Position, r["body"]) for r in rows]

    def position(self, symbol: str, key: str) -> Position | None:
        rows = self._rows("SELECT body FROM positions WHERE symbol = ? AND key = ?", [symbol, key])
        return loads(Position, rows[0]["body"]) if rows else None

    def closed_positions(self, since: datetime | None = None) -> list[Position]:
        where, args = "state = ?", [PositionState.CLOSED.value]
        if since:
            where += " AND closed_at >= ?"
            args.append(since.isoformat())
        rows = self.db["positions"].rows_where(where, args, order_by="closed_at")
        return [loads(Position, r["body"]) for r in rows]

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

