"""The rows a replay's batches hold back (storage/write_gate.py): a batch or a grouped write
that fails is undone from a log of the changes, not from a copy of every held row. Whatever
fails, the table ends as the successful writes alone would leave it, rows numbered in the
order they were first saved (the intents are listed so), through commits, reads that write
a table's held rows first, and deletes that drop them."""

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

import storage.write_gate as write_gate
from storage.health import WriteHealth
from storage.write_gate import WriteGate


class Boom(Exception):
    """A failure inside a batch or a grouped write (not a database error)."""


@dataclass(frozen=True)
class Save:
    key: int
    value: int


@dataclass(frozen=True)
class Drop:
    key: int


@dataclass(frozen=True)
class Read:
    """A read of the table: its held rows are written first."""


@dataclass(frozen=True)
class Group:
    ops: tuple[Save | Drop, ...]
    fails: bool


Op = Save | Drop | Read | Group
keys = st.integers(0, 5)
simple = st.one_of(st.builds(Save, keys, st.integers(0, 99)), st.builds(Drop, keys))
ops = st.one_of(simple, st.just(Read()),
                st.builds(Group, st.lists(simple, max_size=4).map(tuple), st.booleans()))
batches = st.lists(st.tuples(st.lists(ops, max_size=6), st.booleans()), max_size=12)


def open_gate(path: Path) -> WriteGate:
    db = Database(path)
    # INT, not INTEGER: the rowid stays apart from the key (it numbers rows as inserted)
    db.execute("CREATE TABLE t (k INT PRIMARY KEY NOT NULL, v INT)")
    return WriteGate(db, WriteHealth())


def save(gate: WriteGate, op: Save) -> None:
    with gate.saving("t"):
        gate.upsert_later("t", (op.key,), lambda: {"k": op.key, "v": op.value}, ("k",), op)


def drop(gate: WriteGate, op: Drop) -> None:
    with gate.saving("drop"):
        gate.write("DELETE FROM t WHERE k = ?", [op.key])
        gate.drop_held("t", [(op.key,)])


def run(gate: WriteGate, op: Op) -> None:
    if isinstance(op, Save):
        save(gate, op)
    elif isinstance(op, Drop):
        drop(gate, op)
    elif isinstance(op, Read):
        gate.flush("t")
    else:
        with gate.saving("group", grouped=True):
            for inner in op.ops:
                run(gate, inner)
            if op.fails:
                raise Boom


def replay(gate: WriteGate, plan: list[tuple[list[Op], bool]]) -> None:
    for ops_of_batch, fails in plan:
        try:
            with gate.batch("candle"):
                for op in ops_of_batch:
                    with suppress(Boom):    # a failed grouped write: the batch goes on
                        run(gate, op)
                if fails:
                    raise Boom
        except Boom:
            continue
    gate.settle()


def successful(plan: list[tuple[list[Op], bool]]) -> list[Save | Drop]:
    """The writes that went through, in order."""
    def flat(op: Op) -> list[Save | Drop]:
        if isinstance(op, Group):
            return [] if op.fails else [w for inner in op.ops for w in flat(inner)]
        return [] if isinstance(op, Read) else [op]
    return [w for ops_of_batch, fails in plan if not fails
            for op in ops_of_batch for w in flat(op)]


def table(gate: WriteGate) -> list[tuple[int, int]]:
    return gate.conn.execute("SELECT k, v FROM t ORDER BY rowid").fetchall()


@settings(max_examples=300, deadline=None)
@given(plan=batches, every=st.integers(1, 4))
def test_failures_leave_what_the_successful_writes_alone_leave(
        tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[list[Op], bool]],
        every: int) -> None:
    folder = tmp_path_factory.mktemp("held")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(write_gate, "REPLAY_COMMIT_EVERY", every)
        batched = open_gate(folder / "batched.db")
        replay(batched, plan)
    direct = open_gate(folder / "direct.db")
    for write in successful(plan):
        run(direct, write)
    assert table(batched) == table(direct)
    held = batched.later
    assert held.records == {} and held.undo_log == [] and held.marks == 0


def test_a_failed_batch_gives_back_the_rows_a_read_wrote_in_their_first_order(
        tmp_path: Path) -> None:
    gate = open_gate(tmp_path / "t.db")
    with gate.batch("candle"):
        save(gate, Save(1, 10))
        save(gate, Save(2, 20))
    with pytest.raises(Boom), gate.batch("candle"):
        gate.flush("t")             # writes 1 and 2, in the batch's savepoint
        save(gate, Save(3, 30))
        raise Boom
    with gate.batch("candle"):
        save(gate, Save(3, 31))
        save(gate, Save(1, 11))
    gate.settle()
    assert table(gate) == [(1, 11), (2, 20), (3, 31)]          # as first saved
