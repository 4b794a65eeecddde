"""A passing HTTP 404 on one Algo Order API endpoint (a proxy's hiccup in front of a Binance
that has the Algo API) while the real engine runs with a protected position: never a second
stop, never a position left without one, and back on the Algo API afterwards
(trader/exchange/binance_algo_presence.py)."""

import asyncio
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually, live_ids, started_exchange, stop_loss
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from trader.domain import Order, OrderStatus, OrderType, Side
from trader.exchange.base import ExchangeError


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server



def classic_conditional_posts(fake: FakeBinance) -> list:
    return [r for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") in ("STOP_MARKET", "TAKE_PROFIT_MARKET")]


def on_the_algo_api(fake: FakeBinance, client_id: str) -> bool:
    return [r.params["clientAlgoId"] for r in fake.requests("POST /fapi/v1/algoOrder")
            ][-1:] == [client_id]


async def settle(engine, ticks: int = 4) -> None:
    """A few of the engine's own ticks (its loop runs every 0.2 s here)."""
    await asyncio.sleep(0.2 * ticks)


@pytest.mark.parametrize("streams", [False, True])
@pytest.mark.parametrize("endpoint", ["GET /fapi/v1/openAlgoOrders", "DELETE /fapi/v1/algoOrder"])
async def test_a_passing_404_on_a_read_leaves_one_stop_and_the_algo_api_in_use(
        fake, tmp_path, endpoint, streams):
    async with running_agent(fake, tmp_path, streams=streams, tick=0.2) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        fake.inject_fault(endpoint, http_status=404, times=1)
        await settle(engine)
        assert live_ids(fake, OrderType.STOP_MARKET) == [stop_id]
        assert len(live_ids(fake, OrderType.TAKE_PROFIT_MARKET)) == 1

        await fake.cancel_order_by_hand(SYMBOL, stop_id)       # then a stop to replace
        assert await eventually(lambda: len(live_ids(fake, OrderType.STOP_MARKET)) == 1, 5.0)
        await settle(engine)
        [replacement] = live_ids(fake, OrderType.STOP_MARKET)
        assert on_the_algo_api(fake, replacement)
        assert classic_conditional_posts(fake) == []


@pytest.mark.parametrize("streams", [False, True])
async def test_a_passing_404_on_the_algo_place_replaces_the_stop_at_once_on_the_algo_api(
        fake, tmp_path, streams):
    """The 404 sends the stop to the classic endpoint, which (the Algo API being there
    after all) answers -4120: the stop must still be placed by that same attempt."""
    async with running_agent(fake, tmp_path, streams=streams, tick=0.2) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        fake.inject_fault("POST /fapi/v1/algoOrder", http_status=404, times=1)
        await fake.cancel_order_by_hand(SYMBOL, stop_id)
        assert await eventually(lambda: len(live_ids(fake, OrderType.STOP_MARKET)) == 1, 5.0)
        [replacement] = live_ids(fake, OrderType.STOP_MARKET)
        assert replacement.endswith("sl2"), replacement       # its first replacement held
        await settle(engine)
        assert live_ids(fake, OrderType.STOP_MARKET) == [replacement]
        assert on_the_algo_api(fake, replacement)


async def test_a_passing_404_on_the_query_of_our_algo_stop_is_no_answer_not_none(fake):
    """The probe after an unknown outcome, past its grace: a 404 from the Algo API, then
    "no such order" from the classic endpoint, must not read as "never placed" (the
    executor would mark the stop EXPIRED and place a second one); the next probe finds it."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    request = stop_loss(Side.SELL, "49000")
    async with started_exchange(fake) as exchange:
        await exchange.place(request)                    # its answer lost, say
        fake.inject_fault("GET /fapi/v1/algoOrder", http_status=404, times=1)
        with pytest.raises(ExchangeError) as raised:
            await exchange.order_by_client_id(SYMBOL, request.client_id)
        assert raised.value.http_status == 404
        found = await exchange.order_by_client_id(SYMBOL, request.client_id)
        assert isinstance(found, Order) and found.status is OrderStatus.NEW


async def test_where_the_algo_api_was_never_there_a_classic_miss_is_still_none(fake):
    """Learnt absent before: the 404 says nothing new and the classic answer is final."""
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=False) as no_algo:
        async with started_exchange(no_algo) as exchange:
            await exchange.open_orders(SYMBOL)                   # learns: no Algo API
            assert await exchange.order_by_client_id(SYMBOL, stop_loss(
                Side.SELL, "49000").client_id) is None
