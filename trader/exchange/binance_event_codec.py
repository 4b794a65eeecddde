"""Binance USD-M stream events -> domain values, with no I/O: the user-data stream's
ORDER_TRADE_UPDATE, ALGO_UPDATE and ACCOUNT_UPDATE, and the kline stream's candles.

The shapes read here are Binance's documented examples (tests/fixtures/binance/, each with
its page); reading is tolerant as binance_codec.py describes. Order types and statuses read
as binance_order_codec.py describes; ALGO_UPDATE is the only payload that tells an algo
order's executed quantity (aq).

Execution types (x of ORDER_TRADE_UPDATE): TRADE and CALCULATED (a liquidation fill) carry
a Fill; NEW, CANCELED, EXPIRED, AMENDMENT carry none; an unknown one carries a Fill when
its last filled quantity l > 0 (quantity moved; logged).

A classic STOP_MARKET / TAKE_PROFIT_MARKET (a server without the Algo Order API) that
triggers says EXPIRED with expire reason er=8, "The initial order has expired after the
stop order is triggered" (.../user-data-streams/Event-Order-Update, "Expire Reason"), then
trades as a MARKET order under the same ids: that EXPIRED reads NEW, as an algo order's
TRIGGERED does (the stop is executing, not gone: replacing it would make a second one).
Its fill, or the final status of its market order, follows; REST reads check it as any.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from trader.domain import (
    SETTLEMENT_ASSET,
    ZERO,
    Candle,
    ExchangePosition,
    Fill,
    Order,
    OrderStatus,
)
from trader.exchange.base import (
    AccountUpdate,
    AssetModeChanged,
    FundingApplied,
    LeverageChanged,
    MarginCall,
    MarginTypeChanged,
    MoneyMoved,
    OrderUpdate,
    TriggerRejected,
)
from trader.exchange.binance_fields import Fields, interval_delta, malformed, warn_once
from trader.exchange.binance_order_codec import (
    ALGO_ID_PREFIX,
    algo_status,
    finished_reason,
    order_type,
    plain_status,
)

Json = dict[str, Any]

ORDER_EVENT, ALGO_EVENT, ACCOUNT_EVENT = "ORDER_TRADE_UPDATE", "ALGO_UPDATE", "ACCOUNT_UPDATE"
CONFIG_EVENT, MARGIN_EVENT = "ACCOUNT_CONFIG_UPDATE", "MARGIN_CALL"
TRIGGER_REJECT_EVENT = "CONDITIONAL_ORDER_TRIGGER_REJECT"
KLINE_EVENT = "kline stream event"
FILL_EXECUTIONS = ("TRADE", "CALCULATED")      # CALCULATED: a liquidation fill
QUIET_EXECUTIONS = ("NEW", "CANCELED", "EXPIRED", "AMENDMENT")
EXPIRED_BY_TRIGGER = "8"      # er: "The initial order has expired after the stop order is triggered"


# --- market streams ------------------------------------------------------------------

def candle_from_stream(kline: Any) -> Candle:
    """The "k" object of a <symbol>@kline_<interval> stream event (anything else, an event
    without one included, is malformed)."""
    f = Fields(kline, KLINE_EVENT)
    try:
        interval = interval_delta(f.text("i"))
    except ValueError:
        raise malformed(KLINE_EVENT, "i", kline) from None
    return Candle(symbol=f.text("s"), open_time=f.millis("t"), interval=interval,
                  open=f.number("o"), high=f.number("h"), low=f.number("l"),
                  close=f.number("c"), volume=f.optional_number("v"), closed=f.flag("x"))


# --- user-data stream ----------------------------------------------------------------

def update_from_order_event(event: Json) -> OrderUpdate:
    """ORDER_TRADE_UPDATE -> OrderUpdate (with the Fill when quantity traded, see above)."""
    f = Fields(event, ORDER_EVENT)
    o, moment = f.child("o"), f.millis("T", "E")
    order = Order(
        symbol=o.text("s"), client_id=o.text("c"), side=o.side("S"),
        type=order_type(o.optional_text("ot") or o.text("o"), ORDER_EVENT),
        status=_order_event_status(o), quantity=o.optional_number("q"),
        filled_qty=o.optional_number("z"), avg_price=o.optional_number("ap"),
        price=o.optional_number("p") or None, trigger_price=o.optional_number("sp") or None,
        reduce_only=o.flag("R"), close_position=o.flag("cp"),
        exchange_id=o.optional_text("i"), updated_at=moment)
    return OrderUpdate(order=order, fill=_fill_of(o, order, moment), time=moment)


def _order_event_status(o: Fields) -> OrderStatus:
    """X, but the EXPIRED of a conditional order's trigger (er 8) is NEW: see the docstring."""
    status = plain_status(o.text("X"), ORDER_EVENT)
    if status is OrderStatus.EXPIRED and o.optional_text("er") == EXPIRED_BY_TRIGGER:
        return OrderStatus.NEW
    return status


