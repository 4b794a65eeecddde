"""The trading records on top of the store (trader/trade_store.py): intents, orders, fills
and positions round-trip exactly, records written by older releases still read back, and
every typed write goes through the store's one gate (loud `SaveStateFailure`, nothing kept)."""

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from storage import SaveStateFailure, Store, open_database
from storage.db import MIGRATIONS
from tests.positions import make
from tests.storage_support import NOW, fill_the_disk, read_only_store
from trader.domain import (
    CloseReason,
    FeeInKind,
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.position import Leg, LegOrder, LegStatus, Position, PositionState
from trader.trade_store import TradeStore


@pytest.fixture
def trade_store(db_path: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(db_path)
    yield opened
    opened.close()


def make_intent(client_id: str = "tb-BTCUSDT-s9x0a0-sl1", minutes: int = 0,
                status: IntentStatus = IntentStatus.PENDING) -> Intent:
    return Intent(client_id=client_id, symbol="BTCUSDT", role=OrderRole.STOP_LOSS,
                  side=Side.SELL, type=OrderType.STOP_MARKET, quantity=Decimal("0.010"),
                  position_key="s9x0a0", created_at=NOW + timedelta(minutes=minutes),
                  status=status, trigger_price=Decimal("61234.10"), reduce_only=True,
                  sent_at=NOW + timedelta(seconds=1), detail="attach after entry")


def make_position(key: str = "s9x0a0", **changes: object) -> Position:
    """A short mid-way through a stop move: every kind of field the body stores is set
    (exponent and trailing-zero decimals, enums, timedeltas, nested legs, seq)."""
    live_tp = LegOrder("tb-BTCUSDT-s9x0a0-tp1", Decimal("1E+3"), Decimal("0.0100"))
    missing_sl = LegOrder("tb-BTCUSDT-s9x0a0-sl2", Decimal("62500.5"), Decimal("0.010"),
                          LegStatus.MISSING, missing_since=NOW + timedelta(seconds=5),
                          missing_cycles=2)
    position = make(side=Side.SELL, quantity="0.010", entry="62000.00", stop="62500.5",
                    tp="1E+3", key=key, opened_at=NOW)
    fields: dict[str, object] = {
        "stop": Leg(OrderRole.STOP_LOSS, Decimal("62000.10"), missing_sl,
                    pending="tb-BTCUSDT-s9x0a0-sl3", failures=2,
                    retry_at=NOW + timedelta(seconds=30), alerted=True),
        "take_profit": Leg(OrderRole.TAKE_PROFIT, Decimal("1E+3"), live_tp),
        "initial_quantity": Decimal("0.0200"), "partial_taken": True,
        "best_price": Decimal("61999.99"),
        "time_limit": timedelta(minutes=37, seconds=30), "cooldown": timedelta(seconds=90),
        "trail_activation": Decimal("0.0060"), "seq": {"en": 1, "sl": 3, "tp": 1},
        "closing_reason": CloseReason.TIME_EXIT, "close_attempts": 1,
        "realized_pnl": Decimal("-0.00000001"), "fees": Decimal("0.12345678"),
    }
    fields.update(changes)
    return replace(position, **fields)  # type: ignore[arg-type]


def closed(position: Position, at: datetime) -> Position:
    return replace(position, state=PositionState.CLOSED, closed_at=at,
                   close_reason=CloseReason.TAKE_PROFIT, exit_price=Decimal("61000.0"))


# --- exact round-trips -----------------------------------------------------------------

def test_intent_round_trips_exactly(trade_store: TradeStore) -> None:
    intent = make_intent()
    trade_store.save_intent(intent, NOW)
    assert repr(trade_store.intent(intent.client_id)) == repr(intent)
    assert trade_store.intent("tb-BTCUSDT-s9x0a0-tp1") is None


def test_intent_status_update_replaces_the_row(trade_store: TradeStore) -> None:
    intent = make_intent()
    trade_store.save_intent(intent, NOW)
    trade_store.save_intent(intent.with_status(IntentStatus.ACKED, "order 991"), NOW)
    assert trade_store.intent(intent.client_id) == intent.with_status(IntentStatus.ACKED, "order 991")
    assert trade_store.db["intents"].count == 1


def test_unresolved_intents_oldest_first_and_purge_keeps_them(trade_store: TradeStore) -> None:
    for minutes, status in [(2, IntentStatus.SENT), (0, IntentStatus.PENDING),
                            (1, IntentStatus.FILLED), (3, IntentStatus.ACKED),
                            (4, IntentStatus.FAILED)]:
        trade_store.save_intent(make_intent(f"tb-BTCUSDT-s9x0a0-sl{minutes + 1}", minutes, status))
    assert [i.status for i in trade_store.unresolved_intents()] == [
        IntentStatus.PENDING, IntentStatus.SENT, IntentStatus.ACKED]
    assert trade_store.purge_resolved_intents(before=NOW + timedelta(minutes=2)) == 1
    assert len(trade_store.intents_for("BTCUSDT", "s9x0a0")) == 4


def test_order_round_trips_exactly(trade_store: TradeStore) -> None:
    order = Order("BTCUSDT", "tb-BTCUSDT-s9x0a0-tp1", Side.SELL, OrderType.TAKE_PROFIT_MARKET,
                  OrderStatus.PARTIALLY_FILLED, Decimal("0.010"), filled_qty=Decimal("0.004"),
                  avg_price=Decimal("63000.10"), trigger_price=Decimal("63000.1"),
                  reduce_only=True, exchange_id="8389765", updated_at=NOW)
    trade_store.save_order(order)
    assert repr(trade_store.order(order.client_id)) == repr(order)


def test_fill_round_trips_exactly_and_is_recorded_once(trade_store: TradeStore) -> None:
    fill = Fill("77001", "BTCUSDT", "tb-BTCUSDT-s9x0a0-en1", Side.SELL, Decimal("0.010"),
                Decimal("62000.00"), Decimal("0.24800000"), Decimal("-1.5E-7"), NOW, maker=True,
                order_id="283194212")
    assert trade_store.record_fill(fill) is True
    assert trade_store.record_fill(fill) is False
    assert [repr(f) for f in trade_store.fills("BTCUSDT")] == [repr(fill)]
    assert trade_store.fills("ETHUSDT") == [] and trade_store.fills(since=NOW + timedelta(seconds=1)) == []
    assert trade_store.fill_ids("BTCUSDT") == {"77001"}


def test_position_round_trips_with_decimals_enums_timedeltas_and_seq(trade_store: TradeStore) -> None:
    position = make_position()
    trade_store.save_position(position)
    assert repr(trade_store.position("BTCUSDT", position.key)) == repr(position)
    assert [repr(p) for p in trade_store.open_positions()] == [repr(position)]


def test_a_closed_record_keeps_its_fees_in_bnb_valued_or_not(db_path: Path) -> None:
    """Read back from the file (a restart), not from memory."""
    store = TradeStore.open(db_path)
    done = replace(closed(make_position(), NOW + timedelta(minutes=20)),
                   fees=Decimal("24.99"), fees_in_kind=(
                       FeeInKind("BNB", Decimal("0.04165"), Decimal("24.99")),
                       FeeInKind("BNFCR", Decimal("0.5"), None)))
    store.save_position(done)
    store.close()
    reopened = TradeStore.open(db_path)
    assert [repr(p) for p in reopened.closed_positions(since=NOW)] == [repr(done)]
    reopened.close()


def test_closed_position_leaves_the_open_list(trade_store: TradeStore) -> None:
    position = make_position()
    trade_store.save_position(position)
    done = closed(position, NOW + timedelta(minutes=20))
    trade_store.save_position(done)
    assert trade_store.open_positions() == []
    assert [repr(p) for p in trade_store.closed_positions(since=NOW)] == [repr(done)]
    assert trade_store.closed_positions(since=NOW + timedelta(hours=1)) == []


# --- records written by older releases ----------------------------------------------------

def test_a_fill_recorded_before_v3_reads_back_with_an_empty_order_id(db_path: Path) -> None:
    old = open_database(db_path, migrations=MIGRATIONS[:2])
    old["fills"].insert({"symbol": "BTCUSDT", "trade_id": "77001",
                         "client_id": "tb-BTCUSDT-s9x0a0-en1", "side": "BUY",
                         "quantity": "0.010", "price": "62000.00", "fee": "0.248",
                         "realized_pnl": "0", "time": NOW.isoformat(), "maker": 0})
    old.close()
    upgraded = TradeStore.open(db_path)
    [fill] = upgraded.fills("BTCUSDT")
    assert (fill.trade_id, fill.client_id, fill.order_id) == ("77001", "tb-BTCUSDT-s9x0a0-en1", "")
    assert upgraded.record_fill(replace(fill, order_id="283194212")) is False   # still once
    upgraded.close()


def test_a_fill_keeps_the_asset_of_its_fee(trade_store: TradeStore) -> None:
    """A fee charged in BNB ("BNB burn") reads back as BNB, never as USDT."""
    fill = Fill("77002", "BTCUSDT", "tb-BTCUSDT-s9x0a0-en1", Side.BUY, Decimal("0.010"),
                Decimal("62000.00"), Decimal("0.00041333"), Decimal("0"), NOW,
                fee_asset="BNB")
    trade_store.record_fill(fill)
    assert [repr(f) for f in trade_store.fills("BTCUSDT")] == [repr(fill)]


def test_a_fill_recorded_before_v7_reads_back_with_its_fee_in_usdt(db_path: Path) -> None:
    """Every fill recorded before the asset was kept was booked as USDT."""
    old = open_database(db_path, migrations=MIGRATIONS[:6])
    old["fills"].insert({"symbol": "BTCUSDT", "trade_id": "77001",
                         "client_id": "tb-BTCUSDT-s9x0a0-en1", "side": "BUY",
                         "quantity": "0.010", "price": "62000.00", "fee": "0.248",
                         "realized_pnl": "0", "time": NOW.isoformat(), "maker": 0,
                         "order_id": "283194212"})
    old.close()
    upgraded = TradeStore.open(db_path)
    [fill] = upgraded.fills("BTCUSDT")
    assert (fill.fee, fill.fee_asset) == (Decimal("0.248"), "USDT")
    upgraded.close()


LEGACY_POSITION_BODY = {   # what the previous release (before issue 12) wrote to positions.body
    "symbol": "BTCUSDT", "key": "s9x0a0", "side": "SELL", "state": "PROTECTED",
    "quantity": "0.010", "entry_price": "62000.00", "leverage": 5,
    "opened_at": NOW.isoformat(), "sl_price": "62500.5", "tp_price": "61000.0",
    "sl_client_id": "tb-BTCUSDT-s9x0a0-sl1", "tp_client_id": "tb-BTCUSDT-s9x0a0-tp1",
    "initial_quantity": "0.010", "initial_sl_price": "62500.5", "breakeven_attempts": 0,
    "seq": {"en": 1, "sl": 1, "tp": 1},
}


def test_a_position_saved_by_the_previous_release_still_loads(db_path: Path) -> None:
    store = TradeStore.open(db_path)
    store.db["positions"].insert({"symbol": "BTCUSDT", "key": "s9x0a0", "state": "PROTECTED",
                                  "side": "SELL", "opened_at": NOW.isoformat(),
                                  "closed_at": None, "body": json.dumps(LEGACY_POSITION_BODY)})
    [position] = store.open_positions()
    assert position.stop.trigger_price == Decimal("62500.5")
    assert position.take_profit.trigger_price == Decimal("61000.0")
    store.close()


# --- failed writes are loud and leave nothing behind -----------------------------------------

TYPED_WRITES: dict[str, Callable[[TradeStore], object]] = {
    "intent": lambda s: s.save_intent(make_intent()),
    "order": lambda s: s.save_order(Order("BTCUSDT", "tb-BTCUSDT-k-en1", Side.BUY,
                                          OrderType.MARKET, OrderStatus.NEW, Decimal("1"))),
    "fill": lambda s: s.record_fill(Fill("1", "BTCUSDT", "c", Side.BUY, Decimal("1"),
                                         Decimal("1"), Decimal("0"), Decimal("0"), NOW)),
    "position": lambda s: s.save_position(make_position()),
}


@pytest.mark.parametrize("what", list(TYPED_WRITES))
def test_every_typed_write_to_a_read_only_database_raises_save_state_failure(
        db_path: Path, what: str) -> None:
    Store.open(db_path).close()
    store = read_only_store(db_path, TradeStore)
    with pytest.raises(SaveStateFailure) as caught:
        TYPED_WRITES[what](store)
    assert caught.value.what.startswith(what)
    assert isinstance(caught.value.cause, sqlite3.OperationalError)
    assert (store.health.in_a_row, store.health.last) == (1, caught.value)   # the one gate
    assert store.unresolved_intents() == [] and store.open_positions() == []
    store.close()


def test_a_finalize_that_fails_on_a_full_disk_keeps_no_position(trade_store: TradeStore) -> None:
    trade_store.put("cooldown:BTCUSDT", "before", NOW)
    fill_the_disk(trade_store)
    with pytest.raises(SaveStateFailure), trade_store.transaction("finalize BTCUSDT"):
        trade_store.put("cooldown:BTCUSDT", "after", NOW)
        trade_store.save_position(make_position())
        trade_store.append_event(NOW, "position_closed", "BTCUSDT", {"pad": "y" * 200_000})
    assert not trade_store.db.conn.in_transaction
    assert trade_store.get("cooldown:BTCUSDT") == "before"
    assert trade_store.position("BTCUSDT", "s9x0a0") is None
    assert trade_store.events("position_closed") == []
    trade_store.db.execute("PRAGMA max_page_count = 1073741823")
    trade_store.put("cooldown:BTCUSDT", "after space freed", NOW)
    assert trade_store.get("cooldown:BTCUSDT") == "after space freed"
