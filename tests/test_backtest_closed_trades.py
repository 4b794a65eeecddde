"""A backtest's report takes its trades from what the store kept as each position closed
(trader/closed_recently.py `ClosedArchive`) instead of decoding every closed position back
from the database: the same trades, in the same order (close time, ties as the rows were
first written), whatever was saved, saved again, read by the daily summary, held back by
a replay's batch, rolled back or failed in between (then the report reads the database)."""

import tempfile
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage import SaveStateFailure
from tests.positions import make
from trader.backtest import closed_trades
from trader.closed_recently import ClosedArchive
from trader.domain import CloseReason
from trader.position import ExitPlan, Position, PositionState
from trader.trade_stats import TradeRecord
from trader.trade_store import TradeStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "XRPUSDT")
ENDINGS = ("take-profit", "stop", "unknown", "no-exit-price")

# (kind, position number, symbol, close minute (few: ties), ending)
operations = st.lists(st.tuples(
    st.sampled_from(["open", "close", "ask", "batch-close", "failed-batch-close"]),
    st.integers(0, 6), st.sampled_from(SYMBOLS), st.integers(0, 3),
    st.sampled_from(ENDINGS)), max_size=40)


def position(number: int, symbol: str, state: PositionState, minutes: int,
             ending: str) -> Position:
    if state is not PositionState.CLOSED:
        return make(symbol=symbol, key=f"k{number}", state=state, opened_at=T0)
    reason = {"stop": CloseReason.STOP_LOSS, "unknown": CloseReason.UNKNOWN}.get(
        ending, CloseReason.TAKE_PROFIT)
    return make(symbol=symbol, key=f"k{number}", state=state, quantity="0", opened_at=T0,
                closed_at=T0 + timedelta(minutes=minutes), close_reason=reason,
                exit_price=None if ending == "no-exit-price" else Decimal("51000.50"),
                realized_pnl=Decimal(number) / 7, fees=Decimal("0.0125"),
                exit_plan=ExitPlan.TWO if number % 2 else ExitPlan.ONE)


def exactly(records: list[TradeRecord]) -> list[tuple[str, ...]]:
    """Every field as text: the same digits, not only equal values."""
    return [tuple(str(getattr(record, name)) for name in record.__slots__)
            for record in records]


def from_the_database(store: TradeStore) -> tuple[list[TradeRecord], list[ExitPlan]]:
    lost = ClosedArchive()
    lost.lost()
    return closed_trades(store, lost)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
@example([("close", 1, "XRPUSDT", 2, "stop"), ("open", 0, "BTCUSDT", 0, "stop"),
          ("close", 0, "BTCUSDT", 2, "stop")])          # a tie: the first written first
@example([("close", 1, "XRPUSDT", 2, "stop"), ("close", 1, "XRPUSDT", 1, "unknown")])
def test_the_kept_trades_are_the_database_s(
        steps: list[tuple[str, int, str, int, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = TradeStore.open(Path(folder) / "t.db")
        archive = store.archive_closed()
        failed = False
        for kind, number, symbol, minutes, ending in steps:
            if kind == "ask":       # the daily summary's read (the same memory)
                store.closed_since(T0 + timedelta(minutes=minutes))
            elif kind == "open":
                store.save_position(position(number, symbol, PositionState.PROTECTED,
                                             minutes, ending))
            elif kind == "close":
                store.save_position(position(number, symbol, PositionState.CLOSED,
                                             minutes, ending))
            else:                   # a replay's batch: held back, or undone when it fails
                failing = kind.startswith("failed")
                failed |= failing
                with pytest.raises(KeyError) if failing else nullcontext(), store.batch("candle"):
                    store.save_position(position(number, symbol, PositionState.CLOSED,
                                                 minutes, ending))
                    if failing:
                        raise KeyError("the tick failed")
        kept, plans = closed_trades(store, archive)
        read, read_plans = from_the_database(store)
        assert exactly(kept) == exactly(read)
        assert plans == read_plans
        assert (archive.trades() is None) == failed    # kept unless a batch was undone
        store.close()


def test_a_close_whose_write_failed_sends_the_report_to_the_database(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    archive = store.archive_closed()
    store.save_position(position(1, "BTCUSDT", PositionState.CLOSED, 1, "stop"))
    store.db.conn.execute("CREATE TRIGGER no_close BEFORE INSERT ON positions "
                          "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    with pytest.raises(SaveStateFailure):
        store.save_position(position(2, "BTCUSDT", PositionState.CLOSED, 2, "stop"))
    assert archive.trades() is None
    kept, _ = closed_trades(store, archive)
    assert [record.closed_at for record in kept] == [T0 + timedelta(minutes=1)]
    store.close()
