"""`Store.batch`, the replay's one commit per candle (trader/backtest.py): what another
reader of the file sees, what a read inside the batch sees, what a failed write leaves, and
that outside a batch (the live agent) every write is committed at once."""

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from storage import SaveStateFailure
from tests.positions import protected
from tests.storage_support import NOW
from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side
from trader.trade_store import TradeStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(tmp_path / "t.db")
    yield opened
    opened.close()


def committed_positions(store: TradeStore) -> list[tuple[str, str]]:
    """What a second connection (another process) reads: only committed rows."""
    path = store.db.execute("PRAGMA database_list").fetchone()[2]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as other:
        return other.execute("SELECT key, state FROM positions ORDER BY key").fetchall()


def entry_intent(status: IntentStatus = IntentStatus.PENDING) -> Intent:
    return Intent(client_id="tb-BTCUSDT-k1-E1", symbol="BTCUSDT", role=OrderRole.ENTRY,
                  side=Side.BUY, type=OrderType.MARKET, quantity=Decimal("0.1"),
                  created_at=NOW, position_key="k1", status=status)


def test_outside_a_batch_every_write_is_committed_at_once(store: TradeStore) -> None:
    store.save_position(protected(key="k1"))
    assert committed_positions(store) == [("k1", "PROTECTED")]


def test_a_batch_commits_once_at_its_end_with_the_last_version(store: TradeStore) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k1", best_price=Decimal("50100")))
        store.save_position(protected(key="k1", best_price=Decimal("50200")))
        store.append_event(NOW, "note", "BTCUSDT", {"n": 1})
        assert committed_positions(store) == []
    assert committed_positions(store) == [("k1", "PROTECTED")]
    saved = store.position("BTCUSDT", "k1")
    assert saved is not None and saved.best_price == Decimal("50200")
    assert [e["kind"] for e in store.events()] == ["note"]


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
        store: TradeStore) -> None:
    with store.batch("candle"):
        store.save_position(protected(key="k0"))
        with pytest.raises(SaveStateFailure):
            with store.transaction("step"):
                store.save_position(protected(key="k1"))
                store.append_event(NOW, "step", "BTCUSDT", {})
                store.db.execute("INSERT INTO no_such_table VALUES (1)")  # fails the step
        store.append_event(NOW, "after", "BTCUSDT", {})
    assert committed_positions(store) == [("k0", "PROTECTED")]
    assert [e["kind"] for e in store.events()] == ["after"]
    assert store.health.in_a_row == 0 and store.health.total_failures == 1


def test_a_failed_batch_is_rolled_back_whole(store: TradeStore) -> None:
    with pytest.raises(RuntimeError):
        with store.batch("candle"):
            store.save_position(protected(key="k1"))
            store.append_event(NOW, "note", "BTCUSDT", {})
            raise RuntimeError("the candle's tick died")
    assert committed_positions(store) == []
    assert store.events() == []
    store.save_position(protected(key="k2"))      # and the store works on, unbatched
    assert committed_positions(store) == [("k2", "PROTECTED")]
