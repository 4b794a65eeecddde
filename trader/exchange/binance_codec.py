"""Binance USD-M JSON <-> domain values, both ways, with no I/O.

Requests: `order_params` / `algo_params` turn an `OrderRequest` into the exact string
parameters of POST /fapi/v1/order and POST /fapi/v1/algoOrder (plain decimal strings
rounded to the symbol's tick/step, never floats). Answers: REST order, algo order,
position, account, trade, kline and stream payloads become `Order`, `ExchangePosition`,
`Balance`, `Fill`, `Candle`, `OrderUpdate` and `AccountUpdate`.

Algo (conditional) order statuses map onto `OrderStatus` like this:

    NEW          -> NEW        waiting in the Algo Service for its trigger
    TRIGGERING   -> NEW        trigger met, being forwarded: still live, not filled yet
    TRIGGERED    -> NEW / PARTIALLY_FILLED / FILLED by the executed quantity, when known
                   (placed in the matching engine; a MARKET child fills at once)
    FINISHED     -> FILLED     the child order finished in the matching engine; CANCELED
                   when the payload says nothing was executed
    CANCELED     -> CANCELED
    EXPIRED      -> EXPIRED    cancelled by the system (e.g. position closed)
    REJECTED     -> REJECTED   e.g. margin check failed at trigger time

A closePosition algo order reports quantity 0 (it closes whatever is open at trigger
time). An algo order's `exchange_id` is "algo:<algoId>"; a plain order's is its orderId.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trader.domain import (
    ZERO,
    Balance,
    BookTicker,
    Candle,
    ExchangePosition,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    SymbolRules,
    utc,
)
from trader.exchange.base import AccountUpdate, ExchangeError, OrderUpdate, UnknownOutcome

Json = dict[str, Any]

ALGO_STATUS = {
    "NEW": OrderStatus.NEW,
    "TRIGGERING": OrderStatus.NEW,
    "TRIGGERED": OrderStatus.NEW,
    "FINISHED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}
LIVE_ALGO_STATUSES = ("NEW", "TRIGGERING", "TRIGGERED")
BACKEND_TIMEOUT = -1007   # "Timeout waiting for response from backend server. Send status unknown"
PLAIN_STATUS = {status.value: status for status in OrderStatus} | {
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,   # expired by self-trade prevention
    "NEW_INSURANCE": OrderStatus.NEW,          # liquidation order with the insurance fund
    "NEW_ADL": OrderStatus.NEW,                # counterparty liquidation (auto-deleverage)
}
FILL_EXECUTIONS = ("TRADE", "CALCULATED")      # CALCULATED: a liquidation fill
ALGO_ID_PREFIX = "algo:"

_INTERVAL_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def interval_delta(interval: str) -> timedelta:
    """'1m' -> 1 minute, '4h' -> 4 hours (Binance kline interval names)."""
    unit = _INTERVAL_UNITS.get(interval[-1:])
    if unit is None or not interval[:-1].isdigit():
        raise ValueError(f"unknown kline interval {interval!r}")
    return timedelta(seconds=int(interval[:-1]) * unit)


def dec(value: Any) -> Decimal:
    """A Binance number (sent as a string, sometimes as a JSON number) as Decimal."""
    if value is None or value == "":
        return ZERO
    return Decimal(str(value))


def flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


# --- errors --------------------------------------------------------------------------

def error_from_answer(status: int, code: int | None, message: str, retry_after: str | None,
                      *, sending: bool) -> ExchangeError | UnknownOutcome:
    """A Binance error answer as our error value.

    While sending an order, HTTP 5xx (503 "Unknown error, please check your request or try
    again later." included) and -1007 mean the order may exist: UnknownOutcome.
    """
    code = int(code or 0)
    if not code:
        message = f"HTTP {status} without a Binance error body"
    if sending and (status >= 500 or code == BACKEND_TIMEOUT):
        return UnknownOutcome(message, code=code, http_status=status)
    try:
        seconds = float(retry_after) if retry_after is not None else None
    except ValueError:
        seconds = None
    return ExchangeError(code, message, http_status=status, retry_after=seconds)


# --- exchange info -------------------------------------------------------------------

def rules_from_exchange_info(info: Json, symbols: list[str]) -> dict[str, SymbolRules]:
    """SymbolRules for the managed symbols; KeyError naming the symbols Binance doesn't list."""
    listed = {entry["symbol"]: entry for entry in info.get("symbols", [])}
    missing = [symbol for symbol in symbols if symbol not in listed]
    if missing:
        raise KeyError(f"not listed on Binance USD-M futures: {', '.join(missing)}")
    return {symbol: _rules(listed[symbol]) for symbol in symbols}


def _rules(entry: Json) -> SymbolRules:
    filters = {f["filterType"]: f for f in entry.get("filters", [])}
    price_filter = filters["PRICE_FILTER"]
    lot = filters["LOT_SIZE"]
    notional = filters.get("MIN_NOTIONAL", {})
    return SymbolRules(
        symbol=entry["symbol"],
        tick_size=dec(price_filter["tickSize"]).normalize(),
        step_size=dec(lot["stepSize"]).normalize(),
        min_qty=dec(lot["minQty"]),
        min_notional=dec(notional.get("notional", notional.get("minNotional", "0"))),
        max_qty=dec(lot.get("maxQty", "1000000000")),
    )


# --- requests ------------------------------------------------------------------------

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
    """Parameters of POST /fapi/v1/order for a plain (MARKET / LIMIT) order."""
    if request.type.conditional:
        raise ValueError(f"{request.type} goes to the Algo Order API, not /fapi/v1/order")
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


# --- orders --------------------------------------------------------------------------

def _order_type(text: str) -> OrderType | None:
    try:
        return OrderType(text)
    except ValueError:
        return None


def order_from_plain(raw: Json) -> Order | None:
    """An order of GET/POST/DELETE /fapi/v1/order; None for types we never use."""
    order_type = _order_type(raw.get("origType") or raw["type"])
    if order_type is None:
        return None
    price = dec(raw.get("price"))
    stop = dec(raw.get("stopPrice"))
    return Order(
        symbol=raw["symbol"],
        client_id=raw["clientOrderId"],
        side=Side(raw["side"]),
        type=order_type,
        status=PLAIN_STATUS[raw["status"]],
        quantity=dec(raw.get("origQty")),
        filled_qty=dec(raw.get("executedQty")),
        avg_price=dec(raw.get("avgPrice")),
        price=price or None,
        stop_price=stop or None,
        reduce_only=flag(raw.get("reduceOnly")),
        close_position=flag(raw.get("closePosition")),
        exchange_id=str(raw.get("orderId", "")),
        updated_at=utc(int(raw["updateTime"])) if raw.get("updateTime") else None,
    )


def _algo_status(text: str, quantity: Decimal, executed: Decimal | None) -> OrderStatus:
    """See the module docstring. A closePosition order has quantity 0: any fill completes it."""
    status = ALGO_STATUS[text]
    if text == "TRIGGERED" and executed:
        complete = not quantity or executed >= quantity
        return OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED
    if text == "FINISHED" and executed is not None and executed == 0:
        return OrderStatus.CANCELED
    return status


def order_from_algo(raw: Json) -> Order | None:
    """An algo order of GET/POST/DELETE /fapi/v1/algoOrder or openAlgoOrders."""
    order_type = _order_type(raw["orderType"])
    if order_type is None:
        return None
    quantity = dec(raw.get("quantity"))
    executed = dec(raw["executedQty"]) if raw.get("executedQty") not in (None, "") else None
    updated = raw.get("updateTime") or raw.get("createTime")
    return Order(
        symbol=raw["symbol"],
        client_id=raw["clientAlgoId"],
        side=Side(raw["side"]),
        type=order_type,
        status=_algo_status(raw["algoStatus"], quantity, executed),
        quantity=quantity,
        filled_qty=executed or ZERO,
        avg_price=dec(raw.get("avgPrice") or raw.get("actualPrice")),
        price=dec(raw.get("price")) or None,
        stop_price=dec(raw.get("triggerPrice")) or None,
        reduce_only=flag(raw.get("reduceOnly")),
        close_position=flag(raw.get("closePosition")),
        exchange_id=f"{ALGO_ID_PREFIX}{raw.get('algoId', '')}",
        updated_at=utc(int(updated)) if updated else None,
    )


# --- account -------------------------------------------------------------------------

def position_from_risk(rows: list[Json], symbol: str, leverage: int) -> ExchangePosition:
    """The one-way (positionSide BOTH) position of GET /fapi/v3/positionRisk.

    v3 lists only symbols with a position or open orders, and carries no leverage: the
    caller passes the leverage it set.
    """
    for row in rows:
        if row.get("symbol") == symbol and row.get("positionSide", "BOTH") == "BOTH":
            return ExchangePosition(
                symbol=symbol,
                quantity=dec(row.get("positionAmt")),
                entry_price=dec(row.get("entryPrice")),
                mark_price=dec(row.get("markPrice")),
                unrealized_pnl=dec(row.get("unRealizedProfit")),
                leverage=int(row.get("leverage") or leverage),
            )
    return ExchangePosition(symbol=symbol, quantity=ZERO, leverage=leverage)


def balance_from_account(raw: Json) -> Balance:
    """GET /fapi/v2/account totals (USDT-margined, single-asset mode)."""
    return Balance(
        wallet=dec(raw["totalWalletBalance"]),
        unrealized_pnl=dec(raw["totalUnrealizedProfit"]),
        available=dec(raw["availableBalance"]),
    )


def fill_from_trade(raw: Json, client_id: str) -> Fill:
    """One row of GET /fapi/v1/userTrades. Binance omits the client id: the caller maps it."""
    return Fill(
        trade_id=str(raw["id"]),
        symbol=raw["symbol"],
        client_id=client_id,
        side=Side(raw["side"]),
        quantity=dec(raw["qty"]),
        price=dec(raw["price"]),
        fee=dec(raw.get("commission")),
        realized_pnl=dec(raw.get("realizedPnl")),
        time=utc(int(raw["time"])),
        maker=flag(raw.get("maker")),
    )


# --- market data ---------------------------------------------------------------------

def candle_from_rest(row: list[Any], symbol: str, interval: timedelta,
                     now: datetime) -> Candle:
    """One row of GET /fapi/v1/klines: [openTime, open, high, low, close, volume, closeTime...]."""
    open_time = utc(int(row[0]))
    return Candle(symbol=symbol, open_time=open_time, interval=interval,
                  open=dec(row[1]), high=dec(row[2]), low=dec(row[3]), close=dec(row[4]),
                  volume=dec(row[5]), closed=open_time + interval <= now)


def candle_from_stream(kline: Json) -> Candle:
    """The "k" object of a <symbol>@kline_<interval> stream event."""
    return Candle(symbol=kline["s"], open_time=utc(int(kline["t"])),
                  interval=interval_delta(kline["i"]), open=dec(kline["o"]),
                  high=dec(kline["h"]), low=dec(kline["l"]), close=dec(kline["c"]),
                  volume=dec(kline["v"]), closed=flag(kline["x"]))


def book_from_ticker(raw: Json) -> BookTicker:
    return BookTicker(symbol=raw["symbol"], bid=dec(raw["bidPrice"]), ask=dec(raw["askPrice"]))


# --- user-data stream ----------------------------------------------------------------

def update_from_order_event(event: Json) -> OrderUpdate | None:
    """ORDER_TRADE_UPDATE -> OrderUpdate (with the Fill when x == TRADE)."""
    o = event["o"]
    order_type = _order_type(o.get("ot") or o["o"])
    if order_type is None:
        return None
    moment = utc(int(event.get("T") or event["E"]))
    order = Order(
        symbol=o["s"], client_id=o["c"], side=Side(o["S"]), type=order_type,
        status=PLAIN_STATUS[o["X"]], quantity=dec(o.get("q")), filled_qty=dec(o.get("z")),
        avg_price=dec(o.get("ap")), price=dec(o.get("p")) or None,
        stop_price=dec(o.get("sp")) or None, reduce_only=flag(o.get("R")),
        close_position=flag(o.get("cp")), exchange_id=str(o.get("i", "")), updated_at=moment,
    )
    fill = None
    if o.get("x") in FILL_EXECUTIONS and dec(o.get("l")) > 0:
        fill = Fill(trade_id=str(o.get("t", "")), symbol=o["s"], client_id=o["c"],
                    side=order.side, quantity=dec(o["l"]), price=dec(o.get("L")),
                    fee=dec(o.get("n")), realized_pnl=dec(o.get("rp")),
                    time=utc(int(o.get("T") or event["E"])), maker=flag(o.get("m")))
    return OrderUpdate(order=order, fill=fill, time=moment)


def update_from_algo_event(event: Json) -> OrderUpdate | None:
    """ALGO_UPDATE -> OrderUpdate of the conditional order (its fill comes as ORDER_TRADE_UPDATE)."""
    o = event["o"]
    order_type = _order_type(o["o"])
    if order_type is None:
        return None
    moment = utc(int(event.get("T") or event["E"]))
    quantity = dec(o.get("q"))
    executed = dec(o["aq"]) if o.get("aq") not in (None, "") else None
    order = Order(
        symbol=o["s"], client_id=o["caid"], side=Side(o["S"]), type=order_type,
        status=_algo_status(o["X"], quantity, executed), quantity=quantity,
        filled_qty=executed or ZERO, avg_price=dec(o.get("ap")),
        price=dec(o.get("p")) or None, stop_price=dec(o.get("tp")) or None,
        reduce_only=flag(o.get("R")), close_position=flag(o.get("cp")),
        exchange_id=f"{ALGO_ID_PREFIX}{o.get('aid', '')}", updated_at=moment,
    )
    return OrderUpdate(order=order, fill=None, time=moment)


def update_from_account_event(event: Json) -> AccountUpdate:
    """ACCOUNT_UPDATE -> AccountUpdate of the one-way positions it carries.

    The event has wallet balances but no available margin, so `balance` stays None: the
    engine reads `balance()` over REST when it needs a full Balance.
    """
    data = event["a"]
    positions = [
        ExchangePosition(symbol=p["s"], quantity=dec(p.get("pa")), entry_price=dec(p.get("ep")),
                         unrealized_pnl=dec(p.get("up")))
        for p in data.get("P", []) if p.get("ps", "BOTH") == "BOTH"
    ]
    return AccountUpdate(positions=positions, balance=None, reason=str(data.get("m", "")),
                         time=utc(int(event.get("T") or event["E"])))
