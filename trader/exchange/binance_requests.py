"""What we send Binance for an order: `OrderRequest` -> the exact string parameters of
POST /fapi/v1/order (plain) and POST /fapi/v1/algoOrder (conditional), plain decimal strings,
never floats. Prices and quantities are rounded once, where they are planned (trader/risk.py,
trader/management.py; after a filter rejection `SymbolRules.onto_grid`): this only writes
them.

    params = order_params(request)   # MARKET / LIMIT (post-only: timeInForce GTX)
    params = algo_params(request)    # STOP_MARKET / TAKE_PROFIT_MARKET
    params = classic_conditional_params(request)   # the same, where there is no Algo API

Pages: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api
(New Order) and .../trade/rest-api/New-Algo-Order. The pre-migration New Order parameters
of conditional orders (stopPrice; closePosition "cannot be used with quantity ... cannot be
used with reduceOnly"; workingType) as that page gave them, transcribed at
https://0xhardman.xlog.app/binance-futures-api-guide?locale=en
"""

from trader.domain import OrderRequest, OrderType, plain


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def order_params(request: OrderRequest) -> dict[str, str]:
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
        "quantity": plain(request.quantity),
        "newClientOrderId": request.client_id,
        "newOrderRespType": "RESULT",
    }
    if request.type is OrderType.LIMIT:
        if request.price is None:
            raise ValueError(f"LIMIT order {request.client_id} needs a price")
        # GTX: "Good Till Crossing (Post Only)", refused with -5022 rather than filled as taker
        params |= {"price": plain(request.price),
                   "timeInForce": "GTX" if request.post_only else "GTC"}
    if request.reduce_only:
        params["reduceOnly"] = "true"
    return params


def algo_params(request: OrderRequest) -> dict[str, str]:
    """Parameters of POST /fapi/v1/algoOrder for a STOP_MARKET / TAKE_PROFIT_MARKET order.

    closePosition=true carries no quantity and no reduceOnly (Binance answers -1106
    when both are sent); otherwise quantity plus reduceOnly.
    """
    if not request.type.conditional:
        raise ValueError(f"{request.type} is a plain order, not an algo order")
    if request.trigger_price is None:
        raise ValueError(f"conditional order {request.client_id} needs a stop price")
    params = {
        "algoType": "CONDITIONAL",
        "symbol": request.symbol,
        "side": request.side.value,
        "type": request.type.value,
        "triggerPrice": plain(request.trigger_price),
        "workingType": "MARK_PRICE",
        "clientAlgoId": request.client_id,
    }
    if request.close_position:
        params["closePosition"] = "true"
    else:
        params["quantity"] = plain(request.quantity)
        params["reduceOnly"] = _bool_text(request.reduce_only)
    return params


def classic_conditional_params(request: OrderRequest) -> dict[str, str]:
    """Parameters of POST /fapi/v1/order for a STOP_MARKET / TAKE_PROFIT_MARKET order, for a
    server without the Algo Order API (binance_algo_presence.py): the trigger is `stopPrice`,
    the key `newClientOrderId`; closePosition=true or quantity plus reduceOnly, as in
    `algo_params`."""
    algo = algo_params(request)
    params = {
        "symbol": algo["symbol"],
        "side": algo["side"],
        "type": algo["type"],
        "stopPrice": algo["triggerPrice"],
        "workingType": algo["workingType"],
        "newClientOrderId": request.client_id,
        "newOrderRespType": "RESULT",
    }
    for name in ("closePosition", "quantity", "reduceOnly"):
        if name in algo:
            params[name] = algo[name]
    return params
