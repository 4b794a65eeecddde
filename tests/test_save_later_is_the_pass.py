"""`WriteGate.save_later` holds a record without a pass through the gate where that pass
would only have held it (storage/write_gate.py). The shortcut must be exact: in every
context a store meets (outside everything, a replay batch, a grouped write inside one, the
live unit of work, a grouped write inside it, a group that fails), the statements run, the
rows held, the health's report and what ends up committed are those of
`with gate.saving(what): gate.upsert_later(...)`."""

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage import SaveStateFailure
from tests.positions import protected
from tests.storage_support import NOW
from tests.test_store_statements import Statements
from tests.test_store_statements import intent as stop_intent
from tests.test_store_statements import order as stop_order
from trader.domain import IntentStatus
from trader.trade_store import TradeStore

Save = Callable[[TradeStore, str, int], None]


def through_the_pass(store: TradeStore, key: str, value: int) -> None:
    gate = store._gate
    with gate.saving(f"state {key}"):
        gate.upsert_later("kv", (key,), _row(key, value), ("key",), value)


def shortcut(store: TradeStore, key: str, value: int) -> None:
    store._gate.save_later("state", "kv", (key,), _row(key, value), ("key",), value)


def _row(key: str, value: int) -> Callable[[], dict[str, Any]]:
    return lambda: {"key": key, "value": str(value), "updated_at": NOW.isoformat()}


def saves(store: TradeStore, save: Save) -> None:
    save(store, "a", 1)
    save(store, "b", 2)
    save(store, "a", 3)             # held again: keeps its place, last value


def outside(store: TradeStore, save: Save) -> None:
    saves(store, save)


def in_a_batch(store: TradeStore, save: Save) -> None:
    for _ in range(2):
        with store.batch("candle"):
            saves(store, save)


def grouped_in_a_batch(store: TradeStore, save: Save) -> None:
    with store.batch("candle"):
        store.append_event(NOW, "first", "BTCUSDT", {})     # the batch's savepoint
        with store.transaction("step"):
            saves(store, save)
            store.append_event(NOW, "step", "BTCUSDT", {})


def failed_group_in_a_batch(store: TradeStore, save: Save) -> None:
    with store.batch("candle"):
        save(store, "kept", 1)
        with pytest.raises(RuntimeError), store.transaction("step"):
            saves(store, save)
            raise RuntimeError("the step failed")


def in_the_unit(store: TradeStore, save: Save) -> None:
    async def tick() -> None:
        saves(store, save)
        store.commit_point("before a send")
        save(store, "c", 4)
    asyncio.run(store.unit_of_work(tick()))


def grouped_in_the_unit(store: TradeStore, save: Save) -> None:
    async def tick() -> None:
        with store.transaction("answer"):
            saves(store, save)
            store.append_event(NOW, "answer", "BTCUSDT", {})
        with pytest.raises(RuntimeError), store.transaction("failed"):
            save(store, "gone", 5)
            raise RuntimeError("the group failed")
    asyncio.run(store.unit_of_work(tick()))


CONTEXTS = [outside, in_a_batch, grouped_in_a_batch, failed_group_in_a_batch, in_the_unit,
            grouped_in_the_unit]


def observed(tmp_path: Path, name: str, context: Callable[[TradeStore, Save], None],
             save: Save, failing_before: bool) -> dict[str, object]:
    path = tmp_path / f"{name}.db"
    store = TradeStore.open(path)
    try:
        if failing_before:      # a failure streak: the next outermost success reports it
            store.health.failed(SaveStateFailure("earlier", RuntimeError("disk")))
            store.health.take_alert()
        statements = Statements(store)
        context(store, save)
        held = [(key, held.value, held.seq) for key, held in store._gate.later.in_order()]
        health = (store.health.in_a_row, store.health.pending_recovery)
        seen = [sql for sql in statements.seen if "schema" not in sql]
    finally:
        store.close()
    with sqlite3.connect(path) as other:    # closed: every batch is committed now
        rows = other.execute("SELECT key, value FROM kv ORDER BY rowid").fetchall()
    return {"statements": seen, "held": held, "health": health, "committed": rows}


