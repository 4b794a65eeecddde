"""What a write costs in SQL statements (seen with sqlite3's trace callback), and that the
cheaper ways keep the contracts: in a replay's `Store.batch` a candle that writes nothing
issues no statement, batches share a commit, a transaction takes a savepoint only once it
writes, a record read back is answered from what is held; outside a batch (the live agent)
every write is committed before it returns; and a failed write leaves nothing, in or out
of a batch."""

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from storage import SaveStateFailure
from storage.write_gate import REPLAY_COMMIT_EVERY
from tests.positions import protected
from tests.storage_support import NOW
from trader.domain import (
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.position import PositionState
from trader.trade_store import TradeStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(tmp_path / "t.db")
    yield opened
    opened.close()


class Statements:
    """Every statement the store's connection runs while recording."""

    def __init__(self, store: TradeStore) -> None:
        self.seen: list[str] = []
        store.db.conn.set_trace_callback(self.seen.append)

    def words(self) -> list[str]:
        """The first word(s) of each statement: BEGIN, SAVEPOINT, INSERT INTO [kv] ..."""
        return [" ".join(sql.split()[:3 if sql.startswith("INSERT") else 1])
                for sql in self.seen]

    def clear(self) -> None:
        self.seen.clear()


def committed(store: TradeStore, sql: str) -> list[tuple[object, ...]]:
    """What a second connection (another process) reads: only committed rows."""
    path = store.db.execute("PRAGMA database_list").fetchone()[2]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as other:
        return other.execute(sql).fetchall()


def commit_the_batches(store: TradeStore) -> None:
    """A write outside a batch commits what the batches left (as closing the store does)."""
    store.put("outside", 1, NOW)


def intent(client_id: str = "tb-BTCUSDT-k1-sl1", status: IntentStatus = IntentStatus.PENDING,
           age: timedelta = timedelta(0)) -> Intent:
    return Intent(client_id=client_id, symbol="BTCUSDT", role=OrderRole.STOP_LOSS,
                  side=Side.SELL, type=OrderType.STOP_MARKET, quantity=Decimal("0.1"),
                  position_key="k1", created_at=NOW - age, status=status,
                  trigger_price=Decimal("49500"), reduce_only=True)


def order(status: OrderStatus = OrderStatus.NEW) -> Order:
    return Order(symbol="BTCUSDT", client_id="tb-BTCUSDT-k1-sl1", side=Side.SELL,
                 type=OrderType.STOP_MARKET, status=status, quantity=Decimal("0.1"),
                 trigger_price=Decimal("49500"), reduce_only=True, exchange_id="7",
                 updated_at=NOW)


def fill(trade_id: str = "1") -> Fill:
    return Fill(trade_id, "BTCUSDT", "tb-BTCUSDT-k1-en1", Side.BUY, Decimal("0.1"),
                Decimal("50000"), Decimal("0.02"), Decimal("0"), NOW, False, "9")


def refuse_key(store: TradeStore, key: str) -> None:
    """The database refuses to store `key` in kv (a failure after earlier writes)."""
    store.db.execute(f"CREATE TRIGGER refuse_{key} BEFORE INSERT ON kv WHEN NEW.key = '{key}' "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")


# --- a replay's batch -------------------------------------------------------------------
def test_a_candle_that_writes_nothing_issues_no_statement(store: TradeStore) -> None:
    trace = Statements(store)
    for _ in range(REPLAY_COMMIT_EVERY + 1):
        with store.batch("candle"):
            with store.transaction("step"):
                pass
    assert trace.seen == []


def test_batches_begin_at_their_first_write_and_share_one_commit(store: TradeStore) -> None:
    trace = Statements(store)
    with store.batch("candle"):
        store.append_event(NOW, "first", "BTCUSDT", {})
    with store.batch("candle"):
        store.append_event(NOW, "second", "BTCUSDT", {})
    for _ in range(REPLAY_COMMIT_EVERY - 2):
        with store.batch("candle"):
            pass
    assert trace.words() == ["BEGIN", "INSERT INTO events", "SAVEPOINT", "INSERT INTO events",
                             "RELEASE", "COMMIT"]
    assert committed(store, "SELECT kind FROM events ORDER BY id") == [("first",), ("second",)]


def test_a_transaction_whose_writes_are_held_back_takes_no_savepoint(
        store: TradeStore) -> None:
    assert store.intent("tb-BTCUSDT-k1-sl1") is None     # the store reads its intents once
    trace = Statements(store)
    with store.batch("candle"):
        with store.transaction("step"):
            store.save_position(protected(key="k1"))
            store.save_intent(intent(), NOW)
    assert trace.seen == []
    commit_the_batches(store)
    assert trace.words() == ["BEGIN", "INSERT INTO [positions]", "INSERT INTO [intents]",
                             "COMMIT", "BEGIN", "INSERT INTO [kv]", "COMMIT"]


def test_a_failed_later_write_of_a_transaction_in_a_batch_leaves_nothing(
        store: TradeStore) -> None:
    refuse_key(store, "boom")
    with store.batch("candle"):
        store.put("before", 1, NOW)
        with pytest.raises(SaveStateFailure), store.transaction("close"):
            store.save_position(protected(key="k1"))
            store.append_event(NOW, "position_closed", "BTCUSDT", {})
            store.record_fill(fill())
            store.put("boom", 1, NOW)
        store.put("after", 1, NOW)
    commit_the_batches(store)
    assert committed(store, "SELECT key FROM kv ORDER BY key") == [
        ("after",), ("before",), ("outside",)]
    assert committed(store, "SELECT * FROM events") == []
    assert committed(store, "SELECT * FROM fills") == []
    assert committed(store, "SELECT * FROM positions") == []
    assert store.health.total_failures == 1 and not store.health.failing


def test_an_intent_read_back_in_a_batch_is_answered_without_writing(
        store: TradeStore) -> None:
    assert store.intent("tb-BTCUSDT-k1-sl1") is None     # the store reads its intents once
    trace = Statements(store)
    with store.batch("candle"):
        store.save_intent(intent(), NOW)
        store.save_intent(intent(status=IntentStatus.SENT), NOW)
        known = store.intent("tb-BTCUSDT-k1-sl1")
        assert trace.seen == []
    assert known == intent(status=IntentStatus.SENT)
    assert store.intent("tb-BTCUSDT-k1-sl1") == known
    commit_the_batches(store)
    assert trace.words().count("INSERT INTO [intents]") == 1
    assert committed(store, "SELECT status FROM intents") == [("SENT",)]


def test_an_order_saved_twice_in_a_batch_is_written_once_as_it_is_last(
        store: TradeStore) -> None:
    trace = Statements(store)
    with store.batch("candle"):
        store.save_order(order())
        store.save_order(order(OrderStatus.CANCELED))
        assert store.order("tb-BTCUSDT-k1-sl1") == order(OrderStatus.CANCELED)
    assert store.order("tb-BTCUSDT-k1-sl1") == order(OrderStatus.CANCELED)
    commit_the_batches(store)
    assert trace.words().count("INSERT INTO [orders]") == 1
    assert committed(store, "SELECT status FROM orders") == [("CANCELED",)]


# --- fewer statements, the same answers ----------------------------------------------------
def test_recording_a_fill_is_one_statement_and_still_once(store: TradeStore) -> None:
    trace = Statements(store)
    assert store.record_fill(fill()) is True
    assert [w for w in trace.words() if w not in ("BEGIN", "COMMIT")] == ["INSERT INTO fills"]
    assert committed(store, "SELECT trade_id FROM fills") == [("1",)]


def test_a_fill_this_store_recorded_is_recorded_again_without_a_statement(
        store: TradeStore) -> None:
    """A close records its position's fills, which the stream's were recorded already."""
    assert store.record_fill(fill()) is True
    trace = Statements(store)
    with store.batch("candle"), store.transaction("close"):
        assert store.record_fill(fill()) is False
        assert store.record_fill(fill("2")) is True
    assert store.record_fill(fill()) is False and store.record_fill(fill("2")) is False
    assert [w for w in trace.words() if w.startswith("INSERT")] == ["INSERT INTO fills"]
    commit_the_batches(store)
    assert committed(store, "SELECT trade_id FROM fills ORDER BY trade_id") == [("1",), ("2",)]
    # another process's store (a restart) knows nothing yet: the database answers
    other = TradeStore(store.db)
    assert other.record_fill(fill()) is False


def test_a_fill_a_failed_batch_rolled_back_is_recorded_again(store: TradeStore) -> None:
    with pytest.raises(RuntimeError), store.batch("candle"):
        assert store.record_fill(fill()) is True
        raise RuntimeError("the candle's tick died")
    assert committed(store, "SELECT * FROM fills") == []
    assert store.record_fill(fill()) is True
    assert committed(store, "SELECT trade_id FROM fills") == [("1",)]


def test_whether_old_intents_exist_is_known_without_asking_the_database(
        store: TradeStore) -> None:
    store.save_intent(intent("tb-BTCUSDT-k1-sl1", IntentStatus.FILLED, timedelta(hours=7)), NOW)
    store.save_intent(intent("tb-BTCUSDT-k1-tp1", IntentStatus.SENT, timedelta(hours=1)), NOW)
    cutoff = NOW - timedelta(hours=6)
    assert store.has_intents_before(cutoff)
    trace = Statements(store)
    assert store.has_intents_before(cutoff)
    assert not store.has_intents_before(NOW - timedelta(hours=8))
    assert trace.seen == []
    assert store.purge_resolved_intents(cutoff) == 1
    assert not store.has_intents_before(cutoff)
    assert store.has_intents_before(NOW)
    # a re-saved intent that moved in time moves the answer with it
    store.save_intent(intent("tb-BTCUSDT-k1-tp1", IntentStatus.SENT, timedelta(hours=9)), NOW)
    assert store.has_intents_before(cutoff)
    store.save_intent(intent("tb-BTCUSDT-k1-tp1", IntentStatus.SENT), NOW)
    assert not store.has_intents_before(cutoff)


def test_what_a_failed_batch_rolled_back_is_not_remembered(store: TradeStore) -> None:
    old = intent("tb-BTCUSDT-k1-sl1", IntentStatus.PENDING, timedelta(hours=7))
    assert not store.has_intents_before(NOW)
    with pytest.raises(RuntimeError), store.batch("candle"):
        store.save_intent(old, NOW)
        assert store.intent(old.client_id) == old
        raise RuntimeError("the candle's tick died")
    assert store.intent(old.client_id) is None
    assert not store.has_intents_before(NOW)
    assert store.unresolved_intents() == []


def test_a_failed_transaction_is_not_remembered_outside_a_batch(store: TradeStore) -> None:
    refuse_key(store, "boom")
    with pytest.raises(SaveStateFailure), store.transaction("step"):
        store.save_intent(intent(), NOW)
        store.put("boom", 1, NOW)
    assert store.intent("tb-BTCUSDT-k1-sl1") is None
    assert not store.has_intents_before(NOW + timedelta(seconds=1))


# --- the live agent: every write committed before it returns --------------------------------
@pytest.mark.parametrize("write", ["intent", "order", "fill", "position"])
def test_outside_a_batch_a_write_is_committed_before_it_returns(
        store: TradeStore, write: str) -> None:
    table = {"intent": "intents", "order": "orders", "fill": "fills", "position": "positions"}
    {"intent": lambda: store.save_intent(intent(), NOW),
     "order": lambda: store.save_order(order()),
     "fill": lambda: store.record_fill(fill()),
     "position": lambda: store.save_position(protected(key="k1"))}[write]()
    assert not store.db.conn.in_transaction
    assert len(committed(store, f"SELECT * FROM {table[write]}")) == 1


def test_outside_a_batch_a_rewritten_intent_is_committed_each_time(store: TradeStore) -> None:
    """Write-ahead: the SENT mark is on disk before the request leaves."""
    store.save_intent(intent(), NOW)
    store.save_intent(replace(intent(), status=IntentStatus.SENT, sent_at=NOW), NOW)
    assert committed(store, "SELECT status FROM intents") == [("SENT",)]


def vm_steps(store: TradeStore, read: Callable[[], object]) -> int:
    """How much work SQLite does for `read` (virtual machine steps, in hundreds)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0
    store.db.conn.set_progress_handler(count, 100)
    try:
        read()
    finally:
        store.db.conn.set_progress_handler(None, 100)
    return steps[0]


def test_reading_the_open_positions_costs_the_same_however_many_are_closed(
        store: TradeStore) -> None:
    store.save_position(protected(key="k0"))
    few = vm_steps(store, store.open_positions)
    for n in range(300):
        store.save_position(replace(protected(key=f"c{n}"), state=PositionState.CLOSED,
                                    closed_at=NOW))
    assert [p.key for p in store.open_positions()] == ["k0"]
    assert vm_steps(store, store.open_positions) <= few + 2


def test_a_positions_intents_are_listed_by_creation_then_as_first_saved_without_a_query(
        store: TradeStore) -> None:
    """The order the database gives (created_at, ties as the rows were inserted)."""
    assert store.intent("tb-BTCUSDT-k1-en1") is None     # the store reads its intents once
    first = [intent(f"tb-BTCUSDT-k1-{role}1") for role in ("en", "sl", "tp")]
    older = intent("tb-BTCUSDT-k1-xx1", age=timedelta(minutes=5))
    other = replace(intent("tb-BTCUSDT-k2-sl1"), position_key="k2")
    for saved in (*first, older, other):
        store.save_intent(saved, NOW)
    store.save_intent(replace(first[0], status=IntentStatus.FILLED), NOW)  # re-saved: same place
    trace = Statements(store)
    listed = store.intents_for("BTCUSDT", "k1")
    assert trace.seen == []
    assert [i.client_id for i in listed] == [older.client_id] + [i.client_id for i in first]
    assert listed[1].status is IntentStatus.FILLED
    assert store.intents_for("BTCUSDT", "k9") == []
    reopened = TradeStore.open(store.db.execute("PRAGMA database_list").fetchone()[2])
    assert reopened.intents_for("BTCUSDT", "k1") == listed    # as the database lists them
    reopened.close()


def test_reading_a_days_closed_positions_costs_the_same_however_many_closed_before(
        store: TradeStore) -> None:
    def close(key: str, at: datetime) -> None:
        store.save_position(replace(protected(key=key), state=PositionState.CLOSED,
                                    closed_at=at))
    close("today", NOW)
    since = NOW - timedelta(hours=1)
    few = vm_steps(store, lambda: store.closed_positions(since))
    for n in range(300):
        close(f"old{n}", NOW - timedelta(days=2, minutes=n))
    assert [p.key for p in store.closed_positions(since)] == ["today"]
    assert vm_steps(store, lambda: store.closed_positions(since)) <= few + 2


def test_a_save_that_cannot_read_the_intents_back_still_fails_as_a_save(
        store: TradeStore) -> None:
    """The memory of the intents is read lazily; a write never turns that read's error into
    anything but SaveStateFailure (entries must not be sent unjournaled)."""
    def no_intents(action: int, table: str | None, *_: object) -> int:
        return sqlite3.SQLITE_DENY if table == "intents" else sqlite3.SQLITE_OK
    store.db.conn.set_authorizer(no_intents)
    with pytest.raises(SaveStateFailure):
        store.save_intent(intent(), NOW)
    with pytest.raises(SaveStateFailure):
        store.purge_resolved_intents(NOW)
    store.db.conn.set_authorizer(None)
    assert store.intent("tb-BTCUSDT-k1-sl1") is None
    assert store.health.total_failures == 2


def test_a_live_transaction_takes_no_savepoint_per_write_and_a_failed_write_leaves_nothing(
        store: TradeStore) -> None:
    """Live, several writes as one state change: BEGIN, the writes, COMMIT (no savepoint
    around each). A write refused inside it (here by an ABORT trigger) raises
    SaveStateFailure and leaves no trace: handled by the caller, the others are committed;
    not handled, none is, and the failed state change is counted."""
    store.db.execute("CREATE TRIGGER no_sl2 BEFORE INSERT ON intents WHEN "
                     "NEW.client_id = 'tb-BTCUSDT-k1-sl2' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    seen = Statements(store)
    with store.transaction("answer"):      # the caller handles the refused write
        store.save_intent(intent("tb-BTCUSDT-k1-sl1"), NOW)
        with pytest.raises(SaveStateFailure):
            store.save_intent(intent("tb-BTCUSDT-k1-sl2"), NOW)
        store.save_order(order())
    assert [w for w in seen.words() if w in ("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT")] \
        == ["BEGIN", "COMMIT"]
    assert committed(store, "SELECT client_id FROM intents") == [("tb-BTCUSDT-k1-sl1",)]
    assert len(committed(store, "SELECT client_id FROM orders")) == 1
    assert store.intent("tb-BTCUSDT-k1-sl2") is None
    with pytest.raises(SaveStateFailure):       # not handled inside: the state change fails
        with store.transaction("answer"):
            store.save_order(replace(order(), status=OrderStatus.FILLED))
            store.save_intent(intent("tb-BTCUSDT-k1-sl2"), NOW)
    assert committed(store, "SELECT status FROM orders") == [("NEW",)]
    assert store.health.total_failures == 1
