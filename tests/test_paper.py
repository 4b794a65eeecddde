"""The paper exchange: the Exchange protocol on the simulator, events, latency, persistence."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from storage import Store
from trader.clock import ManualClock
from trader.domain import Candle, OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.base import (
    AccountUpdate,
    Exchange,
    ExchangeError,
    OrderUpdate,
    UnknownOutcome,
)
from trader.exchange.paper import STATE_KEY, PaperExchange
from trader.exchange.sim import SimConfig

T0 = datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
BTC = "BTCUSDT"
CONFIG = SimConfig(spread={BTC: D(0)}, slippage=D(0))


def candle(o: str, h: str, low: str, c: str, at: datetime = T0) -> Candle:
    return Candle(BTC, at, timedelta(minutes=15), D(o), D(h), D(low), D(c))


def entry(qty: str = "0.01", cid: str = "tb-BTCUSDT-k-en1") -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.MARKET, D(qty), cid, OrderRole.ENTRY)


def stop_loss(stop: str = "69000", cid: str = "tb-BTCUSDT-k-sl1") -> OrderRequest:
    return OrderRequest(BTC, Side.SELL, OrderType.STOP_MARKET, D(0), cid, OrderRole.STOP_LOSS,
                        trigger_price=D(stop), close_position=True)


async def started(store: Store, clock: ManualClock, **options: object) -> PaperExchange:
    paper = PaperExchange(store, clock, CONFIG, **options)   # type: ignore[arg-type]
    await paper.start([BTC], leverage=5)
    paper.feed_candle(candle("70000", "70100", "69900", "70000", at=T0 - timedelta(minutes=15)))
    return paper


async def test_paper_exchange_satisfies_the_exchange_protocol(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    assert isinstance(paper, Exchange)
    assert paper.name == "paper" and paper.streaming is True


async def test_restarted_paper_session_continues_with_balance_positions_and_orders(
        db_path: Path) -> None:
    clock = ManualClock(T0)
    first_store = Store.open(db_path)
    first = await started(first_store, clock)
    await first.place(entry())
    await first.place(stop_loss())
    before = (await first.balance(), await first.position(BTC), await first.open_orders(BTC))
    first_store.close()

    second_store = Store.open(db_path)
    second = PaperExchange(second_store, clock, CONFIG)
    after = (await second.balance(), await second.position(BTC), await second.open_orders(BTC))
    assert after == before
    assert before[1].quantity == D("0.01") and [o.client_id for o in before[2]] == [
        "tb-BTCUSDT-k-sl1"]
    second.feed_candle(candle("69500", "69600", "68800", "69100"))   # the stop still works
    assert (await second.position(BTC)).quantity == 0
    assert (await second.order_by_client_id(BTC, "tb-BTCUSDT-k-sl1")).status \
        is OrderStatus.FILLED
    second_store.close()


async def test_a_restart_restores_the_kept_history_across_many_saved_chunks(
        db_path: Path) -> None:
    """The terminal orders and fills are journaled in chunks (trader/exchange/sim_state.py),
    the oldest dropped once the newer ones hold what is kept: a restart after many chunks
    and drops rebuilds the same history as the session kept in memory."""
    config = SimConfig(spread={BTC: D(0)}, slippage=D(0), max_terminal_orders_kept=45,
                       max_fills_kept=33)
    clock = ManualClock(T0)
    first_store = Store.open(db_path)
    first = PaperExchange(first_store, clock, config)
    await first.start([BTC], leverage=5)
    first.feed_candle(candle("70000", "70100", "69900", "70000", at=T0 - timedelta(minutes=15)))
    for number in range(1, 130):      # each a market order: a terminal order and a fill
        side = Side.BUY if number % 2 else Side.SELL
        await first.place(OrderRequest(BTC, side, OrderType.MARKET, D("0.01"),
                                       f"tb-BTCUSDT-k-en{number}", OrderRole.ENTRY))
    kept = (list(first.sim.orders.terminal.values()), list(first.sim.fill_log))
    assert len(kept[0]) == 45 and len(kept[1]) == 33
    assert len(first_store.keys("paper:sim:orders:")) < 130 // 20      # old chunks dropped
    first_store.close()

    second_store = Store.open(db_path)
    second = PaperExchange(second_store, clock, config)
    assert (list(second.sim.orders.terminal.values()), list(second.sim.fill_log)) == kept
    second_store.close()


async def test_every_mutating_call_persists_the_state(store: Store) -> None:
    paper = await started(store, ManualClock(T0), persist_every=0)
    saved = store.get(STATE_KEY)
    paper.feed_candle(candle("70000", "70100", "69900", "70050"))
    assert store.get(STATE_KEY) == saved                 # persist_every=0: not on candles
    await paper.place(entry())
    assert store.get(STATE_KEY)["ledger"]["positions"][BTC]["quantity"] == "0.01"


async def test_candles_persist_every_n(store: Store) -> None:
    paper = PaperExchange(store, ManualClock(T0), CONFIG, persist_every=2)
    await paper.start([BTC], leverage=5)
    paper.feed_candle(candle("70000", "70100", "69900", "70050"))
    assert store.get(STATE_KEY)["prices"] == {}
    paper.feed_candle(candle("70050", "70100", "69900", "70080", at=T0 + timedelta(minutes=15)))
    assert store.get(STATE_KEY)["prices"][BTC] == "70080"


async def test_events_are_kept_for_drain_and_wait(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    paper.drain_events()
    assert await paper.wait_for_event(0.01) is False
    await paper.place(entry())
    assert await paper.wait_for_event(0.01) is True
    events = paper.drain_events()
    assert [type(e) for e in events] == [OrderUpdate, OrderUpdate, AccountUpdate]
    assert events[1].order.status is OrderStatus.FILLED
    assert paper.drain_events() == []


async def test_candle_triggered_fills_are_pushed_as_events(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    await paper.place(entry())
    await paper.place(stop_loss())
    paper.drain_events()
    returned = paper.feed_candle(candle("68000", "68500", "67500", "68200"))
    assert paper.drain_events() == returned
    assert returned[0].fill.price == D("68000")


async def test_latency_advances_the_clock_before_acting(store: Store) -> None:
    clock = ManualClock(T0)
    paper = await started(store, clock, latency=True)
    order = await paper.place(entry())
    waited = (clock.now() - T0).total_seconds()
    assert 0.05 <= waited <= 0.5
    assert order.updated_at == clock.now()


async def test_rejections_raise_binance_codes(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    with pytest.raises(ExchangeError) as caught:
        await paper.place(entry("0.001"))
    assert caught.value.code == -4164


async def test_cancel_of_unknown_order_returns_none(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    assert await paper.cancel(BTC, "nothing") is None
    await paper.place(entry())
    await paper.place(stop_loss())
    cancelled = await paper.cancel(BTC, "tb-BTCUSDT-k-sl1")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED


async def test_klines_serve_the_candles_seen_so_far(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    paper.feed_candle(candle("70000", "70100", "69900", "70050"))
    klines = await paper.klines(BTC, "15m", limit=1)
    assert [k.close for k in klines] == [D("70050")]
    assert len(await paper.klines(BTC, "15m", start=T0 - timedelta(hours=1))) == 2
    assert await paper.klines(BTC, "5m") == []


async def test_reads_reflect_the_simulator(store: Store) -> None:
    paper = await started(store, ManualClock(T0))
    await paper.place(entry())
    book = await paper.book_ticker(BTC)
    assert (book.bid, book.ask) == (D("70000"), D("70000.1"))
    assert await paper.funding_rate(BTC) == D("0.0001")
    assert [f.client_id for f in await paper.fills(BTC, T0)] == ["tb-BTCUSDT-k-en1"]
    assert paper.rules(BTC).tick_size == D("0.10")


async def test_paper_fees_are_in_usdt_and_no_other_asset_is_priced(store: Store) -> None:
    """Negative: the simulator charges USDT, as always; a close never asks a price."""
    paper = await started(store, ManualClock(T0))
    await paper.place(entry())
    assert [f.fee_asset for f in await paper.fills(BTC, T0)] == ["USDT"]
    assert await paper.asset_price("USDT") == 1
    with pytest.raises(ExchangeError):
        await paper.asset_price("BNB")


async def test_a_failed_save_after_an_order_is_an_unknown_outcome_and_the_order_exists(
        db_path: Path) -> None:
    store = Store.open(db_path)
    paper = await started(store, ManualClock(T0))
    store.close()   # the database is gone: the next save fails
    with pytest.raises(UnknownOutcome):
        await paper.place(entry())
    assert (await paper.order_by_client_id(BTC, "tb-BTCUSDT-k-en1")).status \
        is OrderStatus.FILLED
