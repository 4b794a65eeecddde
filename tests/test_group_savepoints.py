"""A grouped write inside a replay batch (storage/write_gate.py `write`) takes no savepoint
of its own where one would change nothing: when its first write is also the batch's first
(it rolls back to the batch's savepoint, which stays the batch's), and when that first write
is its `last` (a journaled step's entry, a one-chunk intent cleanup: one statement, which
SQLite undoes by itself). The cases where a savepoint is needed still take one and roll
back as a unit, a failed write still names what failed, and a write after a `last` one is
refused."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import SaveStateFailure
from tests.positions import protected
from tests.storage_support import NOW
from tests.test_store_statements import (
    Statements,
    commit_the_batches,
    committed,
    fill,
    intent,
    refuse_key,
)
from trader import intent_records
from trader.domain import IntentStatus
from trader.trade_store import TradeStore


def a_refused_close_between_two_events(store: TradeStore) -> None:
    """An event, a close's group of three writes whose last is refused ("boom"), an event."""
    store.append_event(NOW, "before", "BTCUSDT", {})
    with pytest.raises(SaveStateFailure), store.transaction("close"):
        store.save_position(protected(key="k1"))
        store.record_fill(fill())
        store.put("boom", 1, NOW)
    store.append_event(NOW, "after", "BTCUSDT", {})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(tmp_path / "t.db")
    assert opened.intent("none") is None     # the store reads its intents once
    earlier_batch(opened)
    yield opened
    opened.close()


def earlier_batch(store: TradeStore, kind: str = "earlier") -> None:
    """A batch that leaves the replay's transaction open (not committed yet)."""
    with store.batch("candle"):
        store.put_later(kind, lambda: 1, NOW)
        store.append_event(NOW, kind, "BTCUSDT", {})


def refuse_events(store: TradeStore, kind: str) -> None:
    store.db.execute(f"CREATE TRIGGER refuse_{kind} BEFORE INSERT ON events WHEN "
                     f"NEW.kind = '{kind}' BEGIN SELECT RAISE(ABORT, 'refused'); END")


def savepoints(trace: Statements) -> list[str]:
    return [w for w in trace.words() if w in ("SAVEPOINT", "RELEASE", "ROLLBACK")]


def test_a_journaled_step_in_a_batch_is_one_statement_without_a_savepoint(
        store: TradeStore) -> None:
    trace = Statements(store)
    with store.batch("candle"):
        store.append_event(NOW, "before", "BTCUSDT", {})
        store.save_step("step BTCUSDT LegPlaced", protected(key="k1"), NOW, "leg_placed", "{}")
    assert trace.words() == ["SAVEPOINT", "INSERT INTO events", "INSERT INTO events",
                             "RELEASE"]         # the batch's savepoint only
    commit_the_batches(store)
    assert committed(store, "SELECT kind FROM events ORDER BY id") == [
        ("earlier",), ("before",), ("leg_placed",)]
    assert committed(store, "SELECT key, state FROM positions") == [("k1", "PROTECTED")]


def test_a_step_whose_entry_is_refused_keeps_neither_and_names_the_entry(
        store: TradeStore) -> None:
    refuse_events(store, "leg_placed")
    with store.batch("candle"):
        store.append_event(NOW, "before", "BTCUSDT", {})
        with pytest.raises(SaveStateFailure) as failed:
            store.save_step("step BTCUSDT LegPlaced", protected(key="k1"), NOW, "leg_placed",
                            "{}")
        store.append_event(NOW, "after", "BTCUSDT", {})
    assert failed.value.what == "event leg_placed"
    assert store.health.last is not None and store.health.last.what == "event leg_placed"
    assert store.open_positions() == []         # the held record went with the entry
    commit_the_batches(store)
    assert committed(store, "SELECT kind FROM events ORDER BY id") == [
        ("earlier",), ("before",), ("after",)]
    assert committed(store, "SELECT * FROM positions") == []


