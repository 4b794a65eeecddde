"""The two-TP plan's legs on the wire: through the real python-binance client against the
fake Binance, TP1 (client ids `…-t1<n>`) and TP2 (`…-tp<n>`) are reduce-only
TAKE_PROFIT_MARKET orders of the Algo Order API for their own quantities, and TP1 is
queried and cancelled there by its clientAlgoId like every protective leg
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order)."""

from decimal import Decimal

from tests.fakes.binance_harness import (
    SYMBOL,
    client_id,
    market,
    take_profit,
)
from trader.domain import OrderRequest, OrderRole, OrderStatus, OrderType, Side

pytest_plugins = ["tests.fakes.binance_fixtures"]


def first_target(trigger: str, quantity: str, seq: int = 1) -> OrderRequest:
    return OrderRequest(SYMBOL, Side.SELL, OrderType.TAKE_PROFIT_MARKET, Decimal(quantity),
                        client_id(OrderRole.TAKE_PROFIT_1, seq), OrderRole.TAKE_PROFIT_1,
                        trigger_price=Decimal(trigger), reduce_only=True)


async def test_tp1_and_tp2_are_reduce_only_algo_orders_for_their_parts(fake, exchange):
    await exchange.place(market(Side.BUY, "0.020"))
    first = await exchange.place(first_target("50500", "0.010"))
    second = await exchange.place(take_profit(Side.SELL, "51000", "0.010"))

    posted = fake.requests("POST /fapi/v1/algoOrder")
    by_id = {request.params["clientAlgoId"]: request.params for request in posted}
    tp1, tp2 = by_id[client_id(OrderRole.TAKE_PROFIT_1)], by_id[client_id(OrderRole.TAKE_PROFIT)]
    assert client_id(OrderRole.TAKE_PROFIT_1).endswith("-t11")
    for params, trigger in ((tp1, "50500"), (tp2, "51000")):
        assert (params["type"], params["quantity"], params["reduceOnly"],
                params["triggerPrice"]) == ("TAKE_PROFIT_MARKET", "0.01", "true", trigger)
    assert len(fake.requests("POST /fapi/v1/order")) == 1        # only the entry
    assert first.status is OrderStatus.NEW and second.status is OrderStatus.NEW


async def test_tp1_is_found_and_cancelled_on_the_algo_api_by_its_client_id(fake, exchange):
    await exchange.place(market(Side.BUY, "0.020"))
    await exchange.place(first_target("50500", "0.010"))
    tp1 = client_id(OrderRole.TAKE_PROFIT_1)

    found = await exchange.order_by_client_id(SYMBOL, tp1)
    assert found is not None and found.role is OrderRole.TAKE_PROFIT_1
    assert found.quantity == Decimal("0.010") and found.trigger_price == Decimal("50500")
    assert fake.requests("GET /fapi/v1/algoOrder") and not fake.requests("GET /fapi/v1/order")

    cancelled = await exchange.cancel(SYMBOL, tp1)
    assert fake.requests("DELETE /fapi/v1/algoOrder")
    assert cancelled is None or cancelled.status is OrderStatus.CANCELED
    assert [o.client_id for o in await exchange.open_orders(SYMBOL)] == []
