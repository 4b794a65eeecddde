"""The store keeps the open positions in memory (read once, then kept with each save): what
it answers must be what the database holds, after any sequence of saves, closes, failed
writes and replay batches, rolled back or not (hypothesis)."""

import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import SaveStateFailure
from tests.positions import OPENED, make
from trader.position import Position, PositionState
from trader.position_body import position_from_body
from trader.trade_store import TradeStore

STATES = [PositionState.ENTERING, PositionState.PROTECTED, PositionState.CLOSED]

save = st.tuples(st.just("save"), st.sampled_from(["BTCUSDT", "ETHUSDT"]),
                 st.sampled_from(["k1", "k2", "k3"]), st.sampled_from(STATES),
                 st.integers(0, 3), st.booleans())
batch = st.tuples(st.just("batch"), st.booleans())
steps = st.lists(st.one_of(save, save, save, batch), max_size=30)


def database_holds(store: TradeStore) -> list[tuple[str, str, str]]:
    """The open positions as the database has them (held-back rows written first)."""
    store.put("settle", 1, OPENED)
    rows = store.db.execute("SELECT body FROM positions WHERE state != ?",
                            [PositionState.CLOSED.value]).fetchall()
    return sorted(_shape(position_from_body(body)) for (body,) in rows)


def _shape(position: Position) -> tuple[str, str, str]:
    return position.opened_at.isoformat(), f"{position.symbol}/{position.key}", \
        position.state.value


def refuse_positions(action: int, table: str | None, *_: object) -> int:
    return sqlite3.SQLITE_DENY if table == "positions" else sqlite3.SQLITE_OK


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.booleans())
def test_the_open_positions_are_what_the_database_holds(plan, read_first) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = TradeStore.open(Path(folder) / "t.db")
        if read_first:
            store.open_positions()          # the memory exists before the writes
        in_batch = None
        for step in plan:
            if step[0] == "save":
                _, symbol, key, state, minutes, fails = step
                position = make(symbol=symbol, key=key, state=state,
                                opened_at=OPENED + timedelta(minutes=minutes))
                if fails and in_batch is None:
                    store.db.conn.set_authorizer(refuse_positions)
                    with pytest.raises(SaveStateFailure):   # nothing of it is kept
                        store.save_position(position)
                    store.db.conn.set_authorizer(None)
                else:
                    store.save_position(position)
                store.open_positions()
            elif in_batch is None and step[1]:
                in_batch = store.batch("candle")
                in_batch.__enter__()
            elif in_batch is not None:
                in_batch.__exit__(None if step[1] else RuntimeError,
                                  None if step[1] else RuntimeError("rolled back"), None)
                in_batch = None
        if in_batch is not None:
            in_batch.__exit__(None, None, None)
        answered = store.open_positions()
        assert sorted(_shape(p) for p in answered) == database_holds(store)
        assert [p.opened_at for p in answered] == sorted(p.opened_at for p in answered)
        store.close()
