"""The one gate every database write goes through: transactions, a replay's batches, the
records a batch holds back, and the report of every outcome to the write health.

    gate = WriteGate(db, health)
    with gate.saving("event entry"):        # one state change: its own transaction
        gate.write("INSERT INTO events ...", [...])
    with gate.saving("close BTCUSDT", grouped=True):   # several writes, all or none
        ...

Outside a batch each outermost `saving` is one transaction, committed before it returns
(sqlite-utils' `atomic`; inside another, a savepoint); inside the live tick's unit of work
(storage/unit_of_work.py) it writes into the unit's transaction, which commits (and the
records saved with `upsert_later` are held until that commit, as in a batch). A replay's
batches (one per candle) share one transaction that begins at the first write and is
committed every `REPLAY_COMMIT_EVERY` batches, before any write outside a batch, and when
the store closes (`settle`); a batch takes a savepoint before its first write when that
transaction is open already, a grouped `saving` inside it one more where it needs its own
(not when its first write is the batch's, nor when it is one statement: `write`). A failed
write raises
`SaveStateFailure(what)` and leaves nothing behind; a failed batch undoes itself only.
The pass and the batch themselves are storage/gate_passes.py.
"""

import sqlite3
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from loguru import logger
from sqlite_utils import Database

from storage.db import save_failure
from storage.gate_passes import REPLAY_COMMIT_EVERY, Batch, Pass
from storage.health import WriteHealth
from storage.held_rows import HeldRows, Row
from storage.unit_of_work import UnitOfWork
from storage.upsert import steady_update_statement, upsert_statement

SAVEPOINT = "grouped_write"     # a grouped write inside a batch (only the outermost takes one)
BATCH_SAVEPOINT = "replay_batch"   # a batch, when earlier batches are not committed yet
__all__ = ["REPLAY_COMMIT_EVERY", "WriteGate"]
_TAKE_SAVEPOINT = f"SAVEPOINT {SAVEPOINT}"
_RELEASE_SAVEPOINT = f"RELEASE SAVEPOINT {SAVEPOINT}"
_UNDO_SAVEPOINT = f"ROLLBACK TO SAVEPOINT {SAVEPOINT}"
_TAKE_BATCH_SAVEPOINT = f"SAVEPOINT {BATCH_SAVEPOINT}"
_RELEASE_BATCH_SAVEPOINT = f"RELEASE SAVEPOINT {BATCH_SAVEPOINT}"
_UNDO_BATCH_SAVEPOINT = f"ROLLBACK TO SAVEPOINT {BATCH_SAVEPOINT}"
# `savepoint_due` of a group whose `last` write ran without one: truthy, so a further write
# of the group finds it (and raises) where a due savepoint would be taken
_SEALED = "sealed"
STEADY_KEPT = 1024      # records whose steady values `upsert` remembers; all forgotten past it

def _forget_nothing() -> None:
    return None


def saved_what(kind: str, key: tuple[Any, ...], status: Enum | None = None) -> str:
    """What `save_later` names a record: "intent tb-BTCUSDT-k1-sl1 SENT", "state guards"."""
    words = [kind, *map(str, key)]
    if status is not None:
        words.append(str(status.value))
    return " ".join(words)


