"""The store answers its intent listings from what it keeps in memory; they must be what
the database itself lists, in the same order (ties included), after any sequence of
saves, re-saves, purges and replay batches (hypothesis)."""

import tempfile
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage_support import NOW
from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side
from trader.trade_store import TradeStore

UNRESOLVED = [s.value for s in IntentStatus if not s.resolved]

save = st.tuples(st.just("save"), st.integers(0, 11), st.sampled_from(list(IntentStatus)),
                 st.integers(0, 4), st.sampled_from(["k1", "k2"]))
purge = st.tuples(st.just("purge"), st.integers(0, 4))
batch = st.tuples(st.just("batch"), st.booleans())
steps = st.lists(st.one_of(save, save, save, purge, batch), max_size=40)


def intent(n: int, status: IntentStatus, minutes: int, key: str) -> Intent:
    return Intent(client_id=f"tb-BTCUSDT-{key}-sl{n}", symbol="BTCUSDT",
                  role=OrderRole.STOP_LOSS, side=Side.SELL, type=OrderType.STOP_MARKET,
                  quantity=Decimal("0.1"), position_key=key,
                  created_at=NOW + timedelta(minutes=minutes), status=status)


def database_lists(store: TradeStore) -> tuple[list[str], dict[str, list[str]]]:
    """What the database's own queries give (the held-back rows written first)."""
    store.put("settle", 1, NOW)
    marks = ",".join("?" * len(UNRESOLVED))
    unresolved = [r[0] for r in store.db.execute(
        f"SELECT client_id FROM intents WHERE status IN ({marks}) ORDER BY created_at",
        UNRESOLVED)]
    per_key = {key: [r[0] for r in store.db.execute(
        "SELECT client_id FROM intents WHERE symbol = ? AND position_key = ? "
        "ORDER BY created_at", ["BTCUSDT", key])] for key in ("k1", "k2")}
    return unresolved, per_key


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_intent_listings_are_what_the_database_lists(plan) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = TradeStore.open(Path(folder) / "t.db")
        known: dict[str, Intent] = {}
        in_batch = None
        for step in plan:
            if step[0] == "save":
                _, n, status, minutes, key = step
                saved = intent(n, status, minutes, key)
                if saved.client_id in known and minutes % 2:     # a re-save keeps its time
                    saved = replace(saved, created_at=known[saved.client_id].created_at)
                known[saved.client_id] = saved
                store.save_intent(saved, NOW)
            elif step[0] == "purge":
                store.purge_resolved_intents(NOW + timedelta(minutes=step[1]))
            elif in_batch is None and step[1]:
                in_batch = store.batch("candle")
                in_batch.__enter__()
            elif in_batch is not None:
                in_batch.__exit__(None, None, None)
                in_batch = None
        if in_batch is not None:
            in_batch.__exit__(None, None, None)
        listed = ([i.client_id for i in store.unresolved_intents()],
                  {key: [i.client_id for i in store.intents_for("BTCUSDT", key)]
                   for key in ("k1", "k2")})
        assert listed == database_lists(store)
        store.close()