def test_a_write_after_the_groups_last_one_is_refused(store: TradeStore) -> None:
    gate = store._gate
    with store.batch("candle"):
        store.append_event(NOW, "before", "BTCUSDT", {})
        with pytest.raises(RuntimeError, match="after the group's last"), \
                store.transaction("step"):
            gate.write("INSERT INTO events (at, kind, symbol, body) VALUES (?, ?, ?, ?)",
                       [NOW.isoformat(), "last", "BTCUSDT", "{}"], last=True)
            gate.write("INSERT INTO events (at, kind, symbol, body) VALUES (?, ?, ?, ?)",
                       [NOW.isoformat(), "second", "BTCUSDT", "{}"])
        store.append_event(NOW, "after", "BTCUSDT", {})     # the next group is not refused
    commit_the_batches(store)
    kinds = committed(store, "SELECT kind FROM events ORDER BY id")
    assert ("second",) not in kinds and ("after",) in kinds


def test_a_group_of_two_statements_after_other_writes_takes_its_own_savepoint(
        store: TradeStore) -> None:
    refuse_key(store, "boom")
    trace = Statements(store)
    with store.batch("candle"):
        a_refused_close_between_two_events(store)
    assert savepoints(trace) == ["SAVEPOINT", "SAVEPOINT", "ROLLBACK", "RELEASE", "RELEASE"]
    commit_the_batches(store)
    assert committed(store, "SELECT kind FROM events ORDER BY id") == [
        ("earlier",), ("before",), ("after",)]
    assert committed(store, "SELECT * FROM fills") == []
    assert committed(store, "SELECT * FROM positions") == []


def test_a_group_that_is_the_batchs_first_write_rolls_back_to_the_batchs_savepoint(
        store: TradeStore) -> None:
    """One savepoint for both: the failed group leaves nothing, the batch's later writes
    are kept, and the batch can still undo itself whole."""
    refuse_key(store, "boom")
    trace = Statements(store)
    with store.batch("candle"):
        with pytest.raises(SaveStateFailure), store.transaction("close"):
            store.save_position(protected(key="k1"))
            store.record_fill(fill())
            store.put("boom", 1, NOW)
        store.append_event(NOW, "after", "BTCUSDT", {})
    assert savepoints(trace) == ["SAVEPOINT", "ROLLBACK", "RELEASE"]
    with pytest.raises(RuntimeError), store.batch("candle"):
        with store.transaction("close"):
            store.record_fill(fill("2"))
            store.append_event(NOW, "closed", "BTCUSDT", {})
        store.append_event(NOW, "later", "BTCUSDT", {})
        raise RuntimeError("the candle's tick died")
    commit_the_batches(store)
    assert committed(store, "SELECT kind FROM events ORDER BY id") == [
        ("earlier",), ("after",)]
    assert committed(store, "SELECT * FROM fills") == []
    assert committed(store, "SELECT * FROM positions") == []
    assert committed(store, "SELECT key FROM kv ORDER BY key") == [("earlier",), ("outside",)]


def test_an_intent_cleanup_of_several_chunks_takes_a_savepoint_and_fails_whole(
        store: TradeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intent_records, "PURGE_CHUNK", 2)
    ids = [f"tb-BTCUSDT-k1-sl{n}" for n in range(1, 5)]
    for client_id in ids:
        store.save_intent(intent(client_id, IntentStatus.FILLED), NOW)
    commit_the_batches(store)
    store.db.execute("CREATE TRIGGER keep_sl4 BEFORE DELETE ON intents WHEN "
                     "OLD.client_id = 'tb-BTCUSDT-k1-sl4' BEGIN SELECT RAISE(ABORT, 'kept'); END")
    earlier_batch(store, "again")
    trace = Statements(store)
    with store.batch("candle"):
        store.append_event(NOW, "before", "BTCUSDT", {})
        with pytest.raises(SaveStateFailure):
            store.purge_resolved_intents(NOW + NOW.resolution)
    assert savepoints(trace) == ["SAVEPOINT", "SAVEPOINT", "ROLLBACK", "RELEASE", "RELEASE"]
    commit_the_batches(store)
    assert committed(store, "SELECT count(*) FROM intents") == [(4,)]
    assert [i.client_id for i in store.unresolved_intents()] == []
    assert store.intent(ids[0]) is not None


