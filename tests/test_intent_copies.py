"""`Intent.with_status` and `Intent.request` build their values by position (every order
makes 2-3 copies of its intent and one request): the same values as by field name."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from trader.domain import (
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.exchange.sim import SimConfig, Simulator
from trader.intents import exit_intent

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def every_field_set() -> Intent:
    """An intent whose every field differs from its default and from each other."""
    return Intent(client_id="tb-BTCUSDT-k-sl1", symbol="BTCUSDT", role=OrderRole.STOP_LOSS,
                  side=Side.SELL, type=OrderType.STOP_MARKET, quantity=Decimal("0.5"),
                  position_key="k", created_at=T0, status=IntentStatus.PENDING,
                  price=Decimal("1"), trigger_price=Decimal("2"), reduce_only=True,
                  close_position=True, sent_at=T0 + timedelta(seconds=1), detail="why")


def test_with_status_is_replace_of_status_detail_and_sent_at() -> None:
    intent = every_field_set()
    later = T0 + timedelta(seconds=5)
    assert intent.with_status(IntentStatus.SENT, sent_at=later) == dataclasses.replace(
        intent, status=IntentStatus.SENT, sent_at=later)
    assert intent.with_status(IntentStatus.FAILED, "refused") == dataclasses.replace(
        intent, status=IntentStatus.FAILED, detail="refused")
    # every field is the original's, one by one (not only equal as a whole)
    copied = intent.with_status(IntentStatus.ACKED)
    for field in dataclasses.fields(Intent):
        expected = IntentStatus.ACKED if field.name == "status" else getattr(intent, field.name)
        assert getattr(copied, field.name) is expected, field.name


def test_request_is_the_intent_field_by_field() -> None:
    for intent in (every_field_set(),
                   dataclasses.replace(every_field_set(), role=OrderRole.ENTRY,
                                       type=OrderType.LIMIT, close_position=False,
                                       reduce_only=False)):
        request = intent.request()
        expected = OrderRequest(symbol=intent.symbol, side=intent.side, type=intent.type,
                                quantity=intent.quantity, client_id=intent.client_id,
                                role=intent.role, price=intent.price,
                                trigger_price=intent.trigger_price,
                                reduce_only=intent.reduce_only,
                                close_position=intent.close_position,
                                post_only=intent.type is OrderType.LIMIT
                                and intent.role is OrderRole.ENTRY)
        assert request == expected
    assert every_field_set().request().post_only is False
    assert dataclasses.replace(every_field_set(), role=OrderRole.ENTRY,
                               type=OrderType.LIMIT).request().post_only is True



def test_exit_intent_is_built_field_by_field() -> None:
    """exit_intent builds by position: each field where its name says."""
    held = SimpleNamespace(symbol="BTCUSDT", side=Side.BUY, key="k")   # what it reads
    intent = exit_intent(held, OrderRole.STOP_LOSS, "tb-BTCUSDT-k-sl2",  # type: ignore[arg-type]
                         Decimal("0.5"), T0, trigger_price=Decimal("2"))
    assert intent == Intent(client_id="tb-BTCUSDT-k-sl2", symbol="BTCUSDT",
                            role=OrderRole.STOP_LOSS, side=Side.SELL,
                            type=OrderType.STOP_MARKET, quantity=Decimal("0.5"),
                            position_key="k", created_at=T0, trigger_price=Decimal("2"),
                            reduce_only=True)
    flipped = exit_intent(held, OrderRole.FLATTEN, "tb-BTCUSDT-k-fl101",  # type: ignore[arg-type]
                          Decimal("1"), T0, side=Side.BUY)
    assert (flipped.side, flipped.type, flipped.trigger_price, flipped.price,
            flipped.status) == (Side.BUY, OrderType.MARKET, None, None, IntentStatus.PENDING)
    # built as it leaves: the same intent, SENT at its creation time (no PENDING copy)
    sending = exit_intent(held, OrderRole.STOP_LOSS, "tb-BTCUSDT-k-sl2",  # type: ignore[arg-type]
                          Decimal("0.5"), T0, trigger_price=Decimal("2"), sending=True)
    assert sending == intent.with_status(IntentStatus.SENT, sent_at=T0)


def test_the_simulator_builds_a_placed_order_field_by_field() -> None:
    """Simulator._new_order builds by position: each field where its name says."""
    sim = Simulator(SimConfig())
    request = OrderRequest("BTCUSDT", Side.SELL, OrderType.STOP_MARKET, Decimal("0.5"),
                           "tb-BTCUSDT-k-sl1", OrderRole.STOP_LOSS, price=Decimal("3"),
                           trigger_price=Decimal("2"), reduce_only=True, close_position=True)
    placed = sim._new_order(request, T0)
    assert placed == Order(symbol="BTCUSDT", client_id="tb-BTCUSDT-k-sl1", side=Side.SELL,
                           type=OrderType.STOP_MARKET, status=OrderStatus.NEW,
                           quantity=Decimal("0.5"), price=Decimal("3"),
                           trigger_price=Decimal("2"), reduce_only=True, close_position=True,
                           exchange_id="1", updated_at=T0)


def test_the_simulator_finishes_an_order_and_books_a_fill_field_by_field() -> None:
    """Simulator._finish and the fill of `_execute` build by position: each field where its
    name says."""
    sim = Simulator(SimConfig(spread={"BTCUSDT": Decimal(0)}, slippage=Decimal(0)))
    sim.set_price("BTCUSDT", Decimal("100"), T0)
    later = T0 + timedelta(seconds=3)
    entry = OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, Decimal("2"),
                         "tb-BTCUSDT-k-en1", OrderRole.ENTRY)
    filled, _ = sim.place(entry, later)
    assert filled == Order(symbol="BTCUSDT", client_id="tb-BTCUSDT-k-en1", side=Side.BUY,
                           type=OrderType.MARKET, status=OrderStatus.FILLED,
                           quantity=Decimal("2"), filled_qty=Decimal("2"),
                           avg_price=Decimal("100"), exchange_id="1", updated_at=later)
    assert sim.fills("BTCUSDT") == [Fill(trade_id="1", symbol="BTCUSDT",
                                         client_id="tb-BTCUSDT-k-en1", side=Side.BUY,
                                         quantity=Decimal("2"), price=Decimal("100"),
                                         fee=Decimal("0.10000000"), realized_pnl=Decimal(0),
                                         time=later, maker=False)]
    stop = OrderRequest("BTCUSDT", Side.SELL, OrderType.STOP_MARKET, Decimal("2"),
                        "tb-BTCUSDT-k-sl1", OrderRole.STOP_LOSS, trigger_price=Decimal("90"),
                        reduce_only=True)
    placed, _ = sim.place(stop, T0)
    cancelled, _ = sim.cancel("BTCUSDT", stop.client_id, later)
    assert cancelled == dataclasses.replace(placed, status=OrderStatus.CANCELED,
                                            updated_at=later)
