"""A position saved with its state and close time as last written (most saves: its best
price, a leg's answer) is one UPDATE that leaves the state indexes alone (storage/upsert.py
`steady_update_statement`); a new position, a changed state or a close is one upsert, as
before; where the values remembered are not the row's on the disk (a rollback since), the
UPDATE changes nothing and the upsert writes it. The table reads back exactly what the
upsert alone would have written."""

import sqlite3
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from tests.positions import protected
from tests.storage_support import NOW
from tests.test_store_statements import Statements
from trader.position import PositionState
from trader.trade_store import TradeStore

ROWS = "SELECT symbol, key, state, side, opened_at, closed_at, body FROM positions ORDER BY key"


def saved_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(ROWS).fetchall()


def writes(trace: Statements) -> list[str]:
    return [w for w in trace.words() if w not in ("BEGIN", "COMMIT")]


def test_a_position_saved_again_with_its_state_kept_is_one_update(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    position = protected(key="k1")
    store.save_position(position)
    trace = Statements(store)
    store.save_position(replace(position, best_price=Decimal("101")))
    assert writes(trace) == ["UPDATE"]
    assert store.db.execute("SELECT body LIKE '%\"best_price\":\"101\"%' FROM positions"
                            ).fetchone() == (1,)
    store.close()


def test_a_new_position_a_state_change_and_a_close_go_through_the_upsert(
        tmp_path: Path) -> None:
    """The negative cases: the UPDATE keeps nothing it should change."""
    store = TradeStore.open(tmp_path / "t.db")
    trace = Statements(store)
    opened = protected(key="k1")
    store.save_position(opened)                                        # new
    closing = replace(opened, state=PositionState.CLOSING)
    store.save_position(closing)                                       # state changed
    closed = replace(closing, state=PositionState.CLOSED, closed_at=NOW)
    store.save_position(closed)                                        # state and close time
    assert writes(trace) == ["INSERT INTO [positions]"] * 3      # no UPDATE tried
    assert store.db.execute("SELECT state, closed_at FROM positions").fetchall() == [
        ("CLOSED", NOW.isoformat())]
    assert store.db.execute("SELECT count(*) FROM positions WHERE state = 'CLOSED' AND "
                            "closed_at >= ?", [NOW.isoformat()]).fetchone() == (1,)
    assert store.open_positions() == []
    store.close()


def test_the_table_reads_back_what_the_upsert_alone_writes(tmp_path: Path) -> None:
    saves = [protected(key="k1"), protected(key="k2")]
    saves += [replace(saves[0], best_price=Decimal("101")),
              replace(saves[1], state=PositionState.CLOSING),
              replace(saves[0], best_price=Decimal("102")),
              replace(saves[1], state=PositionState.CLOSED, closed_at=NOW)]
    steady = TradeStore.open(tmp_path / "steady.db")
    plain = TradeStore.open(tmp_path / "plain.db")
    plain._gate.steady.clear()              # every save through the upsert alone
    for position in saves:
        steady.save_position(position)
        plain.save_position(position)
    steady.close()
    plain.close()
    assert saved_rows(tmp_path / "steady.db") == saved_rows(tmp_path / "plain.db")


def test_a_state_remembered_wrongly_costs_an_update_that_changes_nothing(
        tmp_path: Path) -> None:
    """The remembered values are a hint: the row on the disk decides."""
    store = TradeStore.open(tmp_path / "t.db")
    position = protected(key="k1")
    store.save_position(position)
    # the disk's state is no longer the one written last (as after a rollback)
    store.db.execute("UPDATE positions SET state = 'CLOSING' WHERE key = 'k1'")
    trace = Statements(store)
    store.save_position(replace(position, best_price=Decimal("101")))
    assert writes(trace) == ["UPDATE", "INSERT INTO [positions]"]
    assert store.db.execute("SELECT state, body LIKE '%\"best_price\":\"101\"%' "
                            "FROM positions").fetchall() == [("PROTECTED", 1)]
    store.close()


def test_a_forgotten_hint_costs_one_upsert(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    position = protected(key="k1")
    store.save_position(position)
    store._gate.steady_written.clear()      # past STEADY_KEPT records
    trace = Statements(store)
    store.save_position(replace(position, best_price=Decimal("101")))
    store.save_position(replace(position, best_price=Decimal("102")))
    assert writes(trace) == ["INSERT INTO [positions]", "UPDATE"]
    store.close()
