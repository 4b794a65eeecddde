"""Binance USD-M wire format for the fake server: simulator values -> Binance JSON.

Written from Binance's documented payloads, independently of trader/exchange/binance_codec.py
(the adapter's decoder), so the integration tests check one against the other. Numbers
that Binance sends as strings are strings here too.

A conditional order's life on the user-data stream, as the fake tells it:
ALGO_UPDATE NEW -> (trigger) ALGO_UPDATE TRIGGERED -> ORDER_TRADE_UPDATE of the market
child order (x=TRADE, X=FILLED, c = the clientAlgoId, ot = the conditional type) ->
ALGO_UPDATE FINISHED. The child order's client id is an assumption of this fake: Binance
does not document what it is.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from trader.domain import ZERO, Balance, Candle, ExchangePosition, Fill, Order, OrderStatus, to_ms

Json = dict[str, Any]

ALGO_STATUS = {
    OrderStatus.NEW: "NEW",
    OrderStatus.PARTIALLY_FILLED: "TRIGGERED",
    OrderStatus.FILLED: "FINISHED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}
INTERVAL_NAMES = {60: "1m", 180: "3m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h",
                  7200: "2h", 14400: "4h", 86400: "1d"}


def num(value: Decimal | None) -> str:
    """Binance's decimal strings: plain notation, "0" for nothing."""
    if value is None:
        return "0"
    return format(value.normalize(), "f") if value else "0"


def interval_name(interval: timedelta) -> str:
    return INTERVAL_NAMES[int(interval.total_seconds())]


def plain_order(order: Order, order_id: int, created_ms: int) -> Json:
    """GET/POST/DELETE /fapi/v1/order and GET /fapi/v1/openOrders."""
    executed = order.filled_qty
    return {
        "orderId": order_id, "symbol": order.symbol, "status": order.status.value,
        "clientOrderId": order.client_id, "price": num(order.price),
        "avgPrice": num(order.avg_price), "origQty": num(order.quantity),
        "executedQty": num(executed), "cumQty": num(executed),
        "cumQuote": num(executed * order.avg_price), "timeInForce": "GTC",
        "type": order.type.value, "origType": order.type.value,
        "reduceOnly": order.reduce_only, "closePosition": order.close_position,
        "side": order.side.value, "positionSide": "BOTH", "stopPrice": num(order.stop_price),
        "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "time": created_ms,
        "updateTime": to_ms(order.updated_at) if order.updated_at else created_ms,
    }


def algo_order(order: Order, algo_id: int, created_ms: int, actual_order_id: str) -> Json:
    """POST/GET/DELETE /fapi/v1/algoOrder and GET /fapi/v1/openAlgoOrders."""
    updated = to_ms(order.updated_at) if order.updated_at else created_ms
    triggered = order.status is OrderStatus.FILLED
    return {
        "algoId": algo_id, "clientAlgoId": order.client_id, "algoType": "CONDITIONAL",
        "orderType": order.type.value, "symbol": order.symbol, "side": order.side.value,
        "positionSide": "BOTH", "timeInForce": "GTC",
        "quantity": num(ZERO if order.close_position else order.quantity),
        "algoStatus": ALGO_STATUS[order.status], "actualOrderId": actual_order_id,
        "actualPrice": num(order.avg_price), "triggerPrice": num(order.stop_price),
        "price": "0", "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": "MARK_PRICE", "priceMatch": "NONE",
        "closePosition": order.close_position, "priceProtect": False,
        "reduceOnly": order.reduce_only, "activatePrice": "", "callbackRate": "",
        "createTime": created_ms, "updateTime": updated,
        "triggerTime": updated if triggered else 0, "goodTillDate": 0,
    }


def order_trade_update(order: Order, fill: Fill | None, order_id: int, moment_ms: int,
                       order_type: str | None = None) -> Json:
    """ORDER_TRADE_UPDATE for a plain order, or for the market child of an algo order."""
    execution = "TRADE" if fill else {OrderStatus.NEW: "NEW", OrderStatus.CANCELED: "CANCELED",
                                      OrderStatus.EXPIRED: "EXPIRED"}.get(order.status, "NEW")
    return {"e": "ORDER_TRADE_UPDATE", "E": moment_ms, "T": moment_ms, "o": {
        "s": order.symbol, "c": order.client_id, "S": order.side.value,
        "o": order_type or order.type.value, "f": "GTC", "q": num(order.quantity),
        "p": num(order.price), "ap": num(order.avg_price), "sp": num(order.stop_price),
        "x": execution, "X": order.status.value, "i": order_id,
        "l": num(fill.quantity if fill else None), "z": num(order.filled_qty),
        "L": num(fill.price if fill else None), "N": "USDT",
        "n": num(fill.fee if fill else None), "T": moment_ms,
        "t": int(fill.trade_id) if fill else 0, "b": "0", "a": "0",
        "m": fill.maker if fill else False, "R": order.reduce_only,
        "wt": "CONTRACT_PRICE", "ot": order.type.value, "ps": "BOTH",
        "cp": order.close_position, "rp": num(fill.realized_pnl if fill else None),
        "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
    }}