@pytest.mark.parametrize("failing_before", [False, True])
@pytest.mark.parametrize("context", CONTEXTS, ids=lambda context: context.__name__)
def test_the_shortcut_does_what_the_pass_does(tmp_path: Path, context: Any,
                                              failing_before: bool) -> None:
    long_way = observed(tmp_path, "pass", context, through_the_pass, failing_before)
    short_way = observed(tmp_path, "shortcut", context, shortcut, failing_before)
    assert short_way == long_way
    assert long_way["committed"], "the context wrote nothing: it shows nothing"


def test_a_failed_write_outside_a_batch_still_raises_and_is_counted(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    try:
        store.db.execute("DROP TABLE kv")
        with pytest.raises(SaveStateFailure, match="state a"):
            shortcut(store, "a", 1)
        assert store.health.in_a_row == 1
    finally:
        store.db.close()


@pytest.mark.parametrize(("table", "save", "what"), [
    ("positions", lambda store: store.save_position(protected(key="k1")),
     "position BTCUSDT k1 PROTECTED"),
    ("intents", lambda store: store.save_intent(stop_intent(status=IntentStatus.SENT), NOW),
     "intent tb-BTCUSDT-k1-sl1 SENT"),
    ("orders", lambda store: store.save_order(stop_order()), "order tb-BTCUSDT-k1-sl1 NEW"),
    ("kv", lambda store: store.put_later("guards", lambda: 1, NOW), "state guards"),
])
def test_a_failed_save_names_the_record_and_its_status(
        tmp_path: Path, table: str, save: Callable[[TradeStore], None], what: str) -> None:
    """The name is built only when the pass runs (a held record never needs it): the same
    text as before, on the exception and in the write health."""
    store = TradeStore.open(tmp_path / "t.db")
    try:
        store.db.execute(f"DROP TABLE {table}")
        with pytest.raises(SaveStateFailure) as failed:
            save(store)
        assert failed.value.what == what
        assert store.health.last is not None and store.health.last.what == what
    finally:
        store.db.close()


# --- `WriteGate.write_one`: a statement without an inner pass -------------------------
EVENT = "INSERT INTO events (id, at, kind, symbol, body) VALUES (?, ?, 'step', '', '{}')"


def statement_through_the_pass(store: TradeStore, event_id: int) -> None:
    with store._gate.saving(f"event {event_id}"):
        store._gate.write(EVENT, [event_id, NOW.isoformat()])


def statement_shortcut(store: TradeStore, event_id: int) -> None:
    store._gate.write_one(f"event {event_id}", EVENT, [event_id, NOW.isoformat()])


def statements_in_groups(store: TradeStore, write: Callable[[TradeStore, int], None]) -> None:
    """Writes outside, in a batch's group and in the unit's group; the same event id
    twice inside a group (a failed statement: the group fails, named by the inner write)."""
    write(store, 1)
    with store.batch("candle"):
        with store.transaction("step"):
            write(store, 2)
        with pytest.raises(SaveStateFailure, match="could not save event 2: UNIQUE"), \
                store.transaction("step again"):
            write(store, 3)
            write(store, 2)

    async def tick() -> None:
        with store.transaction("answer"):
            write(store, 4)
        with pytest.raises(SaveStateFailure, match="could not save event 4: UNIQUE"), \
                store.transaction("failed"):
            write(store, 5)
            write(store, 4)
    asyncio.run(store.unit_of_work(tick()))


def observed_statements(tmp_path: Path, name: str,
                        write: Callable[[TradeStore, int], None]) -> dict[str, object]:
    path = tmp_path / f"{name}.db"
    store = TradeStore.open(path)
    try:
        statements = Statements(store)
        statements_in_groups(store, write)
        health = (store.health.in_a_row, store.health.total_failures)
        seen = [sql for sql in statements.seen if "schema" not in sql]
    finally:
        store.close()
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT id FROM events ORDER BY id").fetchall()
    return {"statements": seen, "health": health, "committed": rows}


def test_a_statement_without_its_inner_pass_does_what_the_pass_does(tmp_path: Path) -> None:
    long_way = observed_statements(tmp_path, "pass", statement_through_the_pass)
    short_way = observed_statements(tmp_path, "shortcut", statement_shortcut)
    assert short_way == long_way
    assert long_way["committed"] == [(1,), (2,), (4,)]
