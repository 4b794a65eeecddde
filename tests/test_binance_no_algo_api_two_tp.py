"""Without the Algo Order API and with the user-data stream on: the two-TP plan's classic
legs, TP1's partial fill moving the stop to breakeven (new stop first, the old one
cancelled on /fapi/v1/order), then the close /close runs: nothing left on the exchange, nothing on the
Algo API after the boot's 404."""

import asyncio
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import booted_engine, eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_no_algo_api import feed_candles
from tests.test_binance_protection import PRICE, STREAMS, SYMBOL
from trader.domain import CloseReason, OrderRole, OrderType, Side
from trader.engine import Engine

ALGO_PATHS = ("/fapi/v1/algoOrder", "/fapi/v1/openAlgoOrders", "/fapi/v1/algoOpenOrders")


@pytest.fixture(params=["triggered-first", "expired-first"])
async def no_algo(request):
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=False,
                           trigger_events=request.param) as server:
        yield server


async def ticks(engine: Engine, count: int = 4) -> None:
    """The engine's ticks with the stream's events read in between."""
    for _ in range(count):
        await asyncio.sleep(0.05)
        await engine.tick()


def legs(fake: FakeBinance) -> dict[OrderRole, list]:
    found: dict[OrderRole, list] = {}
    for order in fake.sim.open_orders(SYMBOL):
        found.setdefault(order.role, []).append(order)
    return found


async def test_two_tp_breakeven_and_close_on_the_classic_path_with_streams(no_algo, tmp_path):
    settings = settings_for(no_algo, db_path=tmp_path / "tradebot.db", exit_plan="two",
                            sentinel_debounce_seconds=0, sentinel_debounce_cycles=2)
    async with booted_engine(settings, streams=True, stream_options=STREAMS) as engine:
        assert await eventually(lambda: engine.exchange.streaming, timeout=5.0)
        feed_candles(engine)
        await engine.tick()
        position = await engine.enter_by_hand(SYMBOL, Side.BUY, "test: manual /long")
        assert not isinstance(position, str), position
        await ticks(engine)
        on_exchange = legs(no_algo)
        [stop], [tp1], [tp2] = (on_exchange[OrderRole.STOP_LOSS],
                                on_exchange[OrderRole.TAKE_PROFIT_1],
                                on_exchange[OrderRole.TAKE_PROFIT])
        assert (stop.type, tp1.type, tp2.type) == (OrderType.STOP_MARKET,
                                                   OrderType.TAKE_PROFIT_MARKET,
                                                   OrderType.TAKE_PROFIT_MARKET)

        await no_algo.move_price(SYMBOL, tp1.trigger_price + Decimal("10"))   # TP1 fills
        rest = position.quantity - tp1.quantity
        assert no_algo.sim.position(SYMBOL).quantity == rest

        def moved_to_breakeven() -> bool:
            stops = legs(no_algo).get(OrderRole.STOP_LOSS, [])
            return len(stops) == 1 and stops[0].client_id != stop.client_id
        for _ in range(20):
            await ticks(engine, 1)
            if moved_to_breakeven():
                break
        [breakeven] = legs(no_algo)[OrderRole.STOP_LOSS]
        assert breakeven.client_id != stop.client_id
        assert breakeven.trigger_price > position.entry_price
        assert [o.client_id for o in legs(no_algo)[OrderRole.TAKE_PROFIT]] == [tp2.client_id]
        assert OrderRole.TAKE_PROFIT_1 not in legs(no_algo)
        assert engine.positions[SYMBOL].quantity == rest

        lines = await engine.close(SYMBOL, CloseReason.COMMAND)      # what /close runs
        assert lines, lines
        await ticks(engine)
        assert SYMBOL not in engine.positions
        assert no_algo.sim.position(SYMBOL).quantity == 0
        assert no_algo.sim.open_orders(SYMBOL) == []
        [closed] = [c for c in engine.store.closed_positions() if c.key == position.key]
        assert closed.close_reason is CloseReason.COMMAND
        assert [r.path for r in no_algo.request_log if r.path in ALGO_PATHS] == \
            ["/fapi/v1/openAlgoOrders"]

