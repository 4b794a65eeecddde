"""Binance USD-M orders -> `Order`, with no I/O: plain and algo (conditional) orders as the
REST answers carry them, and the order types and statuses the stream events share.

The shapes read here are Binance's documented examples (tests/fixtures/binance/, each with
its page); reading is tolerant as binance_codec.py describes (unknown enum values logged
once and read as below, a missing field we need raises `MalformedResponse`).

Order types: MARKET, LIMIT, STOP_MARKET, TAKE_PROFIT_MARKET as themselves; any other type
(LIQUIDATION, TRAILING_STOP_MARKET, STOP, TAKE_PROFIT, or one Binance adds later) is
`OrderType.OTHER`: the order and its fills still reach the engine under their client id.

Plain order statuses (X of ORDER_TRADE_UPDATE, status of /fapi/v1/order):

    NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED -> themselves
    NEW_INSURANCE, NEW_ADL -> NEW (liquidation / auto-deleverage orders, still working)
    EXPIRED_IN_MATCH       -> EXPIRED (expired by self-trade prevention)

Algo (conditional) order statuses map onto `OrderStatus` like this:

    NEW          -> NEW        waiting in the Algo Service for its trigger
    TRIGGERING   -> NEW        trigger met, being forwarded: still live, not filled yet (one
                               that never executes is caught by the price: stuck_trigger.py)
    TRIGGERED    -> NEW / PARTIALLY_FILLED / FILLED by the executed quantity, when known
                   (placed in the matching engine; a MARKET child fills at once)
    FINISHED     -> what its child executed: "the triggered conditional order has been
                   filled or canceled in the matching engine". FILLED (with that quantity,
                   all or part) when it executed anything; EXPIRED when it executed
                   nothing (its MARKET child expired or was cancelled unfilled, e.g. expiry
                   reason 4 "knocked out by another higher priority RO (market) order":
                   .../user-data-streams/Event-Order-Update): the stop is gone, replaced at
                   once, not waited for as a fill. FILLED when the quantity is unknown.
    CANCELED     -> CANCELED
    EXPIRED      -> EXPIRED    cancelled by the system (e.g. position closed)
    REJECTED     -> REJECTED   e.g. margin check failed at trigger time

Only ALGO_UPDATE tells the executed quantity (aq, "executed quantity in matching engine":
.../user-data-streams/Event-Algo-Order-Update); no REST algo answer documents one, so from
REST a TRIGGERED order reads NEW. A FINISHED one names its child, "actualOrderId"
(.../trade/rest-api/Query-Algo-Order), whose own answer (GET /fapi/v1/order by orderId,
.../trade/rest-api/Query-Order) tells "executedQty": the adapter reads it
(`finished_child_id`, then `finished_by_child`). Without it (no child named, or the child
not found) FINISHED reads FILLED and the position read tells whether the stop really closed
anything.

An UNKNOWN status (plain or algo) reads as EXPIRED: not live. Counting an order we cannot
read as working could let the agent believe a stop-loss protects a position when it may
not; read as gone, the sentinel re-attaches protection (a duplicate reduce-only or
closePosition stop is harmless: it cannot open a position) and the position read, not the
order, decides whether anything filled.

A closePosition algo order reports quantity 0 (it closes whatever is open at trigger
time). An algo order's `exchange_id` is "algo:<algoId>"; a plain order's is its orderId.
DELETE /fapi/v1/algoOrder answers an acknowledgement, not the order (`algo_cancel_result`).
"""

from dataclasses import replace
from decimal import Decimal
from typing import Any

from trader.domain import ZERO, Order, OrderStatus, OrderType
from trader.exchange.base import ExchangeError
from trader.exchange.binance_fields import Fields, malformed, warn_once

Json = dict[str, Any]

NEW_ORDER, QUERY_ORDER, CANCEL_ORDER = ("POST /fapi/v1/order", "GET /fapi/v1/order",
                                        "DELETE /fapi/v1/order")
OPEN_ORDERS, OPEN_ALGO_ORDERS = "GET /fapi/v1/openOrders", "GET /fapi/v1/openAlgoOrders"
NEW_ALGO, QUERY_ALGO, CANCEL_ALGO = ("POST /fapi/v1/algoOrder", "GET /fapi/v1/algoOrder",
                                     "DELETE /fapi/v1/algoOrder")

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
ACK_OK = "200"            # DELETE /fapi/v1/algoOrder: {"code": "200", "msg": "success"}
ALGO_ID_PREFIX = "algo:"
# Said with a stop FINISHED with nothing executed (an Order's `reason`, shown in its
# SL_MISSING alert): ended by the exchange after its trigger, not cancelled by anyone
NOTHING_EXECUTED = "FINISHED: triggered, its market order ended with nothing executed"


# --- enums we may not know ---------------------------------------------------------------

def order_type(text: str, where: str) -> OrderType:
    if text in OrderType.__members__ and text != OrderType.OTHER.value:
        return OrderType(text)
    if text not in FOREIGN_TYPES:
        warn_once("order type", text, where, "OTHER")
    return OrderType.OTHER


def plain_status(text: str, where: str) -> OrderStatus:
    status = PLAIN_STATUS.get(text)
    if status is None:
        warn_once("order status", text, where, f"{UNKNOWN_STATUS_READ_AS} (not live)")
        return UNKNOWN_STATUS_READ_AS
    return status


def algo_status(text: str, quantity: Decimal, executed: Decimal | None,
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
        return OrderStatus.EXPIRED
    return status


def finished_child_id(raw: Json) -> str:
    """The child order to ask what a FINISHED algo answer executed: its "actualOrderId",
    when the answer itself carries no executed quantity; "" when there is nothing to ask."""
    if not isinstance(raw, dict) or raw.get("algoStatus") != "FINISHED" \
            or "executedQty" in raw:
        return ""
    child = raw.get("actualOrderId")
    return str(child) if child not in (None, "", 0, "0") else ""


def finished_by_child(algo: Order, child: Order) -> Order:
    """A FINISHED algo order as its child order (GET /fapi/v1/order) tells it: the child's
    executed quantity and price. A child still live (its end not shown yet) reads as a
    TRIGGERED algo order does, by what it executed so far."""
    executed = child.filled_qty
    if child.status.live:
        status = algo_status("TRIGGERED", algo.quantity, executed)
    else:
        status = algo_status("FINISHED", algo.quantity, executed)
    return replace(algo, status=status, filled_qty=executed,
                   avg_price=child.avg_price if executed else algo.avg_price,
                   reason=finished_reason("FINISHED", status) or algo.reason)


def finished_reason(text: str, status: OrderStatus) -> str:
    """NOTHING_EXECUTED for an algo order FINISHED that reads EXPIRED, else ""."""
    return NOTHING_EXECUTED if text == "FINISHED" and status is OrderStatus.EXPIRED else ""


# --- orders --------------------------------------------------------------------------

def order_from_plain(raw: Json, where: str = QUERY_ORDER) -> Order:
    """An order of POST/GET/DELETE /fapi/v1/order or GET /fapi/v1/openOrders."""
    f = Fields(raw, where)
    filled = f.number("executedQty")
    return Order(
        symbol=f.text("symbol"),
        client_id=f.text("clientOrderId"),
        side=f.side("side"),
        type=order_type(f.optional_text("origType") or f.text("type"), where),
        status=plain_status(f.text("status"), where),
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
        type=order_type(f.text("orderType"), where),
        status=algo_status(f.text("algoStatus"), quantity, executed, where),
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
