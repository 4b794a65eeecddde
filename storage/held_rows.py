"""The records a replay's batches hold back until they are committed (storage/write_gate.py):
the last version of each, and the changes an open batch or grouped write can undo.

    held = HeldRows()
    mark = held.mark()              # a batch begins
    held.hold(("orders", ("c1",)), row, ("client_id",), order)
    held.undo_to(mark)              # it failed: the records as they were when it began
    held.unmark()
"""

from collections.abc import Callable
from typing import Any, NamedTuple

Row = Callable[[], dict[str, Any]]
Key = tuple[str, tuple[Any, ...]]       # (table, primary key values)


class Held(NamedTuple):
    """A held-back record: its row (encoded when written), its primary key's columns, the
    value it records (what a read of it answers), and when it was first held (rows are
    written in that order: new rows are numbered as first saved, as without a batch)."""
    row: Row
    pk: tuple[str, ...]
    value: Any
    seq: int


# `Held(row, pk, value, seq)` without the Python-level `__new__` NamedTuple generates (a
# record is held ~40 times per trade): the same tuple of the same class.
_new_held = tuple.__new__


def _first_held(entry: tuple[Key, Held]) -> int:
    return entry[1].seq


class HeldRows:
    """`records`: key -> Held. Each change made while a mark is open goes into `undo_log`
    (the key and the Held it replaced or removed; None: none), so a failed batch or grouped
    write goes back to its mark (a length of the log). The log is emptied when the last
    mark closes and when the records are (committed or rolled back). Cheaper than a copy of
    the records per batch: most batches change none, and they keep ~300 in a backtest."""

    __slots__ = ("records", "undo_log", "marks", "count")

    def __init__(self) -> None:
        self.records: dict[Key, Held] = {}
        self.undo_log: list[tuple[Key, Held | None]] = []
        self.marks = 0
        self.count = 0                  # numbers the held records (Held.seq)

    def mark(self) -> int:
        """Open a mark (a batch, or a grouped write inside one): what `undo_to` returns to."""
        self.marks += 1
        return len(self.undo_log)

    def unmark(self) -> None:
        self.marks -= 1
        if not self.marks:
            self.undo_log.clear()

    def undo_to(self, mark: int) -> None:
        """The records as they were when `mark` was opened."""
        log, records = self.undo_log, self.records
        while len(log) > mark:
            key, before = log.pop()
            if before is None:
                records.pop(key, None)
            else:
                records[key] = before

    def hold(self, key: Key, row: Row, pk: tuple[str, ...], value: Any) -> None:
        """Hold `key`'s record as it is now (it keeps its place if it was held already)."""
        before = self.records.get(key)
        if self.marks:
            self.undo_log.append((key, before))
        if before is None:
            self.count += 1
            seq = self.count
        else:
            seq = before.seq
        self.records[key] = _new_held(Held, (row, pk, value, seq))

    def unhold(self, key: Key) -> None:
        before = self.records.pop(key, None)
        if before is not None and self.marks:
            self.undo_log.append((key, before))

    def put_back(self, rows: list[tuple[Key, Held]]) -> None:
        """Rows taken out to be written that could not be (unless held again meanwhile)."""
        for key, held in rows:
            self.records.setdefault(key, held)

    def in_order(self, table: str | None = None) -> list[tuple[Key, Held]]:
        """The records (of `table`; None: all) in the order they were first held."""
        rows = self.records.items() if table is None else \
            [(key, held) for key, held in self.records.items() if key[0] == table]
        return sorted(rows, key=_first_held)

    def clear(self) -> None:
        self.records.clear()
        self.undo_log.clear()
