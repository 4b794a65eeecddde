"""What we send Binance for an order: `OrderRequest` -> the exact string parameters of
POST /fapi/v1/order (plain) and POST /fapi/v1/algoOrder (conditional), plain decimal strings
on the symbol's tick/step grid, never floats.

    params = order_params(request, rules)   # MARKET / LIMIT
    params = algo_params(request, rules)    # STOP_MARKET / TAKE_PROFIT_MARKET

Pages: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api
(New Order) and .../trade/rest-api/New-Algo-Order.
"""

from trader.domain import OrderRequest, OrderType, Side, SymbolRules


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _price_rounding_up(request: OrderRequest) -> bool:
    """Which way to round a price onto the tick grid: always toward the safe side.

    A LIMIT buy never pays more (down), a LIMIT sell never sells for less (up). A stop
    rounds toward the market (tighter: a sell stop up, a buy stop down); a take-profit
    also rounds toward the market so it is reached no later than asked.
    """
    if request.type is OrderType.LIMIT:
        return request.side is Side.SELL
    if request.type is OrderType.STOP_MARKET:
        return request.side is Side.SELL
    return request.side is Side.BUY


def order_params(request: OrderRequest, rules: SymbolRules) -> dict[str, str]:
    """Parameters of POST /fapi/v1/order for a plain (MARKET / LIMIT) order; ValueError for
    a conditional type (Algo Order API) or OTHER (never placed by this agent)."""
    if request.type.conditional:
        raise ValueError(f"{request.type} goes to the Algo Order API, not /fapi/v1/order")
    if request.type is OrderType.OTHER:
        raise ValueError(f"order {request.client_id}: this agent never places OTHER orders")
    params = {
        "symbol": request.symbol,
        "side": request.side.value,
        "type": request.type.value,
        "quantity": rules.fmt_qty(request.quantity),
        "newClientOrderId": request.client_id,
        "newOrderRespType": "RESULT",
    }
    if request.type is OrderType.LIMIT:
        if request.price is None:
            raise ValueError(f"LIMIT order {request.client_id} needs a price")
        price = rules.round_price(request.price, up=_price_rounding_up(request))
        params |= {"price": rules.fmt_price(price), "timeInForce": "GTC"}
    if request.reduce_only:
        params["reduceOnly"] = "true"
    return params


def algo_params(request: OrderRequest, rules: SymbolRules) -> dict[str, str]:
    """Parameters of POST /fapi/v1/algoOrder for a STOP_MARKET / TAKE_PROFIT_MARKET order.

    closePosition=true carries no quantity and no reduceOnly (Binance answers -1106
    when both are sent); otherwise quantity plus reduceOnly.
    """
    if not request.type.conditional:
        raise ValueError(f"{request.type} is a plain order, not an algo order")
    if request.stop_price is None:
        raise ValueError(f"conditional order {request.client_id} needs a stop price")
    trigger = rules.round_price(request.stop_price, up=_price_rounding_up(request))
    params = {
        "algoType": "CONDITIONAL",
        "symbol": request.symbol,
        "side": request.side.value,
        "type": request.type.value,
        "triggerPrice": rules.fmt_price(trigger),
        "workingType": "MARK_PRICE",
        "clientAlgoId": request.client_id,
    }
    if request.close_position:
        params["closePosition"] = "true"
    else:
        params["quantity"] = rules.fmt_qty(request.quantity)
        params["reduceOnly"] = _bool_text(request.reduce_only)
    return params
