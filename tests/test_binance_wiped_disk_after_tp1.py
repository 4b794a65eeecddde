"""The real engine and the real python-binance client on the fake Binance (Algo Order API):
TP1 of the two-TP plan fills (a conditional order's child: its fill names TP1 only through
the algo order's actualOrderId), the stop goes to breakeven, the stop is cancelled by hand
while the agent is down and the disk is wiped. The restart reads TP1's fill back from
GET /fapi/v1/userTrades and puts the stop back at breakeven, the first and only stop it
sends; TP2 stays and nothing is sent at market."""

import asyncio
from decimal import Decimal

from tests.fakes.binance_harness import booted_engine, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_no_algo_api import feed_candles
from tests.test_binance_protection import PRICE, SYMBOL
from trader.domain import OrderRole, Side
from trader.engine import Engine
from trader.position import ExitPlan


async def ticks(engine: Engine, count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0.05)
        await engine.tick()


def ours(fake: FakeBinance, role: OrderRole) -> list:
    return [o for o in fake.sim.open_orders(SYMBOL) if o.role is role]


async def test_a_wiped_disk_after_tp1_puts_the_missing_stop_back_at_breakeven(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        first = settings_for(fake, db_path=tmp_path / "a.db", exit_plan="two",
                             trailing_distance="5%", sentinel_debounce_seconds=0)
        async with booted_engine(first) as engine:
            feed_candles(engine)
            await engine.tick()
            position = await engine.enter_by_hand(SYMBOL, Side.BUY, "test: manual /long")
            assert not isinstance(position, str), position
            await ticks(engine)
            [tp1] = ours(fake, OrderRole.TAKE_PROFIT_1)
            await fake.move_price(SYMBOL, tp1.trigger_price + Decimal("10"))   # TP1 fills
            await ticks(engine)
            after = engine.positions[SYMBOL]
            assert after.partial_taken and after.take_profit_1 is None
            [stop] = ours(fake, OrderRole.STOP_LOSS)
            assert stop.trigger_price > position.entry_price            # at breakeven
            [tp2] = ours(fake, OrderRole.TAKE_PROFIT)
        await fake.cancel_order_by_hand(SYMBOL, stop.client_id)
        posts = len(fake.requests("POST /fapi/v1/algoOrder"))
        orders = len(fake.requests("POST /fapi/v1/order"))

        wiped = settings_for(fake, db_path=tmp_path / "wiped.db", exit_plan="two",
                             trailing_distance="5%", sentinel_debounce_seconds=0)
        async with booted_engine(wiped) as engine:
            await ticks(engine)
            picked = engine.positions[SYMBOL]
            assert (picked.key, picked.exit_plan, picked.partial_taken) == \
                (position.key, ExitPlan.TWO, True)
            sent = [r.params for r in fake.requests("POST /fapi/v1/algoOrder")[posts:]]
            assert [(p["type"], Decimal(p["triggerPrice"])) for p in sent] == \
                [("STOP_MARKET", stop.trigger_price)]
            assert fake.requests("POST /fapi/v1/order")[orders:] == []     # no market order
            assert [o.client_id for o in ours(fake, OrderRole.TAKE_PROFIT)] == [tp2.client_id]