def _fill_of(o: Fields, order: Order, moment: datetime) -> Fill | None:
    """The trade an ORDER_TRADE_UPDATE tells, if any. Its fee is "n" in the asset "N"
    ("Commission Asset": BNB when the account pays its fees in BNB, GET /fapi/v2/account
    "feeBurn"; https://developers.binance.com/docs/derivatives/usds-margined-futures/
    user-data-streams/Event-Order-Update): never taken for USDT unless it says so."""
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
                order_id=order.exchange_id, fee_asset=o.optional_text("N") or SETTLEMENT_ASSET)


def update_from_algo_event(event: Json) -> OrderUpdate:
    """ALGO_UPDATE -> OrderUpdate of the conditional order (its fill comes as ORDER_TRADE_UPDATE)."""
    f = Fields(event, ALGO_EVENT)
    o, moment = f.child("o"), f.millis("T", "E")
    quantity = o.optional_number("q")
    executed = o.optional_number("aq") if o.present("aq") else None
    text = o.text("X")
    status = algo_status(text, quantity, executed, ALGO_EVENT)
    order = Order(
        symbol=o.text("s"), client_id=o.text("caid"), side=o.side("S"),
        type=order_type(o.text("o"), ALGO_EVENT),
        status=status, quantity=quantity,
        filled_qty=executed or ZERO, avg_price=o.optional_number("ap"),
        price=o.optional_number("p") or None, trigger_price=o.optional_number("tp") or None,
        reduce_only=o.flag("R"), close_position=o.flag("cp"),
        exchange_id=f"{ALGO_ID_PREFIX}{o.optional_text('aid')}", updated_at=moment,
        reason=o.optional_text("rm") or finished_reason(text, status))
    return OrderUpdate(order=order, fill=None, time=moment,
                       child_order_id=o.optional_text("ai"))


def trigger_reject_from_event(event: Json) -> TriggerRejected:
    """CONDITIONAL_ORDER_TRIGGER_REJECT -> TriggerRejected: "when a triggered TP/SL order
    got rejected" (https://developers.binance.com/docs/derivatives/usds-margined-futures/
    user-data-streams/Event-Conditional-Order-Trigger-Reject): "or" names the order by
    symbol s and orderId i (no client id), r is the reject reason."""
    f = Fields(event, TRIGGER_REJECT_EVENT)
    rejected = f.child("or")
    return TriggerRejected(symbol=rejected.text("s"), order_id=rejected.text("i"),
                           reason=rejected.optional_text("r"), time=f.millis("T", "E"))


