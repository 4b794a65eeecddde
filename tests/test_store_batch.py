"""`Store.batch`, the replay's candles (trader/backtest.py): what another reader of the file
sees, what a read inside the batch sees, what a failed write or batch leaves, and that
outside a batch (the live agent) every write is committed at once."""

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from storage import SaveStateFailure
from storage.write_gate import REPLAY_COMMIT_EVERY
from tests.positions import protected
from tests.storage_support import NOW
from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side
from trader.trade_store import TradeStore


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def store(db_file: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(db_file)
    yield opened
    opened.close()


def committed(db_file: Path, sql: str) -> list[tuple[object, ...]]:
    """What a second connection (another process) reads: only committed rows."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as other:
        return other.execute(sql).fetchall()


def committed_positions(db_file: Path) -> list[tuple[object, ...]]:
    return committed(db_file, "SELECT key, state FROM positions ORDER BY key")


def entry_intent(status: IntentStatus = IntentStatus.PENDING) -> Intent:
    return Intent(client_id="tb-BTCUSDT-k1-E1", symbol="BTCUSDT", role=OrderRole.ENTRY,
                  side=Side.BUY, type=OrderType.MARKET, quantity=Decimal("0.1"),
                  created_at=NOW, position_key="k1", status=status)


def test_outside_a_batch_every_write_is_committed_at_once(store: TradeStore, db_file: Path) -> None:
    store.save_position(protected(key="k1"))
    assert committed_positions(db_file) == [("k1", "PROTECTED")]


def test_batches_are_committed_together_with_the_last_version(
        store: TradeStore, db_file: Path) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k1", best_price=Decimal("50100")))
        store.save_position(protected(key="k1", best_price=Decimal("50200")))
        store.append_event(NOW, "note", "BTCUSDT", {"n": 1})
    for _ in range(REPLAY_COMMIT_EVERY - 2):
        with store.batch("candle"):
            pass
    assert committed_positions(db_file) == []
    with store.batch("candle"):
        store.save_position(protected(key="k1", best_price=Decimal("50300")))
    assert committed_positions(db_file) == [("k1", "PROTECTED")]
    saved = store.position("BTCUSDT", "k1")
    assert saved is not None and saved.best_price == Decimal("50300")
    assert [e["kind"] for e in store.events()] == ["note"]


def test_closing_the_store_commits_the_batches(store: TradeStore, db_file: Path) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k1"))
        store.append_event(NOW, "note", "BTCUSDT", {})
    store.close()
    assert committed_positions(db_file) == [("k1", "PROTECTED")]


def test_a_write_outside_a_batch_commits_the_batches_and_itself_at_once(
        store: TradeStore, db_file: Path) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k1"))
    store.save_position(protected(key="k2"))
    assert committed_positions(db_file) == [("k1", "PROTECTED"), ("k2", "PROTECTED")]
    assert not store.db.conn.in_transaction


def test_reads_inside_a_batch_see_its_writes(store: TradeStore) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k1"))
        store.save_intent(entry_intent(), NOW)
        store.save_intent(entry_intent(IntentStatus.SENT), NOW)
        assert [p.key for p in store.open_positions()] == ["k1"]
        known = store.intent("tb-BTCUSDT-k1-E1")
        assert known is not None and known.status is IntentStatus.SENT
        assert [i.status for i in store.unresolved_intents()] == [IntentStatus.SENT]


def test_a_failed_transaction_inside_a_batch_keeps_none_of_its_writes(
        store: TradeStore, db_file: Path) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k0"))
        with pytest.raises(SaveStateFailure):
            with store.transaction("step"):
                store.save_position(protected(key="k1"))
                store.append_event(NOW, "step", "BTCUSDT", {})
                store.db.execute("INSERT INTO no_such_table VALUES (1)")  # fails the step
        store.append_event(NOW, "after", "BTCUSDT", {})
    store.close()
    assert committed(db_file, "SELECT kind FROM events") == [("after",)]
    assert store.health.in_a_row == 0 and store.health.total_failures == 1


def test_a_failed_batch_is_rolled_back_whole(store: TradeStore, db_file: Path) -> None:
    with pytest.raises(RuntimeError):
        with store.batch("candle"):
            store.save_position(protected(key="k1"))
            store.append_event(NOW, "note", "BTCUSDT", {})
            raise RuntimeError("the candle's tick died")
    assert committed_positions(db_file) == []
    assert store.events() == []
    store.save_position(protected(key="k2"))      # and the store works on, unbatched
    assert committed_positions(db_file) == [("k2", "PROTECTED")]


def test_a_failed_batch_undoes_only_itself(store: TradeStore, db_file: Path) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k1"))
        store.append_event(NOW, "kept", "BTCUSDT", {})
    with pytest.raises(RuntimeError):
        with store.batch("candle"):
            store.save_position(protected(key="k1", best_price=Decimal("50100")))
            store.save_position(protected(key="k2"))
            store.append_event(NOW, "undone", "BTCUSDT", {})
            raise RuntimeError("the candle's tick died")
    kept = store.position("BTCUSDT", "k1")
    assert kept is not None and kept.best_price is None
    store.close()
    assert committed_positions(db_file) == [("k1", "PROTECTED")]
    assert committed(db_file, "SELECT kind FROM events") == [("kept",)]


def test_one_batch_entered_again_is_a_batch_each_time(store: TradeStore, db_file: Path) -> None:
    """The backtest enters one `Batch` per candle (trader/backtest.py): each entry is a
    batch of its own, committed on the same cadence, a failed one undoing only itself."""
    candle = store.batch("candle")
    with candle:
        store.save_position(protected(key="k1"))
        store.append_event(NOW, "kept", "BTCUSDT", {})
    with pytest.raises(RuntimeError):
        with candle:
            store.save_position(protected(key="k1", best_price=Decimal("50100")))
            store.append_event(NOW, "undone", "BTCUSDT", {})
            raise RuntimeError("the candle's tick died")
    for _ in range(REPLAY_COMMIT_EVERY - 2):
        with candle:
            pass
    assert committed_positions(db_file) == []
    with candle:        # the REPLAY_COMMIT_EVERY-th batch commits them
        pass
    assert committed_positions(db_file) == [("k1", "PROTECTED")]
    assert committed(db_file, "SELECT kind FROM events") == [("kept",)]
