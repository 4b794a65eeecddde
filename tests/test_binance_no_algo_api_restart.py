"""Without the Algo Order API, a restart finds the agent's own classic STOP_MARKET /
TAKE_PROFIT_MARKET by client id, on the same database and on a wiped disk: nothing sent
twice; and a -4120 from the classic endpoint there (a passing one) still places the stop."""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import started_exchange, stop_loss
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_engine import PRICE, SYMBOL, start_engine, stop_engine
from trader.domain import OrderType, Side
from trader.startup import boot


@pytest.fixture
async def no_algo():
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=False) as server:
        yield server


def conditional_posts(fake: FakeBinance) -> list:
    return [r for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") in ("STOP_MARKET", "TAKE_PROFIT_MARKET")] + \
        fake.requests("POST /fapi/v1/algoOrder")


@pytest.mark.parametrize("disk", ["same", "wiped"])
async def test_a_restart_without_the_algo_api_adopts_its_own_classic_orders(no_algo, tmp_path,
                                                                             disk):
    await no_algo.open_position_by_hand(SYMBOL, Side.SELL, Decimal("0.050"))
    first = await start_engine(no_algo, tmp_path / "a")
    await boot(first)
    await first.tick()
    key = first.positions[SYMBOL].key
    await stop_engine(first)
    posts = len(conditional_posts(no_algo))
    assert posts == 2

    second = await start_engine(no_algo, tmp_path / ("a" if disk == "same" else "b"))
    try:
        lines = await boot(second)
        for _ in range(3):
            await second.tick()
        assert len(conditional_posts(no_algo)) == posts          # nothing sent twice
        assert not any("untracked" in line for line in lines), lines
        assert second.positions[SYMBOL].key == key
        assert sorted(o.type for o in no_algo.sim.open_orders(SYMBOL)) == \
            [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]
    finally:
        await stop_engine(second)


async def test_a_4120_while_the_algo_api_counts_absent_still_places_the_stop_once(no_algo):
    """The classic endpoint answers -4120 once (a proxy's mix-up: the server has no Algo
    API): sent on the Algo API, which 404s, then once more on the classic one."""
    await no_algo.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    request = stop_loss(Side.SELL, "49000")
    async with started_exchange(no_algo) as exchange:
        await exchange.open_orders(SYMBOL)                       # learns: no Algo API
        no_algo.inject_fault("POST /fapi/v1/order", code=-4120, http_status=400,
                             msg="Order type not supported for this endpoint.")
        order = await exchange.place(request)
        assert order.type is OrderType.STOP_MARKET and not order.exchange_id.startswith("algo:")
        assert no_algo.accepted_orders.count(request.client_id) == 1
        assert [o.client_id for o in await exchange.open_orders(SYMBOL)] == [request.client_id]