def algo_update(order: Order, algo_id: int, status: str, moment_ms: int,
                actual_order_id: str = "") -> Json:
    """ALGO_UPDATE (fields as in Binance's "Event: Algo Order Update")."""
    executed = status == "FINISHED"
    return {"e": "ALGO_UPDATE", "T": moment_ms, "E": moment_ms, "o": {
        "caid": order.client_id, "aid": algo_id, "at": "CONDITIONAL", "o": order.type.value,
        "s": order.symbol, "S": order.side.value, "ps": "BOTH", "f": "GTC",
        "q": num(ZERO if order.close_position else order.quantity), "X": status,
        "ai": actual_order_id, "ap": num(order.avg_price if executed else None),
        "aq": num(order.filled_qty if executed else None), "act": "MARKET" if actual_order_id
        else "0", "tp": num(order.stop_price), "p": "0", "V": "EXPIRE_MAKER",
        "wt": "MARK_PRICE", "pm": "NONE", "cp": order.close_position, "pP": False,
        "R": order.reduce_only, "tt": moment_ms if actual_order_id else 0, "gtd": 0,
        "rm": "",
    }}


def account_update(positions: list[ExchangePosition], balance: Balance | None, reason: str,
                   moment_ms: int) -> Json:
    balances = [] if balance is None else [
        {"a": "USDT", "wb": num(balance.wallet), "cw": num(balance.wallet), "bc": "0"}]
    return {"e": "ACCOUNT_UPDATE", "E": moment_ms, "T": moment_ms, "a": {
        "m": reason, "B": balances,
        "P": [{"s": p.symbol, "pa": num(p.quantity), "ep": num(p.entry_price),
               "bep": num(p.entry_price), "cr": "0", "up": num(p.unrealized_pnl),
               "mt": "isolated", "iw": "0", "ps": "BOTH"} for p in positions],
    }}


def position_risk(position: ExchangePosition, mark: Decimal, moment_ms: int) -> Json:
    """One row of GET /fapi/v3/positionRisk (v3 carries no leverage)."""
    notional = position.quantity * mark
    return {
        "symbol": position.symbol, "positionSide": "BOTH", "positionAmt": num(position.quantity),
        "entryPrice": num(position.entry_price), "breakEvenPrice": num(position.entry_price),
        "markPrice": num(mark), "unRealizedProfit": num(position.unrealized_pnl),
        "liquidationPrice": "0", "isolatedMargin": "0", "notional": num(notional),
        "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
        "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": 0,
        "bidNotional": "0", "askNotional": "0", "updateTime": moment_ms,
    }


def account(balance: Balance) -> Json:
    """GET /fapi/v2/account, the totals the adapter reads (plus a USDT asset row)."""
    return {
        "totalWalletBalance": num(balance.wallet), "totalUnrealizedProfit":
            num(balance.unrealized_pnl), "totalMarginBalance": num(balance.equity),
        "availableBalance": num(balance.available), "maxWithdrawAmount": num(balance.available),
        "assets": [{"asset": "USDT", "walletBalance": num(balance.wallet),
                    "availableBalance": num(balance.available)}],
        "positions": [],
    }


def user_trade(fill: Fill, order_id: int) -> Json:
    """One row of GET /fapi/v1/userTrades (Binance carries no client order id here)."""
    return {
        "buyer": fill.side.value == "BUY", "commission": num(fill.fee),
        "commissionAsset": "USDT", "id": int(fill.trade_id), "maker": fill.maker,
        "orderId": order_id, "price": num(fill.price), "qty": num(fill.quantity),
        "quoteQty": num(fill.quantity * fill.price), "realizedPnl": num(fill.realized_pnl),
        "side": fill.side.value, "positionSide": "BOTH", "symbol": fill.symbol,
        "time": to_ms(fill.time),
    }


def kline_row(candle: Candle) -> list[Any]:
    """One row of GET /fapi/v1/klines."""
    open_ms = to_ms(candle.open_time)
    return [open_ms, num(candle.open), num(candle.high), num(candle.low), num(candle.close),
            num(candle.volume), to_ms(candle.close_time) - 1, "0", 1, "0", "0", "0"]


def kline_event(candle: Candle, moment_ms: int) -> Json:
    """A combined-stream kline message: {"stream": ..., "data": {"e": "kline", ...}}."""
    name = interval_name(candle.interval)
    kline = {"t": to_ms(candle.open_time), "T": to_ms(candle.close_time) - 1,
             "s": candle.symbol, "i": name, "f": 0, "L": 0, "o": num(candle.open),
             "c": num(candle.close), "h": num(candle.high), "l": num(candle.low),
             "v": num(candle.volume), "n": 1, "x": candle.closed, "q": "0", "V": "0",
             "Q": "0", "B": "0"}
    return {"stream": f"{candle.symbol.lower()}@kline_{name}",
            "data": {"e": "kline", "E": moment_ms, "s": candle.symbol, "k": kline}}
