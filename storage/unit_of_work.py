"""A unit of work for the live engine's tick: its writes share one transaction, committed
at the commit points, never held open while the engine task is suspended.

    await store.unit_of_work(engine_tick())     # storage.Store.unit_of_work
    store.commit_point("intent tb-... before its send")   # raises SaveStateFailure

Inside a unit, each outermost `saving` writes into the unit's open transaction instead of
committing on its own; a grouped write (`store.transaction`) stays all-or-none inside it
(a savepoint). A record saved with `upsert_later` (intents, orders, positions, `put_later`
state) is held back until the next commit, as a replay batch holds it (storage/held_rows.py,
`WriteGate.holding`): written as last saved, once, right before the COMMIT (an entry tick's
position, ATTACHING then PROTECTED in its last transaction, is written once); a read of it
is answered from what is held, a read of its table writes the table's held rows first. A
crash before the commit loses the held rows with the rest of the uncommitted unit: nothing
the write-ahead contract needs (tests/test_unit_of_work.py, the crash images). The
transaction is committed:
- at every `commit_point`: the executor calls one right before each order request it
  sends or cancels (trader/executor.py), so the SENT intent is durable before the request
  leaves (the write-ahead contract of docs/ARCHITECTURE.md);
- whenever the engine task is about to suspend (`UnitOfWork.run` drives the tick's
  coroutine and commits before passing each suspension on to the event loop: an exchange
  read, a retry sleep, anything), so no other task (the alerter's delivery loop, the
  Telegram bot's views, the intent keeper) can read an uncommitted row or write into the
  unit's transaction;
- at the end of the unit, also when it raises.
Safety net: a read (`Database.execute`/`query`) or write from another task while the
unit's transaction is open commits it first and logs a WARNING once.

Failure rule: a commit that fails (the held rows' writes included) rolls the database back
to the last commit point, drops the held rows, calls
the store's `forget` (its caches re-read the database), counts the failure in the write
health (SAVE_STATE_FAILURE, as any failed write) and tells the rollback listeners (the
alerter keeps the rolled-back alerts in memory). `commit_point` then raises
SaveStateFailure(what) to its caller (an entry is not sent; protection is sent anyway: the
executor's rule); a commit at a suspension or at the end of the unit has no caller to tell
and goes on (the write health reports it at the next tick).

After a rollback, what the engine holds in memory (it never claims more than before:
today's rule for a write that failed on its own). What nothing else would write again
before a restart is kept in `UnitOfWork.rewrites` (`Rewrites`) and written again by the
next tick (trader/engine.py calls `write_again`), also when its own write failed:
- the guards (trader/guard_book.py) keep their newer state and write it whole again (a
  breaker tripped in a rolled-back unit is on the disk after the next tick); so does the
  risk state's equity peak (trader/entry_sender.py);
- a close, whose position has left memory, is written again (trader/position_journal.py),
  and so are a stream fill and a funding payment (append-only rows no later step writes);
- an order's answer (the intent's status and the order row, trader/executor.py) is written
  again while the intent is still SENT on the disk (never over a newer status);
- the interpreter's `positions` keep their newer state (as after a step that could not be
  saved): the next saved step writes the whole record again (a position steps again as its
  legs are observed), and a restart rebuilds it from the exchange (trader/startup.py); the
  step's journal row (events: leg_placed, ...) is an audit trail nothing reads back; an
  entry rolled back before its send is dropped from memory too (trader/entry_sender.py,
  trader/maker_quoter.py);
- the order tracker mirrors the exchange, not the database: unchanged (the exchange did
  get what was sent); so does the executor's memory of sent client ids;
- the trade store's caches (intents, open positions) are forgotten and read again;
- the alerter delivers the alerts whose outbox rows were rolled back from memory;
- the periodic reconciliation (trader/app.py) runs outside the tick's unit: its close
  read-back and funding read-back commit on their own. Inside a command's unit (/wake,
  /shutdown) a rolled-back close read-back is read again at its next round (it starts from
  the database's unknown closes); a rolled-back funding read-back is kept and written
  again (trader/funding_backfill.py: its next round is due only at a stream reconnect);
- the intent sweep (trader/housekeeping.py) starts from the database: redone next round;
- the intent keeper's operator intent (trader/intent_keeper.py) is saved again as it is
  then (the boot rule takes the newest of the record and the Telegram pin: without a pin,
  an older record would lift a rolled-back /pause or /shutdown);
- rows rewritten on their own schedule lose nothing that matters: the tick marker, the
  equity snapshots (a point of /chart's curve; the next refresh writes one); the presence
  record is written by its own task, outside the unit;
- the paper exchange commits its own state before answering (trader/exchange/paper.py),
  so its saved-chunk logs never count rolled-back rows.

A unit opened inside a replay batch or an open transaction does nothing (a backtest's tick
is already inside a batch: same code path, no extra commit).
"""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Generator, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from storage.db import SaveStateFailure, save_failure

