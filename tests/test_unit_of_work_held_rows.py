"""Inside the live tick's unit of work (storage/unit_of_work.py) a record saved with
`upsert_later` (intents, orders, positions, `put_later` state) is held until the unit's next
commit, as a replay batch holds it: a record saved twice between two commit points is
written once, as last saved, and what each commit point makes durable is what was saved
before it; a refused commit, or a failed grouped write, keeps none of the rows it held."""

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from storage import SaveStateFailure
from tests.positions import protected
from tests.storage_support import NOW
from tests.test_store_statements import Statements, committed, intent
from trader.domain import IntentStatus
from trader.position import PositionState
from trader.trade_store import TradeStore

SQLITE_TRANSACTION = 22     # the authorizer's action code for BEGIN / COMMIT / ROLLBACK


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(tmp_path / "t.db")
    yield opened
    opened.close()


def refuse_next_commit(store: TradeStore) -> None:
    left = [1]

    def authorize(action: int, arg1: str | None, *_: object) -> int:
        if action == SQLITE_TRANSACTION and arg1 == "COMMIT" and left[0] > 0:
            left[0] -= 1
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    store.db.conn.set_authorizer(authorize)


def saved_states(store: TradeStore) -> list[tuple[object, ...]]:
    return committed(store, "SELECT key, state FROM positions ORDER BY rowid")


async def test_a_record_saved_twice_between_commit_points_is_written_once_as_last_saved(
        store: TradeStore) -> None:
    attaching = replace(protected(), state=PositionState.ATTACHING)
    sent = intent(status=IntentStatus.SENT)
    at_the_commit_point: list[object] = []
    statements = Statements(store)

    async def tick() -> None:
        store.save_position(replace(attaching, state=PositionState.ENTERING))
        store.save_intent(sent, NOW)
        store.commit_point("before the send")           # as the executor before a send
        at_the_commit_point.append(saved_states(store))
        at_the_commit_point.append(committed(store, "SELECT status FROM intents"))
        store.save_position(attaching)
        store.append_event(NOW, "leg_placed", "BTCUSDT", {})
        store.save_position(replace(attaching, state=PositionState.PROTECTED))
        assert store.open_positions()[0].state is PositionState.PROTECTED   # read back
        assert saved_states(store) == [(attaching.key, "ENTERING")]         # not durable

    await store.unit_of_work(tick())
    assert at_the_commit_point == [[(attaching.key, "ENTERING")], [("SENT",)]]
    assert saved_states(store) == [(attaching.key, "PROTECTED")]
    assert statements.words().count("INSERT INTO [positions]") == 2    # was 3
    assert statements.words().count("COMMIT") == 2


async def test_a_refused_commit_keeps_none_of_the_rows_held_since_the_last_one(
        store: TradeStore) -> None:
    entering = replace(protected(), state=PositionState.ENTERING)
    failures: list[str] = []

    async def tick() -> None:
        store.save_position(entering)
        store.commit_point("first")
        store.save_position(replace(entering, state=PositionState.ATTACHING))
        store.save_intent(intent(status=IntentStatus.SENT), NOW)
        refuse_next_commit(store)
        try:
            store.commit_point("second")
        except SaveStateFailure as failure:
            failures.append(failure.what)
        # the caches forgot, and nothing held is left: reads give what the disk has
        assert [p.state for p in store.open_positions()] == [PositionState.ENTERING]
        assert store.intent(intent().client_id) is None

    await store.unit_of_work(tick())
    assert failures == ["second"]
    assert saved_states(store) == [(entering.key, "ENTERING")]
    assert committed(store, "SELECT count(*) FROM intents") == [(0,)]
    assert store.health.total_failures == 1


async def test_a_failed_grouped_write_keeps_none_of_its_held_rows(store: TradeStore) -> None:
    entering = replace(protected(), state=PositionState.ENTERING)
    held_before = intent(status=IntentStatus.SENT)

    async def tick() -> None:
        store.save_position(entering)
        store.commit_point("first")
        store.save_intent(held_before, NOW)            # held before the group: kept
        with pytest.raises(SaveStateFailure):
            with store.transaction("a step that fails"):
                store.save_position(replace(entering, state=PositionState.ATTACHING))
                store._gate.write("UPDATE events SET kind = 'x'")   # refused by its trigger
                store.append_event(NOW, "never", "BTCUSDT", {})     # (never reached)
        store.append_event(NOW, "after", "BTCUSDT", {})

    store.append_event(NOW, "before", "BTCUSDT", {})     # the trigger has a row to refuse
    await store.unit_of_work(tick())
    assert saved_states(store) == [(entering.key, "ENTERING")]
    assert committed(store, "SELECT status FROM intents") == [("SENT",)]
    assert committed(store, "SELECT kind FROM events ORDER BY id") == [("before",), ("after",)]


async def test_held_rows_that_cannot_be_written_at_the_commit_point_are_all_dropped(
        store: TradeStore) -> None:
    """The commit point writes the held rows first: one refused fails the commit point,
    which rolls back and keeps none of them (a later commit writes nothing of them)."""
    entering = replace(protected(), state=PositionState.ENTERING)
    failures: list[str] = []

    def refuse_positions(action: int, arg1: str | None, *_: object) -> int:
        return sqlite3.SQLITE_DENY if arg1 == "positions" and action in (18, 23) \
            else sqlite3.SQLITE_OK      # SQLITE_INSERT, SQLITE_UPDATE

    async def tick() -> None:
        store.save_intent(intent(status=IntentStatus.SENT), NOW)   # held first: written first
        store.save_position(entering)
        store.db.conn.set_authorizer(refuse_positions)
        try:
            store.commit_point("before the send")
        except SaveStateFailure as failure:
            failures.append(failure.what)
        store.db.conn.set_authorizer(None)
        store.append_event(NOW, "after", "BTCUSDT", {})

    await store.unit_of_work(tick())
    assert failures == ["before the send"]
    assert saved_states(store) == []
    assert committed(store, "SELECT count(*) FROM intents") == [(0,)]
    assert committed(store, "SELECT kind FROM events") == [("after",)]


async def test_a_group_that_only_holds_rows_takes_no_savepoint_and_a_failed_one_keeps_none(
        store: TradeStore) -> None:
    """An order's answer (its intent and order, both held until the commit) writes nothing
    inside the unit: its savepoint would be an empty SAVEPOINT/RELEASE pair. A group that
    writes takes it before its first write, and rolls its writes back when it fails."""
    statements = Statements(store)

    async def tick() -> None:
        with store.transaction("order answered"):
            store.save_intent(intent(status=IntentStatus.ACKED), NOW)
        with pytest.raises(RuntimeError), store.transaction("step"):
            store.save_position(protected())
            store.append_event(NOW, "leg_placed", "BTCUSDT", {})
            raise RuntimeError("the step failed")

    await store.unit_of_work(tick())
    assert statements.words()[:4] == ["BEGIN", "SAVEPOINT", "INSERT INTO events", "ROLLBACK"]
    assert committed(store, "SELECT status FROM intents") == [("ACKED",)]
    assert committed(store, "SELECT kind FROM events") == []
    assert saved_states(store) == []