def update_from_account_event(event: Json) -> AccountUpdate:
    """ACCOUNT_UPDATE -> AccountUpdate of the one-way (ps BOTH) positions it carries.

    The event has wallet balances but no available margin, so no Balance is made of them:
    the engine reads `balance()` over REST when it needs one.
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
    return AccountUpdate(positions=positions, reason=data.optional_text("m"),
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
    amount = _usdt_balance_change(data)
    if amount == 0:
        return None
    rows = data.rows("P")
    symbol = Fields(rows[0], f"{ACCOUNT_EVENT} P").text("s") if len(rows) == 1 else ""
    return FundingApplied(symbol, ZERO, amount, f.millis("T", "E"))



def _usdt_balance_change(data: Fields) -> Decimal:
    """The USDT balance's "bc" of an ACCOUNT_UPDATE's "a" (0 when it has none)."""
    amount = ZERO
    for raw in data.rows("B"):
        balance = Fields(raw, f"{ACCOUNT_EVENT} B")
        if balance.optional_text("a") == FUNDING_ASSET:
            amount += balance.optional_number("bc")
    return amount

# The reasons "m" whose "bc" is a trading result (a fill's is 0: "except PnL and commission";
# funding is journaled as such; INSURANCE_CLEAR is a liquidation's clearance fee) or moves
# nothing in or out (MARGIN_TYPE_CHANGE). Every other reason the page lists (DEPOSIT,
# WITHDRAW, WITHDRAW_REJECT, ADJUSTMENT, ADMIN_DEPOSIT, ADMIN_WITHDRAW, MARGIN_TRANSFER,
# ASSET_TRANSFER, OPTIONS_PREMIUM_FEE, OPTIONS_SETTLE_PROFIT, AUTO_EXCHANGE,
# COIN_SWAP_DEPOSIT, COIN_SWAP_WITHDRAW), and one it may add, is money moved.
TRADING_REASONS = frozenset({"ORDER", FUNDING_REASON, "INSURANCE_CLEAR", "MARGIN_TYPE_CHANGE"})


def money_moved_from_account_event(event: Json) -> MoneyMoved | None:
    """The USDT an ACCOUNT_UPDATE moved in or out that is no trading result: the USDT
    balance's "bc" ("Balance Change except PnL and Commission") of a reason not in
    TRADING_REASONS; None for a trading reason or no USDT change. Page:
    https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
    Event-Balance-and-Position-Update (the reasons "m", "bc")."""
    f = Fields(event, ACCOUNT_EVENT)
    data = f.child("a")
    reason = data.optional_text("m")
    if reason in TRADING_REASONS:
        return None
    amount = _usdt_balance_change(data)
    return MoneyMoved(amount, reason, f.millis("T", "E")) if amount != 0 else None


def update_from_config_event(event: Json) -> LeverageChanged | AssetModeChanged | None:
    """ACCOUNT_CONFIG_UPDATE -> the symbol's new leverage ("ac": {"s", "l"}), or the
    account's Multi-Assets mode ("ai": {"j"}: switched on, every symbol is on cross margin);
    None for neither. Page: https://developers.binance.com/docs/derivatives/
    usds-margined-futures/user-data-streams/Event-Account-Configuration-Update-previous-
    Leverage-Update ("When the user Multi-Assets margin mode changes the payload will
    contain the object ai ... where j represents the user Multi-Assets margin mode")
    """
    f = Fields(event, CONFIG_EVENT)
    if f.present("ac"):
        ac = f.child("ac")
        return LeverageChanged(ac.text("s"), ac.leverage("l"), f.millis("T", "E"))
    if f.present("ai"):
        return AssetModeChanged(f.child("ai").flag("j"), f.millis("T", "E"))
    return None


MARGIN_TYPE_REASON = "MARGIN_TYPE_CHANGE"
CROSS = "cross"


def margin_types_from_account_event(event: Json) -> list[MarginTypeChanged]:
    """The margin types an ACCOUNT_UPDATE tells: every position row ("mt", "isolated" or
    "cross") of a MARGIN_TYPE_CHANGE, and any row on cross whatever the reason (a position
    opened on cross margin); none for the usual isolated rows of a fill. Page:
    https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
    Event-Balance-and-Position-Update ("including changes on balances, positions, or margin
    type"; "mt": margin type)."""
    f = Fields(event, ACCOUNT_EVENT)
    data = f.child("a")
    changed = data.optional_text("m") == MARGIN_TYPE_REASON
    told = []
    for raw in data.rows("P"):
        p = Fields(raw, f"{ACCOUNT_EVENT} P")
        margin = p.optional_text("mt")
        if margin and (changed or margin == CROSS):
            told.append(MarginTypeChanged(p.text("s"), margin != CROSS,
                                          p.optional_number("pa") != 0, f.millis("T", "E")))
    return told


def margin_call_from_event(event: Json) -> MarginCall:
    """MARGIN_CALL -> its positions ("p": symbol s, amount pa, mark mp, unrealized up,
    maintenance margin mm). "ps" is LONG / SHORT in hedge mode: the amount is signed by it
    there (one-way BOTH amounts are signed already). Page:
    https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
    Event-Margin-Call
    """
    f = Fields(event, MARGIN_EVENT)
    positions, maintenance = [], {}
    for raw in f.rows("p"):
        p = Fields(raw, f"{MARGIN_EVENT} p")
        amount = p.number("pa")
        if p.optional_text("ps", "BOTH") == "SHORT" and amount > 0:
            amount = -amount
        symbol = p.text("s")
        positions.append(ExchangePosition(symbol=symbol, quantity=amount,
                                          mark_price=p.optional_number("mp"),
                                          unrealized_pnl=p.optional_number("up")))
        maintenance[symbol] = p.optional_number("mm")
    return MarginCall(positions, maintenance, f.millis("E", "T"))
