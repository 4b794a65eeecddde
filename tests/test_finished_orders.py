"""`TradeStore.finished_orders` (the executor's scan of the ids it sent) answers, in one
query, what `order(id).status.terminal` answers id by id: held-back orders of a batch as
held, orders in the database as written, unknown ids as not finished."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trader.domain import Order, OrderStatus, OrderType, Side
from trader.trade_store import PURGE_CHUNK, TradeStore

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
IDS = [f"tb-BTCUSDT-k{n}-sl1" for n in range(6)]


def order(client_id: str, status: OrderStatus) -> Order:
    return Order(symbol="BTCUSDT", client_id=client_id, side=Side.SELL,
                 type=OrderType.STOP_MARKET, status=status, quantity=Decimal("0.1"),
                 trigger_price=Decimal("49500"), reduce_only=True, exchange_id="7",
                 updated_at=NOW)


def one_by_one(store: TradeStore, client_ids: list[str]) -> set[str]:
    found = {cid: store.order(cid) for cid in client_ids}
    return {cid for cid, known in found.items() if known is not None and known.status.terminal}


saves = st.lists(st.tuples(st.sampled_from(IDS[:5]), st.sampled_from(list(OrderStatus))),
                 max_size=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=saves, held=saves)
def test_finished_orders_answers_as_each_order_read_alone(tmp_path: Path, written: list,
                                                          held: list) -> None:
    store = TradeStore.open(tmp_path / f"t{len(list(tmp_path.iterdir()))}.db")
    try:
        for client_id, status in written:
            store.save_order(order(client_id, status))
        with store.batch("candle"):
            for client_id, status in held:
                store.save_order(order(client_id, status))
            assert store.finished_orders(IDS) == one_by_one(store, IDS)
        assert store.finished_orders(IDS) == one_by_one(store, IDS)
    finally:
        store.close()


def test_more_ids_than_one_statement_takes(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    ids = [f"id{n}" for n in range(PURGE_CHUNK + 5)]
    with store.batch("candle"):
        for client_id in ids:
            store.save_order(order(client_id, OrderStatus.FILLED))
    store.put("outside", 1, NOW)            # commits the batch
    assert store.finished_orders([*ids, "unknown"]) == set(ids)
    store.close()


def test_a_stored_status_that_is_no_order_status_is_an_error(tmp_path: Path) -> None:
    """Statuses are looked up in a table (trader/domain.py `STATUSES_BY_VALUE`); a text
    that is in none is refused as `OrderStatus(text)` refuses it, not taken as live."""
    store = TradeStore.open(tmp_path / "t.db")
    store.save_order(order("tb-BTCUSDT-k1-sl1", OrderStatus.NEW))
    store.db.execute("UPDATE orders SET status = 'GONE'")
    with pytest.raises(ValueError, match="GONE"):
        store.finished_orders(["tb-BTCUSDT-k1-sl1"])
    store.close()