if TYPE_CHECKING:
    from storage.write_gate import WriteGate

T = TypeVar("T")
GROUP_SAVEPOINT = "unit_group"      # the outermost grouped write inside a unit


def _current_task() -> "asyncio.Task[Any] | None":
    try:
        return asyncio.current_task()
    except RuntimeError:            # no running loop (another thread)
        return None


class UnitOfWork:
    """See the module docstring. One per store; at most one unit open at a time."""

    def __init__(self, gate: "WriteGate") -> None:
        self.gate = gate
        self.owner: asyncio.Task[Any] | None = None   # the task whose unit is open
        self.open = False
        self.warned: set[str] = set()     # what the safety net saw (one WARNING each)
        self.rollback_listeners: list[Callable[[], None]] = []
        self.commit_listeners: list[Callable[[], None]] = []
        self._tracer_before: Any = None
        self.rewrites = Rewrites(self)
        self.group_open = False         # the open group's savepoint was taken (`open_group`)

    # --- the unit ---------------------------------------------------------------------
    def run(self, work: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """`work` as one unit (see the module docstring), to await: its result, or its
        error. Inside a replay batch (or a unit, or an open transaction: that one
        commits) it is `work` itself: a backtest's tick pays nothing for it."""
        gate = self.gate        # `_inactive`, inlined: every replayed candle asks
        if self.open or gate.batching or gate.depth or gate.conn.in_transaction:
            return work
        return self._run_open(work)

    def _inactive(self) -> bool:
        gate = self.gate
        return self.open or gate.batching or bool(gate.depth) or gate.conn.in_transaction

    async def _run_open(self, work: Coroutine[Any, Any, T]) -> T:
        if self._inactive():            # opened since `run` was called
            return await work
        self._open()
        try:
            return await _Driven(work, self._before_suspending)
        finally:
            self.settle("end of the unit of work")
            self._close()

    def _open(self) -> None:
        self.open = True
        self.owner = _current_task()
        self.gate.unit = self
        db = self.gate.db
        self._tracer_before = db._tracer
        db._tracer = self._on_statement       # the safety net for reads from other tasks

    def _close(self) -> None:
        self.open = False
        self.owner = None
        self.gate.unit = None
        self.gate.db._tracer = self._tracer_before

    def _before_suspending(self) -> None:
        if self.gate.depth and "waits inside a write" not in self.warned:
            self.warned.add("waits inside a write")    # a bug: an await inside `saving`
            logger.warning("the engine waits inside a write: its transaction stays open "
                           "while it waits")
        self.settle("before the engine waits")

    # --- commits ----------------------------------------------------------------------
    def commit_point(self, what: str) -> None:
        """Commit what the unit wrote since the last commit point. Outside a unit: nothing.
        Raises SaveStateFailure(what) when the commit fails (rolled back: see the module
        docstring)."""
        if self.open and not self.gate.depth:   # never inside a write (mid-group)
            self._commit(what)

    def _commit(self, what: str, held: bool = True) -> None:
        """`held`: write the held-back rows first (the safety net's commit for a read runs
        inside the reader's statement, and leaves them for the unit's next commit)."""
        gate = self.gate
        conn = gate.conn
        try:
            if held and gate.later.records:
                gate.write_held_rows()
            if not conn.in_transaction:
                return
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise self._rolled_back(what, exc) from exc
        gate.health.succeeded()
        if not gate.later.records:
            self.rewrites.uncommitted.clear()   # durable now
        for listener in self.commit_listeners:
            listener()

    def settle(self, what: str) -> None:
        """`commit_point` for a caller that cannot act on a failure: logged and counted."""
        try:
            self.commit_point(what)
        except SaveStateFailure as exc:
            logger.error("unit of work rolled back at {} error={}", what, exc.cause)

    def _rolled_back(self, what: str, exc: BaseException) -> SaveStateFailure:
        """Back to the last commit point: the caches forget, the health counts it."""
        gate = self.gate
        try:
            gate.conn.rollback()
        except (sqlite3.Error, OSError) as error:   # the connection is gone: so is the rest
            logger.error("rollback failed what={} error={}", what, error)
        gate.later.clear()              # the rows held back since are gone with the rest
        failure = save_failure(what, exc)
        gate.forget()
        gate.health.failed(failure)
        self.rewrites.rolled_back()
        for listener in self.rollback_listeners:
            listener()
        return failure

    def lost_transaction(self, what: str, exc: BaseException) -> None:
        """A write inside the unit failed with an error that ended the whole transaction:
        the unit's earlier writes went with it (the gate counts the write's own failure)."""
        logger.error("unit of work rolled back by a failed write what={} error={}", what, exc)
        self.gate.later.clear()         # the rows held back since went with it
        self.rewrites.rolled_back()
        for listener in self.rollback_listeners:
            listener()

    def holds_writes(self) -> bool:
        """True when the caller's writes go into the open unit (not committed yet)."""
        return self.open and _current_task() is self.owner

    # --- the gate's passes ------------------------------------------------------------
    def takes(self) -> bool:
        """True when the caller's outermost write belongs to the open unit. A write from
        another task commits the unit first (safety net) and goes on alone."""
        if not self.open:
            return False
        if _current_task() is self.owner:
            return True
        self._from_another_task("write")
        return False

    def begin_pass(self, grouped: bool) -> None:
        """An outermost write inside the unit: the transaction begins at its first write; a
        grouped one takes a savepoint (all or none inside the unit) right before its first
        statement that writes (`open_group`, called by the gate): a group that only holds
        rows (an order's answer: its intent and order) writes nothing until the commit,
        and its held rows are undone by their mark (storage/write_gate.py); nor does one
        whose first statement is its `last` (a journaled step's entry: `WriteGate.write`)."""
        conn = self.gate.conn
        if not conn.in_transaction:
            conn.execute("BEGIN")
        if grouped:
            self.gate.unit_group_due = True

    def open_group(self) -> None:
        """The open group's savepoint, before its first write (`WriteGate.write`, or a
        savepoint of a group inside it)."""
        self.gate.conn.execute(f"SAVEPOINT {GROUP_SAVEPOINT}")
        self.gate.unit_group_due = False
        self.group_open = True

    def end_pass(self, grouped: bool, ok: bool, what: str,
                 error: BaseException | None) -> None:
        """The end of `begin_pass`'s write: release its savepoint, or roll back to it. A
        failed write that ended the transaction took the unit's earlier writes along."""
        conn = self.gate.conn
        opened, self.group_open = self.group_open, False
        self.gate.unit_group_due = False
        if not conn.in_transaction:
            if not ok:
                self.lost_transaction(what, error or RuntimeError("transaction ended"))
            return
        if grouped and opened:
            if not ok:
                conn.execute(f"ROLLBACK TO SAVEPOINT {GROUP_SAVEPOINT}")
            conn.execute(f"RELEASE SAVEPOINT {GROUP_SAVEPOINT}")

    # --- the safety net ---------------------------------------------------------------
    def _on_statement(self, sql: str, params: Any) -> None:
        if self._tracer_before is not None:
            self._tracer_before(sql, params)
        if self.gate.conn.in_transaction and _current_task() is not self.owner:
            self._from_another_task("read")

    def _from_another_task(self, kind: str) -> None:
        if not self.gate.conn.in_transaction:
            return
        if kind not in self.warned:
            self.warned.add(kind)
            other = _current_task()
            logger.warning("a {} from another task while the engine's unit of work was open: "
                           "committed first task={} engine_task={}", kind,
                           other.get_name() if other else "no task (another thread)",
                           self.owner.get_name() if self.owner else "none")
        try:
            self._commit(f"{kind} from another task", held=kind != "read")
        except SaveStateFailure as exc:
            logger.error("unit of work rolled back at a {} from another task error={}", kind,
                         exc.cause)


Rewrite = Callable[[], None]


class Rewrites:
    """What a rollback of the unit took off the disk (or what failed to be written on its
    own), kept in memory as the owner's way to write it again, until the next tick does.

        unit.rewrites.written(("fill", symbol, trade_id), again)   # after the write
        unit.rewrites.failed(("fill", symbol, trade_id), again)    # it raised SaveStateFailure
        if unit.rewrites.lost: unit.rewrites.write_again()         # the tick (trader/engine.py)

    `again()` writes the owner's record as it is NOW (the guards' whole state, a close, a
    fill, a funding payment) and reports itself the same way: it never raises
    SaveStateFailure, so one that fails again stays `lost` for the tick after (the write
    health counts each failure: SAVE_STATE_FAILURE). One entry per key: a later write of
    the same record takes the place of an earlier one. A commit of the unit forgets what
    it made durable; outside a unit (or inside a replay batch) a write that did not raise
    is on the disk (or the batch's): nothing is kept."""

    __slots__ = ("unit", "uncommitted", "lost")

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit
        self.uncommitted: dict[Hashable, Rewrite] = {}   # in the open transaction
        self.lost: dict[Hashable, Rewrite] = {}          # to write again, oldest first

    def written(self, key: Hashable, again: Rewrite) -> None:
        """The record `key` was written (into the unit's transaction when one is open)."""
        if self.lost:
            self.lost.pop(key, None)
        if self.unit.open and self.unit.holds_writes():
            self.uncommitted[key] = again

    def failed(self, key: Hashable, again: Rewrite) -> None:
        """The write of `key` failed: `again` is called by the next `write_again`."""
        self.uncommitted.pop(key, None)
        self.lost[key] = again

    def rolled_back(self) -> None:
        """The unit rolled back to its last commit point: what it held is lost."""
        if self.uncommitted:
            logger.warning("rolled back, to be written again by the next tick: {}",
                           ", ".join(str(key) for key in self.uncommitted))
            self.lost.update(self.uncommitted)
            self.uncommitted.clear()

    def write_again(self, failed: Callable[[str, Exception], bool]) -> None:
        """Write every lost record again (oldest first); one that fails stays lost. One
        that raises anything else (a defect in its owner) stays lost too and goes to
        `failed(what, exc)`, the caller's boundary (trader/containment.py: logged, counted,
        alerted; False: raise it, as a backtest does); the others are still written."""
        lost, self.lost = self.lost, {}
        for key, again in lost.items():
            logger.info("written again what={}", key)
            try:
                again()
            except Exception as exc:  # the boundary: `failed` logs, counts and alerts it
                self.lost.setdefault(key, again)
                if not failed(f"write again {key}", exc):
                    raise


class _Driven:
    """Awaits a coroutine, calling `before_suspending` each time it is about to suspend
    (it yields to the event loop): one place for every await of the tick."""

    __slots__ = ("work", "before_suspending")

    def __init__(self, work: Coroutine[Any, Any, T], before_suspending: Callable[[], None]
                 ) -> None:
        self.work = work
        self.before_suspending = before_suspending

    def __await__(self) -> Generator[Any, Any, Any]:
        work = self.work
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = work.send(value) if error is None else work.throw(error)
            except StopIteration as done:
                return done.value
            self.before_suspending()
            try:
                value, error = (yield step), None
            except GeneratorExit:
                work.close()
                raise
            except BaseException as thrown:  # noqa: BLE001 - thrown into the work, not kept
                # (a cancellation: the tick handles it where it waits, as without the unit)
                value, error = None, thrown
