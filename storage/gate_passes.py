"""The gate's two context managers (storage/write_gate.py): one replay batch (`Batch`,
`WriteGate.batch`) and one pass through the gate (`Pass`, `WriteGate.saving`). Classes, not
generators: they run on every candle and every write.
"""

import sqlite3
from typing import TYPE_CHECKING, Any, Literal

from storage.db import SaveStateFailure, save_failure
from storage.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from storage.write_gate import WriteGate

# Batches per commit in a replay (storage/write_gate.py; here for `Batch.__exit__`): a commit
# costs more than a candle's own writes, and a record saved again before the commit is
# written once (the held-back rows stay few: one per record saved since, ~300 at most in a
# 20k-candle backtest). A backtest (the only user) replays from the start after a crash
# anyway.
REPLAY_COMMIT_EVERY = 1024


class Batch:
    """One replay batch (`WriteGate.batch`; a class, not a generator: it runs every candle).
    It may be entered again once it has exited (the backtest enters one per candle): each
    `__enter__` sets everything its `__exit__` reads. Not re-entrant while open."""

    __slots__ = ("gate", "what", "active", "open_before", "mark")

    def __init__(self, gate: "WriteGate", what: str) -> None:
        self.gate = gate
        self.what = what

    def __enter__(self) -> None:
        gate = self.gate
        # Inside a transaction already (or a batch): that one commits.
        self.active = not (gate.batching or gate.depth
                           or (gate.conn.in_transaction and not gate.uncommitted))
        if self.active:
            gate.batching = True
            # the held rows as earlier batches left them: `gate.later.mark()`, inline (every
            # candle): a mark opened, the undo log's length
            later = gate.later
            later.marks += 1
            self.mark = len(later.undo_log)
            self.open_before = gate.conn.in_transaction
            gate.batch_savepoint_due = self.open_before

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: Any) -> Literal[False]:
        if not self.active:
            return False
        gate = self.gate
        if exc is None and not gate.batch_savepoint_open \
                and gate.uncommitted < REPLAY_COMMIT_EVERY - 1:
            # `end_batch` and the `finally` below, inline: most batches (an idle candle)
            # took no savepoint, and a commit is due once per REPLAY_COMMIT_EVERY
            gate.uncommitted += 1
            later = gate.later
            later.marks -= 1
            if not later.marks and later.undo_log:
                later.undo_log.clear()
            gate.batching = gate.batch_savepoint_due = False
            gate.savepoint_due = gate.savepoint_open = gate.group_at_batch_savepoint = False
            return False
        try:
            if exc is None:
                gate.end_batch(self.what)
            else:
                gate.undo_batch(self.open_before, self.mark)
                if isinstance(exc, sqlite3.Error | OSError):
                    raise save_failure(self.what, exc) from exc
        finally:
            if self.mark is not None:
                later = gate.later            # `later.unmark()`, inline (every candle)
                later.marks -= 1
                if not later.marks:
                    later.undo_log.clear()
            gate.batching = False
            gate.batch_savepoint_due = gate.batch_savepoint_open = False
            gate.savepoint_due = gate.savepoint_open = gate.group_at_batch_savepoint = False
        return False


class Pass:
    """One pass through the gate (a class, not a generator: every write runs through it).
    The outermost pass reports its outcome to the health; a grouped pass that fails keeps
    none of the records it held back."""

    __slots__ = ("gate", "what", "grouped", "outermost", "opens_group", "mark", "atomic",
                 "unit")

    def __init__(self, gate: "WriteGate", what: str, grouped: bool) -> None:
        self.gate = gate
        self.what = what
        self.grouped = grouped

    def __enter__(self) -> None:
        gate = self.gate
        gate.depth += 1
        self.outermost = gate.depth == 1
        self.mark: int | None = None
        self.opens_group = gate.batching and self.grouped and self.outermost
        self.atomic: Any = None
        self.unit: UnitOfWork | None = None
        if self.opens_group:
            gate.savepoint_due = True
        elif not gate.batching and (self.outermost or self.grouped):
            # A single write inside a transaction takes no savepoint: SQLite undoes a
            # failed statement by itself (its statement journal), and a failure that ends
            # the whole transaction would end a savepoint too.
            unit = gate.unit
            try:
                if self.outermost and unit is not None and unit.takes():
                    unit.begin_pass(self.grouped)   # the unit commits (unit_of_work.py)
                    self.unit = unit
                    gate.holding = True
                    self._mark_held()
                    return
                gate.settle()               # a replay's batches first: this one commits now
                if gate.unit_group_due is True and gate.unit is not None:
                    gate.unit.open_group()  # the unit's group first: it holds this one
                atomic = gate.db.atomic()   # a transaction; inside one, a savepoint
                atomic.__enter__()
            except BaseException as exc:
                failure = self._failed(exc)
                if failure is exc:
                    raise
                raise failure from exc
            self.atomic = atomic
        self._mark_held()

    def _mark_held(self) -> None:
        """Inside a batch or the unit, a failed grouped write keeps none of the rows it
        held back (elsewhere, rows are written, not held)."""
        gate = self.gate
        if self.grouped and (gate.batching or gate.holding):
            self.mark = gate.later.mark()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: Any) -> Literal[False]:
        original = exc
        try:
            if self.atomic is not None:
                self.atomic.__exit__(kind, exc, traceback)      # commit, or roll back
            elif self.unit is not None:
                self.unit.end_pass(self.grouped, exc is None, self.what, exc)
            elif self.opens_group:
                self.gate.end_group(keep=exc is None)
        except (sqlite3.Error, OSError) as error:      # the commit or the rollback failed
            exc = error
        except BaseException as error:
            self._failed(error)
            raise
        if exc is None:
            self.gate.depth -= 1
            if self.mark is not None:
                self.gate.later.unmark()
            if self.unit is not None:
                self.gate.holding = False
            if self.outermost and self.unit is None:   # in a unit: its commit reports
                self.gate.health.succeeded()
            return False
        failure = self._failed(exc)
        if failure is original:
            return False                    # it goes on as it is
        if failure is exc:
            raise failure
        raise failure from exc

    def _failed(self, exc: BaseException) -> BaseException:
        """Account for a failed pass; the exception to raise (a database error becomes
        SaveStateFailure naming what was being saved)."""
        gate = self.gate
        gate.depth -= 1
        if self.unit is not None:
            gate.holding = False
        if self.mark is not None:
            gate.later.undo_to(self.mark)   # a failed grouped write keeps none of its rows
            gate.later.unmark()
        failure = save_failure(self.what, exc) if isinstance(exc, sqlite3.Error | OSError) \
            else exc
        if self.outermost:
            gate.forget()
            if isinstance(failure, SaveStateFailure):
                gate.health.failed(failure)
        return failure