def test_an_intent_cleanup_of_one_chunk_takes_no_savepoint(store: TradeStore) -> None:
    store.save_intent(intent("tb-BTCUSDT-k1-sl1", IntentStatus.FILLED), NOW)
    earlier_batch(store, "again")
    with store.batch("candle"):
        store.save_intent(intent("tb-BTCUSDT-k1-sl2", IntentStatus.FILLED), NOW)  # held
        trace = Statements(store)
        store.append_event(NOW, "before", "BTCUSDT", {})
        assert store.purge_resolved_intents(NOW + NOW.resolution) == 2
    assert trace.words() == ["SAVEPOINT", "INSERT INTO events", "DELETE", "RELEASE"]
    commit_the_batches(store)
    assert committed(store, "SELECT count(*) FROM intents") == [(0,)]


# --- the live tick's unit of work (storage/unit_of_work.py): the same rule -------------------
@pytest.fixture
def live(tmp_path: Path) -> Iterator[TradeStore]:
    """A store with no batch open: its unit of work runs (a live tick's)."""
    opened = TradeStore.open(tmp_path / "live.db")
    assert opened.intent("none") is None
    yield opened
    opened.close()


async def test_a_journaled_step_in_the_live_unit_is_one_statement_without_a_savepoint(
        live: TradeStore) -> None:
    trace = Statements(live)

    async def tick() -> None:
        live.append_event(NOW, "before", "BTCUSDT", {})
        live.save_step("step BTCUSDT LegPlaced", protected(key="k1"), NOW, "leg_placed", "{}")
    await live.unit_of_work(tick())
    assert savepoints(trace) == []
    assert committed(live, "SELECT kind FROM events ORDER BY id") == [
        ("before",), ("leg_placed",)]
    assert committed(live, "SELECT key, state FROM positions") == [("k1", "PROTECTED")]


async def test_a_live_step_whose_entry_is_refused_keeps_neither_and_the_unit_goes_on(
        live: TradeStore) -> None:
    refuse_events(live, "leg_placed")

    async def tick() -> None:
        live.append_event(NOW, "before", "BTCUSDT", {})
        with pytest.raises(SaveStateFailure) as failed:
            live.save_step("step BTCUSDT LegPlaced", protected(key="k1"), NOW, "leg_placed",
                           "{}")
        assert failed.value.what == "event leg_placed"
        live.append_event(NOW, "after", "BTCUSDT", {})
    await live.unit_of_work(tick())
    assert live.open_positions() == []          # the held record went with the entry
    assert committed(live, "SELECT kind FROM events ORDER BY id") == [("before",), ("after",)]
    assert committed(live, "SELECT * FROM positions") == []


async def test_a_live_group_of_two_statements_still_takes_its_savepoint_and_rolls_back(
        live: TradeStore) -> None:
    """The negative case: a group whose first write is not its last keeps its savepoint."""
    refuse_key(live, "boom")
    trace = Statements(live)

    async def tick() -> None:
        a_refused_close_between_two_events(live)
    await live.unit_of_work(tick())
    assert savepoints(trace) == ["SAVEPOINT", "ROLLBACK", "RELEASE"]
    assert committed(live, "SELECT kind FROM events ORDER BY id") == [("before",), ("after",)]
    assert committed(live, "SELECT * FROM fills") == []
    assert committed(live, "SELECT * FROM positions") == []


async def test_a_live_write_after_the_groups_last_one_is_refused(live: TradeStore) -> None:
    gate = live._gate
    insert = "INSERT INTO events (at, kind, symbol, body) VALUES (?, ?, ?, ?)"

    async def tick() -> None:
        with pytest.raises(RuntimeError, match="after the group's last"), \
                live.transaction("step"):
            gate.write(insert, [NOW.isoformat(), "last", "BTCUSDT", "{}"], last=True)
            gate.write(insert, [NOW.isoformat(), "second", "BTCUSDT", "{}"])
        live.append_event(NOW, "after", "BTCUSDT", {})      # the next group is not refused
    await live.unit_of_work(tick())
    kinds = committed(live, "SELECT kind FROM events ORDER BY id")
    assert ("second",) not in kinds and ("after",) in kinds
