"""A position closed by its stop: what happens to the other exit order still resting?

Binance's docs do not say, for our reduce-only / closePosition conditional orders, whether
the exchange expires them when the position goes flat (the ALGO_UPDATE page's EXPIRED
example only names GTE_GTC orders). The fake does either (FakeBinance(flat_orders=...));
in both worlds the real engine must leave no order of ours on the flat symbol - a
reduce-only take-profit left behind would close the NEXT position at a stale price - and
record the close exactly once.
"""

from decimal import Decimal

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_binance_engine import PRICE, SYMBOL, booted_long
from trader.domain import ClientId, CloseReason, OrderType
from trader.engine import Engine


@pytest.fixture(params=["expire", "keep"])
async def fake(request):
    async with FakeBinance(prices={SYMBOL: PRICE}, flat_orders=request.param) as server:
        yield server


async def our_open_orders(engine: Engine) -> list[str]:
    return [o.client_id for o in await engine.exchange.open_orders(SYMBOL)
            if ClientId.parse(o.client_id) is not None]


async def test_after_the_stop_fills_no_order_of_ours_is_left_and_the_close_is_recorded_once(
        fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        position = engine.positions[SYMBOL]
        kinds = sorted(o.type for o in await engine.exchange.open_orders(SYMBOL))
        assert kinds == [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]
        assert position.stop.trigger_price is not None

        await fake.move_price(SYMBOL, position.stop.trigger_price - Decimal("10"))   # the stop fills
        assert fake.sim.position(SYMBOL).quantity == 0
        left_by_the_exchange = await our_open_orders(engine)       # the take-profit, or not
        assert len(left_by_the_exchange) == (1 if fake.flat_orders == "keep" else 0)

        for _ in range(3):
            await engine.tick()
            assert engine.last_error is None     # e.g. no KeyError on the cancel's answer

        assert await our_open_orders(engine) == []
        assert SYMBOL not in engine.positions
        closes = [c for c in engine.store.closed_positions() if c.key == position.key]
        assert len(closes) == 1
        assert closes[0].close_reason is CloseReason.STOP_LOSS
        assert fake.sim.open_orders(SYMBOL) == []