class WriteGate:
    """See the module docstring. `forget` is called when a write failed or a batch was
    rolled back: what the caller remembers of the database may no longer be in it."""

    def __init__(self, db: Database, health: WriteHealth,
                 forget: Callable[[], None] = _forget_nothing) -> None:
        self.db = db
        self.conn = db.conn
        self.health = health
        self.forget = forget
        self.depth = 0
        self.batching = False
        self.uncommitted = 0            # batches ended since the replay's last commit
        self.batch_savepoint_due = False   # the batch must take a savepoint at its first write
        self.batch_savepoint_open = False
        # a batch's grouped write has not written yet (True), or has written its `last`
        # statement without a savepoint (_SEALED: see `write`)
        self.savepoint_due: bool | str = False
        self.savepoint_open = False
        self.group_at_batch_savepoint = False   # the group rolls back to the batch's savepoint
        # SAVEPOINT, RELEASE and ROLLBACK TO run on one cursor kept for them (what they
        # return is never read): `conn.execute` builds a cursor per statement
        self.control = self.conn.cursor()
        self.later = HeldRows()        # what the batches (or the open unit) hold back
        self.unit: UnitOfWork | None = None   # the open unit of work (live tick), if any
        # True inside the open unit's own outermost write: `upsert_later` holds its row
        # until the unit's next commit (storage/unit_of_work.py), as a replay batch does
        self.holding = False
        # True inside the open unit's outermost grouped write until its first statement
        # that writes: the group's savepoint is taken then (`UnitOfWork.open_group`), unless
        # that statement is the group's `last` (_SEALED then: see `write`)
        self.unit_group_due: bool | str = False
        # table -> its columns `upsert` writes only when changed (`write_when_changed`)
        self.steady: dict[str, tuple[str, ...]] = {}
        # (table, primary key values) -> the steady columns' values last written (a hint)
        self.steady_written: dict[tuple[str, tuple[Any, ...]], tuple[Any, ...]] = {}

    def saving(self, what: str, grouped: bool = False) -> Pass:
        """One write (`grouped`: several, all or none). Raises SaveStateFailure(what)."""
        return Pass(self, what, grouped)

    def batch(self, what: str) -> Batch:
        """Replay only: see `storage.Store.batch`. Raises SaveStateFailure(what) when its
        writes, the held-back rows or a due commit cannot be written."""
        return Batch(self, what)

    def end_batch(self, what: str) -> None:
        """A batch went through: count it, and commit the batches when due. A batch that
        cannot be committed takes the uncommitted ones with it (SaveStateFailure)."""
        try:
            self.batch_savepoint_due = False
            if self.batch_savepoint_open:
                self.batch_savepoint_open = False
                self.control.execute(_RELEASE_BATCH_SAVEPOINT)
            self.uncommitted += 1
            if self.uncommitted >= REPLAY_COMMIT_EVERY:
                self._commit()
        except (sqlite3.Error, OSError) as exc:
            self._roll_back_all()
            self.forget()
            raise save_failure(what, exc) from exc

    def undo_batch(self, open_before: bool, mark: int) -> None:
        """A batch raised: back to where it began (`mark`: see storage/held_rows.py)."""
        try:
            kept = self._undo_batch(open_before)
        except (sqlite3.Error, OSError) as exc:
            logger.error("replay batch not undone, rolling back the uncommitted ones error={}",
                         exc)
            kept = False
        if kept:
            self.later.undo_to(mark)
        else:
            self._roll_back_all()       # the earlier batches went with it
        self.forget()

    def settle(self) -> None:
        """Commit what the replay's batches left uncommitted: before a write outside a batch
        and when the store closes. Raises SaveStateFailure (nothing of them is kept then)."""
        if not (self.uncommitted or self.later.records) or self.batching \
                or self.unit is not None:       # held by the open unit: its commit writes them
            return
        self.batching = True            # the held rows are written as a batch writes them
        try:
            self._commit()
        except BaseException as exc:
            self._roll_back_all()
            self.forget()
            if isinstance(exc, sqlite3.Error | OSError):
                raise save_failure("replay batches", exc) from exc
            raise
        finally:
            self.batching = False

    def _commit(self) -> None:
        self.uncommitted = 0
        self._write_held()
        self.later.clear()
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def _undo_batch(self, open_before: bool) -> bool:
        """A failed batch: back to where it began. False when the earlier batches' writes
        are gone too (an error that ended the whole transaction)."""
        if self.batch_savepoint_open:
            self.batch_savepoint_open = False
            if self.conn.in_transaction:
                self.control.execute(_UNDO_BATCH_SAVEPOINT)
                self.control.execute(_RELEASE_BATCH_SAVEPOINT)
                return True
            return False
        if not open_before:
            self.conn.rollback()        # it began the transaction: all of it is its own
            return True
        return self.conn.in_transaction     # it wrote nothing (or the transaction is gone)

    def _roll_back_all(self) -> None:
        self.conn.rollback()
        self.uncommitted = 0
        self.later.clear()

    # --- statements -------------------------------------------------------------------
    def write(self, sql: str, params: Sequence[Any] = (), last: bool = False) -> sqlite3.Cursor:
        """Run one write statement, inside `saving`. In a batch, the batch's transaction
        begins here, and a grouped write's savepoint is taken here, at its first write (so
        is the savepoint of the live unit's grouped write: `UnitOfWork.begin_pass`).

        In a batch, a group's savepoint is not taken when the batch's own is taken at the
        same write (the group rolls back to the batch's: nothing else of the batch is after
        it), nor when its first write is also its `last`: the caller's promise that nothing
        runs after this statement inside the group (a store method's final line), so the
        group is this one statement, which SQLite undoes by itself when it fails (its held
        rows are undone by their mark). A write after that one raises RuntimeError. The
        live unit's group takes none for that `last` first write either (a journaled step:
        its position held, its entry the one statement; 2 statements less per step)."""
        if self.batching:
            if not self.conn.in_transaction:
                self.conn.execute("BEGIN")
                self.batch_savepoint_due = False
            elif self.batch_savepoint_due:
                self.control.execute(_TAKE_BATCH_SAVEPOINT)
                self.batch_savepoint_due = False
                self.batch_savepoint_open = True
                if self.savepoint_due is True:      # the group's first write is the batch's
                    self.savepoint_due = False
                    self.group_at_batch_savepoint = True
            if self.savepoint_due:
                if self.savepoint_due is not True:
                    raise RuntimeError(f"a write after the group's last one: {sql[:60]}")
                if last:
                    self.savepoint_due = _SEALED
                else:
                    self.control.execute(_TAKE_SAVEPOINT)
                    self.savepoint_due = False
                    self.savepoint_open = True
        elif self.unit_group_due and self.unit is not None:
            # The live unit's group: the same rule as a batch's, for its `last` write (a
            # journaled step's entry, whose record is held: the group's one statement)
            if self.unit_group_due is not True:
                raise RuntimeError(f"a write after the group's last one: {sql[:60]}")
            if last:
                self.unit_group_due = _SEALED
            else:
                self.unit.open_group()
        return self.conn.execute(sql, params)

    def write_one(self, what: str, sql: str, params: Sequence[Any] = (),
                  last: bool = False) -> sqlite3.Cursor:
        """`with saving(what): return write(sql, params, last)`. Inside an open pass, that
        inner pass only names a failure (SaveStateFailure(what), no savepoint, no report):
        done here without one (a trade's journal rows and fills are written inside its
        groups). Raises SaveStateFailure(what)."""
        if self.depth:
            try:
                return self.write(sql, params, last)
            except (sqlite3.Error, OSError) as exc:
                raise save_failure(what, exc) from exc
        with self.saving(what):
            return self.write(sql, params)

    def write_when_changed(self, table: str, columns: tuple[str, ...]) -> None:
        """`upsert` writes `columns` of `table` (its secondary indexes' columns, which seldom
        change) only when their value changed: an UPDATE of the rest of the row where they
        hold the row's values first, the upsert when it changed none
        (storage/upsert.py `steady_update_statement` says why)."""
        self.steady[table] = columns

    def upsert(self, table: str, row: dict[str, Any], pk: tuple[str, ...]) -> None:
        """INSERT ... ON CONFLICT DO UPDATE of `row`; where `write_when_changed` names the
        table's steady columns and they hold the values last written, an UPDATE that keeps
        them first (one row or none: the same row either way)."""
        steady = self.steady.get(table) if self.steady else None
        columns = tuple(row)            # a dict's keys and values come in the same order
        if steady is None or (update := steady_update_statement(table, columns, pk,
                                                                steady)) is None:
            self.write(upsert_statement(table, columns, pk), list(row.values()))
            return
        # The UPDATE is tried only where the steady values last written for the key are
        # the row's: a new record or a changed state goes to the upsert at once (one
        # statement). A hint only: a value it remembers wrongly (a rollback since) makes
        # the UPDATE change no row, and the upsert writes it.
        key = (table, tuple([row[name] for name in pk]))
        values = tuple([row[name] for name in steady])
        if self.steady_written.get(key) == values:
            sql, names = update
            if self.write(sql, [row[name] for name in names]).rowcount:
                return
        self.write(upsert_statement(table, columns, pk), list(row.values()))
        if len(self.steady_written) >= STEADY_KEPT:
            self.steady_written.clear()     # bounded: a forgotten key costs one upsert
        self.steady_written[key] = values

    def upsert_later(self, table: str, key: tuple[Any, ...], row: Row, pk: tuple[str, ...],
                     value: Any) -> None:
        """`upsert(table, row(), pk)` now, or in a batch when it ends (or before its table
        is read: `flush`), or inside the live tick's unit of work at its next commit
        (`write_held_rows`): the last version of a record only, encoded once. `value` is
        what the record records (`held` answers it). Inside `saving`, like every write."""
        if self.batching or self.holding:
            self.later.hold((table, key), row, pk, value)
        else:
            self.upsert(table, row(), pk)

    def save_later(self, kind: str, table: str, key: tuple[Any, ...], row: Row,
                   pk: tuple[str, ...], value: Any, status: Enum | None = None) -> None:
        """`with saving(what): upsert_later(table, key, row, pk, value)`, `what` the record's
        `kind`, its key and its `status` ("position BTCUSDT k1 PROTECTED": `saved_what`),
        built only where the pass runs (a held record never names itself). Where that pass
        would only hold the row, it is held without one (a trade saves ~40 records): inside
        a replay batch, inside an open pass of a batch or of the live unit (an inner pass
        that only holds does nothing: no statement, no savepoint, no report), or in the
        live unit's task once its transaction is open (its outermost pass would only hold:
        the unit's commit reports). An outermost pass in a batch only reports its success
        to the health, and so does this. Everywhere else the pass runs (it writes, begins
        the unit's transaction, or commits the unit for another task). Raises
        SaveStateFailure(what) there, like `saving`."""
        if self.batching or (self.depth and self.holding):
            self.later.hold((table, key), row, pk, value)
            if not self.depth:
                self.health.succeeded()
            return
        unit = self.unit
        if unit is not None and not self.depth and self.conn.in_transaction \
                and unit.holds_writes():
            self.later.hold((table, key), row, pk, value)
            return
        with self.saving(saved_what(kind, key, status)):
            self.upsert_later(table, key, row, pk, value)

    def held(self, table: str, key: tuple[Any, ...]) -> Any:
        """The value of a record the batch holds back (not written yet); None if none."""
        records = self.later.records
        held = records.get((table, key)) if records else None
        return None if held is None else held.value

    def drop_held(self, table: str, keys: list[tuple[Any, ...]]) -> None:
        """Forget the held-back rows of `keys` (deleted from `table` by the caller's write:
        not to be written). A batch that fails later gets them back (its mark)."""
        if self.later.records:
            for key in keys:
                self.later.unhold((table, key))

    def flush(self, table: str) -> None:
        """Write the rows a batch holds back of `table`: before a read of it. On failure
        they stay held back. Raises SaveStateFailure."""
        if not self.later.records:
            return
        rows = self.later.in_order(table)
        if not rows:
            return
        for key, _ in rows:
            self.later.unhold(key)
        try:
            with self.saving(f"held-back {table}", grouped=len(rows) > 1):
                for (name, _), held in rows:
                    self.upsert(name, held.row(), held.pk)
        except BaseException:
            self.later.put_back(rows)
            raise

    def write_held_rows(self) -> None:
        """The unit of work's commit: every held-back row into its transaction (begun here
        if none is open), then forgotten. Raises sqlite3.Error / OSError: the unit rolls
        back (and forgets them: `HeldRows.clear`)."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
        for (name, _), held in self.later.in_order():
            self.upsert(name, held.row(), held.pk)
        self.later.clear()

    def _write_held(self) -> None:
        """Every held-back row (before a commit: their failure fails it)."""
        if self.later.records:
            with self.saving("held-back rows"):
                for (name, _), held in self.later.in_order():
                    self.upsert(name, held.row(), held.pk)

    def end_group(self, keep: bool) -> None:
        """The end of a batch's grouped write: release its savepoint, or roll back to it
        (to the batch's when the group began there: `write`; it stays the batch's)."""
        self.savepoint_due = False
        if self.group_at_batch_savepoint:
            self.group_at_batch_savepoint = False
            if not keep and self.conn.in_transaction:   # an error may have ended the batch
                self.control.execute(_UNDO_BATCH_SAVEPOINT)
            return
        if not self.savepoint_open:
            return
        self.savepoint_open = False
        if keep:
            self.control.execute(_RELEASE_SAVEPOINT)
        elif self.conn.in_transaction:      # an error may have ended the whole batch
            self.control.execute(_UNDO_SAVEPOINT)
            self.control.execute(_RELEASE_SAVEPOINT)
