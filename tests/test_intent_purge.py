"""Purging resolved intents by the intents as saved last (held-back rows included), without
writing a batch's held-back intents first only to delete them; whether any intent is older
than a time, answered from the oldest creation time kept with each save.

The reference is what the store did before: write every held-back intent, then
"DELETE FROM intents WHERE status IN (resolved) AND created_at < cutoff". Both delete the
intents whose last saved version is resolved and older than the cutoff."""

import sqlite3
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import SaveStateFailure
from tests.storage_support import NOW
from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side
from trader.intent_records import PURGE_CHUNK
from trader.trade_store import TradeStore


def intent(client_id: str, status: IntentStatus, age_hours: int) -> Intent:
    return Intent(client_id=client_id, symbol="BTCUSDT", role=OrderRole.STOP_LOSS,
                  side=Side.SELL, type=OrderType.STOP_MARKET, quantity=Decimal("0.1"),
                  position_key="k1", created_at=NOW - timedelta(hours=age_hours), status=status,
                  trigger_price=Decimal("49500"), reduce_only=True)


def in_database(store: TradeStore) -> dict[str, str]:
    store.put("outside", 1, NOW)        # a write outside a batch commits the batches
    return dict(store.db.execute("SELECT client_id, status FROM intents").fetchall())


def survivors(model: dict[str, Intent], cutoff_hours: int) -> dict[str, Intent]:
    cutoff = (NOW - timedelta(hours=cutoff_hours)).isoformat()
    return {cid: i for cid, i in model.items()
            if not (i.status.resolved and i.created_at.isoformat() < cutoff)}


saves = st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(list(IntentStatus)),
                  st.integers(0, 12))
steps = st.lists(st.one_of(st.tuples(st.just("save"), saves, st.booleans()),
                           st.tuples(st.just("purge"), st.integers(0, 12), st.booleans())),
                 max_size=25)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_a_purge_deletes_what_the_flush_then_delete_by_status_deleted(plan: list) -> None:
    """Also: `has_intents_before` (from the oldest creation time it keeps) answers as a scan
    of every intent saved last would, after saves that move an intent in time and purges."""
    with tempfile.TemporaryDirectory() as folder:
        store = TradeStore.open(Path(folder) / "t.db")
        model: dict[str, Intent] = {}
        store.intent("a")       # the store reads its intents once (later saves keep them)
        try:
            for kind, what, batched in plan:
                if kind == "save":
                    client_id, status, age = what
                    saved = intent(client_id, status, age)
                    if batched:
                        with store.batch("candle"):
                            store.save_intent(saved, NOW)
                    else:
                        store.save_intent(saved, NOW)
                    model[client_id] = saved
                else:
                    before = NOW - timedelta(hours=what)
                    kept = survivors(model, what)
                    if batched:
                        with store.batch("candle"):
                            gone = store.purge_resolved_intents(before)
                    else:
                        gone = store.purge_resolved_intents(before)
                    assert gone == len(model) - len(kept)
                    model = kept
                for hours in (0, 5, 9, 13):
                    cutoff = NOW - timedelta(hours=hours)
                    assert store.has_intents_before(cutoff) == \
                        any(i.created_at < cutoff for i in model.values())
            assert in_database(store) == {cid: i.status.value for cid, i in model.items()}
            assert {i.client_id for i in store.unresolved_intents()} == \
                {cid for cid, i in model.items() if not i.status.resolved}
        finally:
            store.close()


def test_a_purged_intent_held_back_in_a_batch_is_never_written(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    store.save_intent(intent("old", IntentStatus.SENT, 8), NOW)     # in the database as SENT
    assert store.intent("old") is not None      # the store reads its intents once
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    with store.batch("candle"):
        store.save_intent(intent("old", IntentStatus.FILLED, 8), NOW)   # held back
        assert store.purge_resolved_intents(NOW - timedelta(hours=6)) == 1
    assert in_database(store) == {}
    assert not any(sql.startswith("INSERT INTO [intents]") for sql in seen)
    store.close()


def test_more_intents_than_one_statement_takes_go_all_or_none(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    many = PURGE_CHUNK + 3
    with store.batch("candle"):
        for n in range(many):
            store.save_intent(intent(f"i{n:04d}", IntentStatus.FILLED, 8), NOW)
    assert len(in_database(store)) == many
    assert store.purge_resolved_intents(NOW - timedelta(hours=6)) == many
    assert in_database(store) == {}
    store.close()


def test_a_failed_purge_keeps_the_held_back_intents_and_is_counted(tmp_path: Path) -> None:
    """The DELETE is refused: the intents stay as saved last (the held-back FILLED row is
    still written), the failure is a SaveStateFailure the write health counts."""
    store = TradeStore.open(tmp_path / "t.db")
    store.save_intent(intent("old", IntentStatus.SENT, 8), NOW)
    store.db.execute("CREATE TRIGGER no_purge BEFORE DELETE ON intents "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with store.batch("candle"):
        store.save_intent(intent("old", IntentStatus.FILLED, 8), NOW)
        with pytest.raises(SaveStateFailure, match="intent cleanup"):
            store.purge_resolved_intents(NOW - timedelta(hours=6))
    assert store.health.total_failures == 1
    assert in_database(store) == {"old": "FILLED"}
    assert store.intent("old") == intent("old", IntentStatus.FILLED, 8)
    store.close()


def test_the_ids_are_deleted_by_statements_sqlite_accepts(tmp_path: Path) -> None:
    """PURGE_CHUNK stays under SQLite's cap on a statement's parameters."""
    conn = sqlite3.connect(tmp_path / "x.db")
    assert PURGE_CHUNK <= conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
