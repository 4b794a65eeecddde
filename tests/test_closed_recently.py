"""The daily summary's closed positions come from the store's memory after one read
(trader/closed_recently.py): the same positions the database query gives, whatever was
saved, closed, saved again, held back by a replay's batch or rolled back in between."""

import tempfile
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage import SaveStateFailure
from tests.engine_world import make_world
from tests.positions import make
from trader.domain import CloseReason
from trader.position import Position, PositionState
from trader.trade_store import TradeStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)

# (kind, position number, minutes): save it open / closed at T0 + minutes; ask since it
operations = st.lists(st.tuples(
    st.sampled_from(["open", "close", "ask", "batch-close", "failed-batch-close"]),
    st.integers(0, 5), st.integers(0, 60 * 24 * 3)), max_size=40)


def position(number: int, state: PositionState, minutes: int) -> Position:
    at = T0 + timedelta(minutes=minutes)
    if state is PositionState.CLOSED:
        return make(key=f"k{number}", state=state, quantity="0", opened_at=T0,
                    closed_at=at, close_reason=CloseReason.TAKE_PROFIT,
                    exit_price=Decimal("51000"), realized_pnl=Decimal(number))
    return make(key=f"k{number}", state=state, opened_at=T0)


def ids(positions: list[Position]) -> list[Position]:
    """The positions by key: equal records, whatever the order of those closed together."""
    return sorted(positions, key=lambda p: (p.symbol, p.key))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
@example([("ask", 0, 0), ("failed-batch-close", 1, 5), ("ask", 0, 0)])
@example([("close", 1, 5), ("ask", 0, 0), ("open", 1, 0), ("batch-close", 2, 9)])
def test_closed_since_answers_what_the_database_query_answers(
        steps: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = TradeStore.open(Path(folder) / "t.db")
        for kind, number, minutes in steps:
            since = T0 + timedelta(minutes=minutes)
            if kind == "ask":
                assert ids(store.closed_since(since)) == ids(store.closed_positions(since))
                answer = store.closed_since(since)
                assert [p.closed_at for p in answer] == sorted(p.closed_at for p in answer)
            elif kind == "open":
                store.save_position(position(number, PositionState.PROTECTED, minutes))
            elif kind == "close":
                store.save_position(position(number, PositionState.CLOSED, minutes))
            else:                   # a replay's batch: held back, or undone when it fails
                with pytest.raises(KeyError) if kind.startswith("failed") else nullcontext(), \
                        store.batch("candle"):
                    store.save_position(position(number, PositionState.CLOSED, minutes))
                    if kind.startswith("failed"):
                        raise KeyError("the tick failed")
        for minutes in (0, 60 * 24, 60 * 24 * 3):
            since = T0 + timedelta(minutes=minutes)
            assert ids(store.closed_since(since)) == ids(store.closed_positions(since))
        store.close()


def test_a_close_whose_write_failed_is_not_counted(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    assert store.closed_since(T0) == []
    store.db.conn.execute("CREATE TRIGGER no_close BEFORE INSERT ON positions "
                          "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    with pytest.raises(SaveStateFailure):
        store.save_position(position(1, PositionState.CLOSED, 5))
    assert store.closed_since(T0) == [] == store.closed_positions(T0)
    store.close()


async def test_the_daily_summary_reads_the_positions_table_at_most_once(tmp_path: Path) -> None:
    """On a new database (the world's, as every backtest's) not even once: the store knew
    from its start that no position was closed (the next two tests)."""
    world = await make_world(tmp_path)
    await world.warm_up(3)
    statements: list[str] = []
    world.store.db.conn.set_trace_callback(statements.append)
    for day in range(3):
        now = world.clock.now()
        world.store.save_position(replace(position(day, PositionState.CLOSED, 0),
                                          opened_at=now, closed_at=now))
        world.clock.set(now + timedelta(days=1))
        await world.step()
    world.store.db.conn.set_trace_callback(None)
    summaries = world.alerts("DAILY_SUMMARY")
    assert len(summaries) == 3 and all("1 trade," in text for text in summaries)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")
             and "FROM POSITIONS" in s.upper() and "CLOSED" in s.upper()]
    assert reads == [], reads


def traced(store: TradeStore) -> list[str]:
    """The statements the store runs from now on (filled as they run)."""
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    return statements


def reads_of_closed(statements: list[str]) -> list[str]:
    """The reads of closed positions' records among `statements`."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT BODY FROM POSITIONS")
            and "CLOSED" in s.upper()]


def test_a_new_database_knows_its_closed_positions_without_reading_them(
        tmp_path: Path) -> None:
    """A store opened on a table with no closed position answers the daily summary from
    its own saves from the start: no read back (each closed position decoded from JSON)."""
    store = TradeStore.open(tmp_path / "t.db")
    first, second = position(1, PositionState.CLOSED, 5), position(2, PositionState.CLOSED, 9)
    store.save_position(position(3, PositionState.PROTECTED, 0))
    store.save_position(first)
    store.save_position(second)
    statements = traced(store)
    assert ids(store.closed_since(T0)) == ids([first, second])
    assert ids(store.closed_since(T0 + timedelta(minutes=6))) == [second]
    store.db.conn.set_trace_callback(None)
    assert reads_of_closed(statements) == [], statements
    assert ids(store.closed_since(T0)) == ids(store.closed_positions(T0))  # earlier: read
    store.close()


def test_a_database_with_closed_positions_reads_them_back_once(tmp_path: Path) -> None:
    """The negative case: a store opened on a table that holds a closed position does not
    take it for empty; its first daily summary reads the table (once), the earlier close
    included."""
    path = tmp_path / "t.db"
    store = TradeStore.open(path)
    earlier = position(1, PositionState.CLOSED, 5)
    store.save_position(earlier)
    store.close()
    store = TradeStore.open(path)
    later = position(2, PositionState.CLOSED, 9)
    store.save_position(later)
    statements = traced(store)
    assert ids(store.closed_since(T0)) == ids([earlier, later])
    assert ids(store.closed_since(T0 + timedelta(minutes=1))) == ids([earlier, later])
    store.db.conn.set_trace_callback(None)
    assert len(reads_of_closed(statements)) == 1, statements
    store.close()
