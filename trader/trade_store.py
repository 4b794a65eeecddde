"""The trading records on top of the generic store: intents (the write-ahead journal of
every order: trader/intent_records.py), orders, fills and positions, typed with the
trading domain's values.

    store = TradeStore.open("data/tradebot.db")
    store.save_intent(intent)                  # one transaction; SaveStateFailure if not
    with store.transaction("close BTCUSDT"):   # several writes as one state change
        store.save_position(final)
        store.record_fill(fill)
"""

import json
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from storage.codec import dump, dumps, load
from storage.db import LOCK_WAIT_SECONDS
from storage.iso_text import iso_text
from trader.closed_recently import ClosedArchive, ClosedRecently
from trader.domain import STATUSES_BY_VALUE, Fill, Order, OrderStatus, OrderType, Side
from trader.intent_records import PURGE_CHUNK, IntentRecords
from trader.last_known import LastKnown
from trader.position import Position, PositionState
from trader.position_body import position_from_body

FUNDING_EVENT = "funding"
# Fills remembered as recorded (`record_fill`); past this many the memory starts again (a
# fill recorded since is then asked of the database once more, by its INSERT).
FILLS_REMEMBERED = 1000
# Funding payments kept in memory (`funding_payments`); past this many the memory starts
# again (read once more from the database, from the next ask's `since`).
FUNDING_REMEMBERED = 1000


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement on the account, as journaled."""
    at: datetime
    symbol: str          # "" when the exchange did not say (Binance cross margin)
    amount: Decimal      # USDT; positive = received, negative = paid


def _dec(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


class TradeStore(IntentRecords):
    """The agent's database: `Store` plus the trading records (the intents in
    trader/intent_records.py). Like the intents, the open positions are kept in memory
    (`_open`), and the fills this store recorded are remembered (`record_fill`)."""

    def __init__(self, db: Database, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
        super().__init__(db, lock_wait)
        # A position's state and close time (its indexes' columns) change a few times per
        # trade, its body at nearly every save: the saves that keep them leave the indexes
        # untouched (2 WAL pages less per commit that writes the record)
        self._gate.write_when_changed("positions", ("state", "closed_at"))
        # (symbol, key) -> the open position as saved; None: not read yet
        self._open_positions: dict[tuple[str, str], Position] | None = None
        self._closed_recently = ClosedRecently()    # the daily summary's positions
        # A table with no closed position (a new database: every backtest's) holds none
        # closed at or after any time: known from here on, kept with each save, and the
        # first daily summary reads nothing back (it decoded the day's trades from their
        # JSON: ~28 M instructions once, in a 2,000-candle backtest)
        if not self.db.execute("SELECT 1 FROM positions WHERE state = ? LIMIT 1",
                               [PositionState.CLOSED.value]).fetchone():
            self._closed_recently.fill("", [])
        # The cache as a failed write found it: answered while the database cannot be read
        # either (protection reads it before each placement; trader/last_known.py).
        self._last_open = LastKnown[dict[tuple[str, str], Position]]("open positions")
        # (symbol, trade id) of the fills this store recorded (in the database or in its
        # open transaction): a close records its position's fills, the stream's among them
        # (recorded as they came), and each of those is answered without a statement.
        self._fills_recorded: set[tuple[str, str]] = set()
        # The journaled funding payments at or after `_funding_from` (ISO text, as stored),
        # each as (its stored time's text, the payment as read back), in the database's
        # "ORDER BY at, id" order: read once, then kept with each `record_funding`, so a
        # close's alert reads its position's funding without a query. None: not read yet.
        self._funding: list[tuple[str, FundingPayment]] | None = None
        self._funding_from = ""

    def _forget_cached(self) -> None:
        super()._forget_cached()
        self._funding = None
        self._last_open.forgotten(self._open_positions)
        self._fills_recorded = set()
        self._open_positions = None
        self._closed_recently.forget()

    # --- orders -------------------------------------------------------------------
    def save_order(self, order: Order) -> None:
        def row() -> dict[str, Any]:
            values = dump(order)
            # The exchange's reason is for the alert raised as the order ends, not a record.
            values.pop("reason", None)
            values["reduce_only"] = int(order.reduce_only)
            values["close_position"] = int(order.close_position)
            return values
        self._gate.save_later("order", "orders", (order.client_id,), row, ("client_id",), order,
                              order.status)

    def order(self, client_id: str) -> Order | None:
        held = self._gate.held("orders", (client_id,))
        if held is not None:
            return held
        rows = self._rows("SELECT * FROM orders WHERE client_id = ?", [client_id])
        if not rows:
            return None
        row = rows[0]
        return Order(
            symbol=row["symbol"], client_id=row["client_id"], side=Side(row["side"]),
            type=OrderType(row["type"]), status=OrderStatus(row["status"]),
            quantity=Decimal(row["quantity"]), filled_qty=Decimal(row["filled_qty"]),
            avg_price=Decimal(row["avg_price"]), price=_dec(row["price"]),
            trigger_price=_dec(row["trigger_price"]), reduce_only=bool(row["reduce_only"]),
            close_position=bool(row["close_position"]), exchange_id=row["exchange_id"] or "",
            updated_at=datetime.fromisoformat(row["updated_at"]) if row["updated_at"] else None)

    def finished_orders(self, client_ids: list[str]) -> set[str]:
        """The ids among `client_ids` whose order record is terminal (a batch's held-back
        order as held): what `order(id).status.terminal` says for each, in one query per
        PURGE_CHUNK ids instead of one per id."""
        finished: set[str] = set()
        unheld: list[str] = []
        for client_id in client_ids:
            held = self._gate.held("orders", (client_id,))
            if held is None:
                unheld.append(client_id)
            elif held.status.terminal:
                finished.add(client_id)
        for start in range(0, len(unheld), PURGE_CHUNK):
            chunk = unheld[start:start + PURGE_CHUNK]
            for client_id, status in self.db.execute(
                    f"SELECT client_id, status FROM orders WHERE client_id IN "
                    f"({','.join('?' * len(chunk))})", chunk):
                if (STATUSES_BY_VALUE.get(status) or OrderStatus(status)).terminal:
                    finished.add(client_id)
        return finished

    # --- fills --------------------------------------------------------------------
    def record_fill(self, fill: Fill) -> bool:
        """Store a fill once; False if it was already recorded (idempotent replays)."""
        key = (fill.symbol, fill.trade_id)
        recorded = self._fills_recorded
        if key in recorded:
            return False
        row = dump(fill)
        row["maker"] = int(fill.maker)
        columns = tuple(row)
        cursor = self._gate.write_one(f"fill {fill.symbol} {fill.trade_id}",
                                      _insert_fill_statement(columns), [row[c] for c in columns])
        if recorded is self._fills_recorded:      # not forgotten meanwhile
            if len(recorded) >= FILLS_REMEMBERED:
                recorded.clear()
            recorded.add(key)
        return cursor.rowcount > 0

    def fills(self, symbol: str | None = None, since: datetime | None = None) -> list[Fill]:
        where, args = ["1=1"], []
        if symbol:
            where.append("symbol = ?")
            args.append(symbol)
        if since:
            where.append("time >= ?")
            args.append(iso_text(since))
        # direct SQL: sqlite-utils' rows_where re-reads the schema on every call
        rows = self._rows(f"SELECT * FROM fills WHERE {' AND '.join(where)} ORDER BY time", args)
        return [load(Fill, {**r, "maker": bool(r["maker"])}) for r in rows]

    def fill_ids(self, symbol: str) -> set[str]:
        return {r["trade_id"] for r in self.db.query(
            "SELECT trade_id FROM fills WHERE symbol = ?", [symbol])}

    # --- funding --------------------------------------------------------------------
    def record_funding(self, payment: FundingPayment, rate: Decimal | None = None,
                       tran_id: str = "") -> None:
        """Journal one funding payment (an append-only event). `tran_id`: the exchange's
        transaction id when it was read from its income history (trader/funding_backfill.py);
        "" when the user-data stream reported it (ACCOUNT_UPDATE carries none)."""
        body = {"amount": str(payment.amount), "rate": "" if rate is None else str(rate)}
        if tran_id:
            body["tran_id"] = tran_id
        kept = self._funding
        self.append_event(payment.at, FUNDING_EVENT, payment.symbol, body)
        if kept is not None and self._funding is kept:     # not forgotten meanwhile
            at = iso_text(payment.at)
            if at >= self._funding_from:
                if len(kept) >= FUNDING_REMEMBERED:
                    self._funding = None        # read again from the next ask's `since`
                    return
                # as `funding_payments` reads the row back (the body's amount is its text),
                # after every kept one of an earlier or the same time (it has the largest id)
                read_back = FundingPayment(datetime.fromisoformat(at), payment.symbol or "",
                                           Decimal(str(payment.amount)))
                index = len(kept)
                while index and kept[index - 1][0] > at:
                    index -= 1
                kept.insert(index, (at, read_back))

    def funding_journal(self, since: datetime) -> list[tuple[FundingPayment, str]]:
        """Journaled funding payments at or after `since`, each with its exchange
        transaction id ("" when the stream reported it), oldest first (a payment read back
        from the income history is journaled after newer ones: ordered by its time)."""
        journal = []
        for at, symbol, text in self.db.execute(
                "SELECT at, symbol, body FROM events WHERE kind = ? AND at >= ? "
                "ORDER BY at, id", [FUNDING_EVENT, iso_text(since)]):
            body = json.loads(text)
            journal.append((FundingPayment(datetime.fromisoformat(at), symbol or "",
                                           Decimal(body["amount"])),
                            str(body.get("tran_id", ""))))
        return journal

    def funding_payments(self, since: datetime | None = None) -> list[FundingPayment]:
        """Journaled funding payments at or after `since`, oldest first (ties as
        journaled). With a `since`, read from the database once and then kept with each
        `record_funding` (this process is the events table's only writer, as for the
        intents; a failed write or a rolled-back batch forgets them): asked again from the
        same time or a later one, answered from memory; from an earlier one, read again."""
        if since is None:
            return [payment for _, payment in self._read_funding(None)]
        cutoff = iso_text(since)      # compared as stored: ISO text
        kept = self._funding
        if kept is None or cutoff < self._funding_from:
            kept = self._read_funding(cutoff)
            if len(kept) < FUNDING_REMEMBERED:
                self._funding, self._funding_from = kept, cutoff
            return [payment for _, payment in kept]
        # `kept` is in time order (its ISO texts compare as the times): the payments at or
        # after `cutoff` are its tail, found by bisection (a close's alert asks for its
        # position's few payments out of up to FUNDING_REMEMBERED kept)
        return [payment for _, payment in kept[bisect_left(kept, cutoff, key=_stored_at):]]

    def _read_funding(self, since: str | None) -> list[tuple[str, FundingPayment]]:
        """The journaled funding payments at or after the time `since` (ISO text), each
        with its time as stored, by time, ties as journaled."""
        where, args = "kind = ?", [FUNDING_EVENT]
        if since is not None:
            where += " AND at >= ?"
            args.append(since)
        # direct SQL: sqlite-utils' rows_where re-reads the schema on every call
        return [(at, FundingPayment(datetime.fromisoformat(at), symbol or "",
                                    Decimal(json.loads(body)["amount"])))
                for at, symbol, body in self.db.execute(
                    f"SELECT at, symbol, body FROM events WHERE {where} ORDER BY at, id",
                    args)]

    # --- positions ----------------------------------------------------------------
    def save_position(self, position: Position) -> None:
        def row() -> dict[str, Any]:
            return {
                "symbol": position.symbol, "key": position.key, "state": position.state._value_,
                "side": position.side._value_, "opened_at": iso_text(position.opened_at),
                "closed_at": iso_text(position.closed_at) if position.closed_at else None,
                "body": dumps(position),
            }
        known = self._open_positions      # None: not read yet, nothing to keep up to date
        self._gate.save_later("position", "positions", (position.symbol, position.key), row,
                              ("symbol", "key"), position, position.state)
        self._closed_recently.saved(position)   # forgotten meanwhile: ignored there
        if known is not None and self._open_positions is known:    # not forgotten meanwhile
            if position.state is PositionState.CLOSED:
                known.pop((position.symbol, position.key), None)
            else:
                known[position.symbol, position.key] = position

    def save_step(self, what: str, position: Position, at: datetime, kind: str,
                  text: str) -> None:
        """A position's step and its journal entry (`append_event_json(at, kind, symbol,
        text)`), all or none: `with transaction(what)` around both. In a replay batch the
        record is held back and the entry is the group's one statement, written last: it
        takes no savepoint (storage/write_gate.py `write`). Raises SaveStateFailure."""
        with self._gate.saving(what, grouped=True):
            self.save_position(position)
            self._append_event_last(at, kind, position.symbol, text)

    def open_positions(self) -> list[Position]:
        """Every position not closed, by opening time (ties: as first saved). Read from the
        database once, then kept with each save (this process is its only writer, as for
        the intents); what a failed write may have left out is read again."""
        return sorted(self._open().values(), key=_opened_at)

    def _open(self) -> dict[tuple[str, str], Position]:
        known = self._open_positions
        if known is None:
            known, read = self._last_open.read(self._read_open)
            if read:
                self._open_positions = known
        return known

    def _read_open(self) -> dict[tuple[str, str], Position]:
        self._gate.flush("positions")
        # direct SQL: sqlite-utils' rows_where re-reads the schema on every call; "< or
        # >" rather than "!=": it reads the open ones by the state index
        closed = PositionState.CLOSED.value
        rows = self._rows("SELECT body FROM positions WHERE (state < ? OR state > ?) "
                          "ORDER BY rowid", [closed, closed])
        known = {}
        for row in rows:
            position = position_from_body(row["body"])
            known[position.symbol, position.key] = position
        return known

    def position(self, symbol: str, key: str) -> Position | None:
        self._gate.flush("positions")
        rows = self._rows("SELECT body FROM positions WHERE symbol = ? AND key = ?", [symbol, key])
        return position_from_body(rows[0]["body"]) if rows else None

    def closed_positions(self, since: datetime | None = None) -> list[Position]:
        return list(self.iter_closed_positions(since))

    def closed_since(self, since: datetime) -> list[Position]:
        """`closed_positions(since)`, by close time but positions closed at the same moment
        in no set order (for sums and counts: the daily summary). Read from the database
        once, then kept with each save (trader/closed_recently.py), while `since` does not
        go back in time."""
        cutoff = iso_text(since)      # compared as stored: ISO text
        recent = self._closed_recently
        if not recent.knows(cutoff):
            recent.fill(cutoff, self.closed_positions(since))
        return recent.since(cutoff)

    def archive_closed(self) -> ClosedArchive:
        """From now on, keep the report's fields of each position saved closed (a backtest,
        on a new database: trader/closed_recently.py `ClosedArchive`)."""
        archive = self._closed_recently.archive = ClosedArchive()
        return archive

    def iter_closed_positions(self, since: datetime | None = None) -> Iterator[Position]:
        """Closed positions by close time, read one at a time (a long backtest has
        thousands: its report keeps what it needs of each, not every record)."""
        self._gate.flush("positions")
        where, args = "state = ?", [PositionState.CLOSED.value]
        if since:
            where += " AND closed_at >= ?"
            args.append(iso_text(since))
        for row in self.db.execute(f"SELECT body FROM positions WHERE {where} "
                                   "ORDER BY closed_at", args):
            yield position_from_body(row[0])


def _stored_at(entry: tuple[str, FundingPayment]) -> str:
    return entry[0]


def _opened_at(position: Position) -> datetime:
    return position.opened_at


_insert_fill_sql: dict[tuple[str, ...], str] = {}


def _insert_fill_statement(columns: tuple[str, ...]) -> str:
    """One statement that stores a fill unless its (symbol, trade_id) is known: its row
    count says which (a conflict on anything else still fails)."""
    sql = _insert_fill_sql.get(columns)
    if sql is None:
        sql = _insert_fill_sql[columns] = (
            f"INSERT INTO fills ({', '.join(f'[{c}]' for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) "
            "ON CONFLICT (symbol, trade_id) DO NOTHING")
    return sql
