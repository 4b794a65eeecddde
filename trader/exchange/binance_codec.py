"""Binance USD-M answers and stream events -> domain values, with no I/O.

REST order, algo order, position, account, trade, kline and stream payloads become `Order`,
`ExchangePosition`, `Balance`, `Fill`, `Candle`, `OrderUpdate` and `AccountUpdate`; error
answers become `ExchangeError` / `UnknownOutcome`. The shapes read here are Binance's
documented examples (tests/fixtures/binance/, each with its page). What we send is
binance_requests.py; the field-by-field reading is binance_fields.py.

Reading is tolerant, never fatal: unknown extra fields are ignored, unknown enum values are
logged (WARNING once per value) and read as below. A payload that lacks a field we cannot
do without (a client id, a side, a status, a quantity that moved) raises
`MalformedResponse(endpoint, field)` and logs the payload, truncated; never a bare KeyError.

Order types: MARKET, LIMIT, STOP_MARKET, TAKE_PROFIT_MARKET as themselves; any other type
(LIQUIDATION, TRAILING_STOP_MARKET, STOP, TAKE_PROFIT, or one Binance adds later) is
`OrderType.OTHER`: the order and its fills still reach the engine under their client id.

Plain order statuses (X of ORDER_TRADE_UPDATE, status of /fapi/v1/order):

    NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED -> themselves
    NEW_INSURANCE, NEW_ADL -> NEW (liquidation / auto-deleverage orders, still working)
    EXPIRED_IN_MATCH       -> EXPIRED (expired by self-trade prevention)

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

Only ALGO_UPDATE tells the executed quantity (aq); no REST algo answer documents one, so
from REST a TRIGGERED order reads NEW and a FINISHED one FILLED (the position read tells
whether the stop really closed anything).

An UNKNOWN status (plain or algo) reads as EXPIRED: not live. Counting an order we cannot
read as working could let the agent believe a stop-loss protects a position when it may
not; read as gone, the sentinel re-attaches protection (a duplicate reduce-only or
closePosition stop is harmless: it cannot open a position) and the position read, not the
order, decides whether anything filled.

Execution types (x of ORDER_TRADE_UPDATE): TRADE and CALCULATED (a liquidation fill) carry
a Fill; NEW, CANCELED, EXPIRED, AMENDMENT carry none; an unknown one carries a Fill when
its last filled quantity l > 0 (quantity moved; logged).

A closePosition algo order reports quantity 0 (it closes whatever is open at trigger
time). An algo order's `exchange_id` is "algo:<algoId>"; a plain order's is its orderId.
DELETE /fapi/v1/algoOrder answers an acknowledgement, not the order (`algo_cancel_result`).
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
    OrderStatus,
    OrderType,
    SymbolRules,
)
from trader.exchange.base import (
    AccountUpdate,
    ExchangeError,
    FundingApplied,
    OrderUpdate,
    UnknownOutcome,
)
from trader.exchange.binance_fields import Fields, malformed, rows_of, warn_once
from trader.exchange.binance_fields import dec as dec
from trader.exchange.binance_fields import flag as flag
from trader.exchange.binance_fields import interval_delta as interval_delta

Json = dict[str, Any]

NEW_ORDER, QUERY_ORDER, CANCEL_ORDER = ("POST /fapi/v1/order", "GET /fapi/v1/order",
                                        "DELETE /fapi/v1/order")
OPEN_ORDERS, OPEN_ALGO_ORDERS = "GET /fapi/v1/openOrders", "GET /fapi/v1/openAlgoOrders"
NEW_ALGO, QUERY_ALGO, CANCEL_ALGO = ("POST /fapi/v1/algoOrder", "GET /fapi/v1/algoOrder",
                                     "DELETE /fapi/v1/algoOrder")
POSITION_RISK, ACCOUNT, USER_TRADES = ("GET /fapi/v3/positionRisk", "GET /fapi/v2/account",
                                       "GET /fapi/v1/userTrades")
KLINES, BOOK_TICKER, EXCHANGE_INFO = ("GET /fapi/v1/klines", "GET /fapi/v1/ticker/bookTicker",
                                      "GET /fapi/v1/exchangeInfo")
ORDER_EVENT, ALGO_EVENT, ACCOUNT_EVENT = "ORDER_TRADE_UPDATE", "ALGO_UPDATE", "ACCOUNT_UPDATE"
KLINE_EVENT = "kline stream event"

ALGO_STATUS = {
    "NEW": OrderStatus.NEW,
    "TRIGGERING": OrderStatus.NEW,
    "TRIGGERED": OrderStatus.NEW,
    "FINISHED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}
PLAIN_STATUS = {status.value: status for status in OrderStatus} | {
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,   # expired by self-trade prevention
    "NEW_INSURANCE": OrderStatus.NEW,          # liquidation order with the insurance fund
    "NEW_ADL": OrderStatus.NEW,                # counterparty liquidation (auto-deleverage)
}
UNKNOWN_STATUS_READ_AS = OrderStatus.EXPIRED   # never "live": see the module docstring
FOREIGN_TYPES = frozenset({"LIQUIDATION", "TRAILING_STOP_MARKET", "STOP", "TAKE_PROFIT"})
FILL_EXECUTIONS = ("TRADE", "CALCULATED")      # CALCULATED: a liquidation fill
QUIET_EXECUTIONS = ("NEW", "CANCELED", "EXPIRED", "AMENDMENT")
ACK_OK = "200"            # DELETE /fapi/v1/algoOrder: {"code": "200", "msg": "success"}
ALGO_ID_PREFIX = "algo:"
BACKEND_TIMEOUT = -1007   # "Timeout waiting for response from backend server. Send status unknown"


# --- enums we may not know ---------------------------------------------------------------

def _order_type(text: str, where: str) -> OrderType:
    if text in OrderType.__members__ and text != OrderType.OTHER.value:
        return OrderType(text)
    if text not in FOREIGN_TYPES:
        warn_once("order type", text, where, "OTHER")
    return OrderType.OTHER


def _plain_status(text: str, where: str) -> OrderStatus:
    status = PLAIN_STATUS.get(text)
    if status is None:
        warn_once("order status", text, where, f"{UNKNOWN_STATUS_READ_AS} (not live)")
        return UNKNOWN_STATUS_READ_AS
    return status


def _algo_status(text: str, quantity: Decimal, executed: Decimal | None,
                 where: str = QUERY_ALGO) -> OrderStatus:
    """See the module docstring. A closePosition order has quantity 0: any fill completes it."""
    status = ALGO_STATUS.get(text)
    if status is None:
        warn_once("algo status", text, where, f"{UNKNOWN_STATUS_READ_AS} (not live)")
        return UNKNOWN_STATUS_READ_AS
    if text == "TRIGGERED" and executed:
        complete = not quantity or executed >= quantity
        return OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED
    if text == "FINISHED" and executed is not None and executed == 0:
        return OrderStatus.CANCELED
    return status


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
    """SymbolRules for the managed symbols; KeyError naming the symbols Binance doesn't list,
    MalformedResponse for a listed symbol without its PRICE_FILTER / LOT_SIZE."""
    listed = {}
    for entry in Fields(info, EXCHANGE_INFO).rows("symbols"):
        fields = Fields(entry, f"{EXCHANGE_INFO} symbol")
        listed[fields.text("symbol")] = fields
    missing = [symbol for symbol in symbols if symbol not in listed]
    if missing:
        raise KeyError(f"not listed on Binance USD-M futures: {', '.join(missing)}")
    return {symbol: _rules(listed[symbol]) for symbol in symbols}


def _rules(entry: Fields) -> SymbolRules:
    where = f"{EXCHANGE_INFO} {entry.text('symbol')}"
    filters = {str(raw["filterType"]): raw for raw in entry.rows("filters")
               if isinstance(raw, dict) and raw.get("filterType")}
    price_filter = Fields(filters.get("PRICE_FILTER"), f"{where} PRICE_FILTER")
    lot = Fields(filters.get("LOT_SIZE"), f"{where} LOT_SIZE")
    notional = Fields(filters.get("MIN_NOTIONAL", {}), f"{where} MIN_NOTIONAL")
    return SymbolRules(
        symbol=entry.text("symbol"),
        tick_size=price_filter.number("tickSize").normalize(),
        step_size=lot.number("stepSize").normalize(),
        min_qty=lot.optional_number("minQty"),
        min_notional=notional.optional_number("notional")
        or notional.optional_number("minNotional"),
        max_qty=lot.optional_number("maxQty") or Decimal("1000000000"),
        status=entry.optional_text("status", "UNKNOWN"),   # not TRADING: no new entries
    )


# --- orders --------------------------------------------------------------------------

def order_from_plain(raw: Json, where: str = QUERY_ORDER) -> Order:
    """An order of POST/GET/DELETE /fapi/v1/order or GET /fapi/v1/openOrders."""
    f = Fields(raw, where)
    filled = f.number("executedQty")
    return Order(
        symbol=f.text("symbol"),
        client_id=f.text("clientOrderId"),
        side=f.side("side"),
        type=_order_type(f.optional_text("origType") or f.text("type"), where),
        status=_plain_status(f.text("status"), where),
        quantity=f.number("origQty"),
        filled_qty=filled,
        avg_price=f.number("avgPrice") if filled else f.optional_number("avgPrice"),
        price=f.optional_number("price") or None,
        trigger_price=f.optional_number("stopPrice") or None,
        reduce_only=f.flag("reduceOnly"),
        close_position=f.flag("closePosition"),
        exchange_id=f.optional_text("orderId"),
        updated_at=f.optional_millis("updateTime", "time"),
    )


def order_from_algo(raw: Json, where: str = QUERY_ALGO) -> Order:
    """An algo order of POST/GET /fapi/v1/algoOrder or GET /fapi/v1/openAlgoOrders.

    None of these documents an executed quantity: executedQty / avgPrice are read only
    if Binance ever sends them (actualPrice is the triggered child's price).
    """
    f = Fields(raw, where)
    quantity = f.optional_number("quantity")
    executed = f.optional_number("executedQty") if f.present("executedQty") else None
    return Order(
        symbol=f.text("symbol"),
        client_id=f.text("clientAlgoId"),
        side=f.side("side"),
        type=_order_type(f.text("orderType"), where),
        status=_algo_status(f.text("algoStatus"), quantity, executed, where),
        quantity=quantity,
        filled_qty=executed or ZERO,
        avg_price=f.optional_number("avgPrice") or f.optional_number("actualPrice"),
        price=f.optional_number("price") or None,
        trigger_price=f.optional_number("triggerPrice") or None,
        reduce_only=f.flag("reduceOnly"),
        close_position=f.flag("closePosition"),
        exchange_id=f"{ALGO_ID_PREFIX}{f.optional_text('algoId')}",
        updated_at=f.optional_millis("updateTime", "createTime"),
    )


def algo_cancel_result(raw: Json) -> Order | None:
    """The answer of DELETE /fapi/v1/algoOrder: None for the documented acknowledgement
    {"algoId", "clientAlgoId", "code": "200", "msg": "success"} (the caller queries the
    order), the Order if Binance ever answers with the whole order. A negative code in the
    body raises ExchangeError(code, msg); an answer naming no order, MalformedResponse."""
    f = Fields(raw, CANCEL_ALGO)
    if f.present("algoStatus"):
        return order_from_algo(raw, CANCEL_ALGO)
    if not (f.present("clientAlgoId") or f.present("algoId")):
        raise malformed(CANCEL_ALGO, "clientAlgoId/algoId", raw)
    code = f.optional_text("code", ACK_OK)
    if code.lstrip("-").isdigit() and int(code) < 0:
        raise ExchangeError(int(code), f.optional_text("msg", "cancel refused"))
    if code != ACK_OK:
        warn_once("cancel ack code", code, CANCEL_ALGO, "acknowledged")
    return None


# --- account -------------------------------------------------------------------------

def position_from_risk(rows: Any, symbol: str, leverage: int) -> ExchangePosition:
    """The one-way (positionSide BOTH) position of GET /fapi/v3/positionRisk.

    v3 lists only symbols with a position or open orders (none: flat), and carries no
    leverage: the caller passes the leverage it set. A hedge-mode row (LONG / SHORT) for
    the symbol raises MalformedResponse rather than reading as "flat".
    """
    for raw in rows_of(rows, POSITION_RISK):
        f = Fields(raw, POSITION_RISK)
        if f.text("symbol") != symbol:
            continue
        if f.optional_text("positionSide", "BOTH") != "BOTH":
            if f.optional_number("positionAmt"):
                raise malformed(POSITION_RISK, "positionSide BOTH (hedge-mode row)", raw)
            continue
        return ExchangePosition(
            symbol=symbol, quantity=f.number("positionAmt"),
            entry_price=f.optional_number("entryPrice"),
            mark_price=f.optional_number("markPrice"),
            unrealized_pnl=f.optional_number("unRealizedProfit"),
            leverage=int(f.optional_number("leverage")) or leverage)
    return ExchangePosition(symbol=symbol, quantity=ZERO, leverage=leverage)


def balance_from_account(raw: Json) -> Balance:
    """GET /fapi/v2/account totals (USDT in single-asset mode, USD in multi-assets mode)."""
    f = Fields(raw, ACCOUNT)
    return Balance(wallet=f.number("totalWalletBalance"),
                   unrealized_pnl=f.number("totalUnrealizedProfit"),
                   available=f.number("availableBalance"))


def fill_from_trade(raw: Json, client_id: str) -> Fill:
    """One row of GET /fapi/v1/userTrades. Binance omits the client id: the caller maps it
    from the row's orderId (kept as `order_id`)."""
    f = Fields(raw, USER_TRADES)
    return Fill(trade_id=f.text("id"), symbol=f.text("symbol"), client_id=client_id,
                side=f.side("side"), quantity=f.number("qty"), price=f.number("price"),
                fee=f.optional_number("commission"),
                realized_pnl=f.optional_number("realizedPnl"), time=f.millis("time"),
                maker=f.flag("maker"), order_id=f.optional_text("orderId"))


# --- market data ---------------------------------------------------------------------

def candle_from_rest(row: Any, symbol: str, interval: timedelta, now: datetime) -> Candle:
    """One row of GET /fapi/v1/klines: [openTime, open, high, low, close, volume, closeTime...]."""
    if not isinstance(row, list) or len(row) < 6:
        raise malformed(KLINES, "[openTime, open, high, low, close, volume]", row)
    f = Fields(dict(zip(("t", "o", "h", "l", "c", "v"), row, strict=False)), KLINES)
    open_time = f.millis("t")
    return Candle(symbol=symbol, open_time=open_time, interval=interval,
                  open=f.number("o"), high=f.number("h"), low=f.number("l"),
                  close=f.number("c"), volume=f.optional_number("v"),
                  closed=open_time + interval <= now)


def candle_from_stream(kline: Json) -> Candle:
    """The "k" object of a <symbol>@kline_<interval> stream event."""
    f = Fields(kline, KLINE_EVENT)
    try:
        interval = interval_delta(f.text("i"))
    except ValueError:
        raise malformed(KLINE_EVENT, "i", kline) from None
    return Candle(symbol=f.text("s"), open_time=f.millis("t"), interval=interval,
                  open=f.number("o"), high=f.number("h"), low=f.number("l"),
                  close=f.number("c"), volume=f.optional_number("v"), closed=f.flag("x"))


def book_from_ticker(raw: Json) -> BookTicker:
    f = Fields(raw, BOOK_TICKER)
    return BookTicker(symbol=f.text("symbol"), bid=f.number("bidPrice"),
                      ask=f.number("askPrice"))


# --- user-data stream ----------------------------------------------------------------

def update_from_order_event(event: Json) -> OrderUpdate:
    """ORDER_TRADE_UPDATE -> OrderUpdate (with the Fill when quantity traded, see above)."""
    f = Fields(event, ORDER_EVENT)
    o, moment = f.child("o"), f.millis("T", "E")
    order = Order(
        symbol=o.text("s"), client_id=o.text("c"), side=o.side("S"),
        type=_order_type(o.optional_text("ot") or o.text("o"), ORDER_EVENT),
        status=_plain_status(o.text("X"), ORDER_EVENT), quantity=o.optional_number("q"),
        filled_qty=o.optional_number("z"), avg_price=o.optional_number("ap"),
        price=o.optional_number("p") or None, trigger_price=o.optional_number("sp") or None,
        reduce_only=o.flag("R"), close_position=o.flag("cp"),
        exchange_id=o.optional_text("i"), updated_at=moment)
    return OrderUpdate(order=order, fill=_fill_of(o, order, moment), time=moment)


def _fill_of(o: Fields, order: Order, moment: datetime) -> Fill | None:
    execution, last = o.optional_text("x"), o.optional_number("l")
    if execution not in FILL_EXECUTIONS + QUIET_EXECUTIONS:
        warn_once("execution type", execution, ORDER_EVENT,
                  "a fill when l > 0, else no fill")
    elif execution not in FILL_EXECUTIONS:
        return None
    if last <= 0:
        return None
    return Fill(trade_id=o.text("t"), symbol=order.symbol, client_id=order.client_id,
                side=order.side, quantity=last, price=o.number("L"),
                fee=o.optional_number("n"), realized_pnl=o.optional_number("rp"),
                time=o.optional_millis("T") or moment, maker=o.flag("m"),
                order_id=order.exchange_id)


def update_from_algo_event(event: Json) -> OrderUpdate:
    """ALGO_UPDATE -> OrderUpdate of the conditional order (its fill comes as ORDER_TRADE_UPDATE)."""
    f = Fields(event, ALGO_EVENT)
    o, moment = f.child("o"), f.millis("T", "E")
    quantity = o.optional_number("q")
    executed = o.optional_number("aq") if o.present("aq") else None
    order = Order(
        symbol=o.text("s"), client_id=o.text("caid"), side=o.side("S"),
        type=_order_type(o.text("o"), ALGO_EVENT),
        status=_algo_status(o.text("X"), quantity, executed, ALGO_EVENT), quantity=quantity,
        filled_qty=executed or ZERO, avg_price=o.optional_number("ap"),
        price=o.optional_number("p") or None, trigger_price=o.optional_number("tp") or None,
        reduce_only=o.flag("R"), close_position=o.flag("cp"),
        exchange_id=f"{ALGO_ID_PREFIX}{o.optional_text('aid')}", updated_at=moment)
    return OrderUpdate(order=order, fill=None, time=moment)


def update_from_account_event(event: Json) -> AccountUpdate:
    """ACCOUNT_UPDATE -> AccountUpdate of the one-way (ps BOTH) positions it carries.

    The event has wallet balances but no available margin, so `balance` stays None: the
    engine reads `balance()` over REST when it needs a full Balance.
    """
    f = Fields(event, ACCOUNT_EVENT)
    data = f.child("a")
    positions = []
    for raw in data.rows("P"):
        p = Fields(raw, f"{ACCOUNT_EVENT} P")
        if p.optional_text("ps", "BOTH") == "BOTH":
            positions.append(ExchangePosition(
                symbol=p.text("s"), quantity=p.number("pa"),
                entry_price=p.optional_number("ep"), unrealized_pnl=p.optional_number("up")))
    return AccountUpdate(positions=positions, balance=None, reason=data.optional_text("m"),
                         time=f.millis("T", "E"))


FUNDING_REASON = "FUNDING_FEE"
FUNDING_ASSET = "USDT"


def funding_from_account_event(event: Json) -> FundingApplied | None:
    """The funding an ACCOUNT_UPDATE with reason FUNDING_FEE booked: the USDT balance's
    "bc" (balance change except PnL and commission); None for any other reason.

    Binance's page (user-data-streams/Event-Balance-and-Position-Update): "When FUNDING FEE
    occurs in a crossed position, ACCOUNT_UPDATE will be pushed with only the balance B
    (including the FUNDING FEE asset only), without any position P message. When FUNDING FEE
    occurs in an isolated position, ... with only the balance B ... and the relative position
    message P". So the symbol is known only in isolated margin ("" otherwise); the rate is
    not sent (0 here).
    """
    f = Fields(event, ACCOUNT_EVENT)
    data = f.child("a")
    if data.optional_text("m") != FUNDING_REASON:
        return None
    amount = ZERO
    for raw in data.rows("B"):
        balance = Fields(raw, f"{ACCOUNT_EVENT} B")
        if balance.optional_text("a") == FUNDING_ASSET:
            amount += balance.optional_number("bc")
    if amount == 0:
        return None
    rows = data.rows("P")
    symbol = Fields(rows[0], f"{ACCOUNT_EVENT} P").text("s") if len(rows) == 1 else ""
    return FundingApplied(symbol, ZERO, amount, f.millis("T", "E"))
