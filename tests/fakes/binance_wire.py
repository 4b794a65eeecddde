"""Binance USD-M wire format for the fake server: simulator values -> Binance JSON.

Written from Binance's documented examples (tests/fixtures/binance/ holds each page's
example and URL), independently of the adapter's decoders (trader/exchange/
binance_codec.py, binance_order_codec.py, binance_event_codec.py), so the integration tests
check one against the other. Every answer carries exactly the documented example's fields
(tests/test_binance_codec.py compares the keys); numbers that Binance sends as strings are strings here too.

A conditional order's life on the user-data stream, as the fake tells it:
ALGO_UPDATE NEW -> (trigger) ALGO_UPDATE TRIGGERED -> ORDER_TRADE_UPDATE of the market
child order (x=TRADE, X=FILLED, c = the clientAlgoId, ot = the conditional type) ->
ALGO_UPDATE FINISHED; FakeBinance(trigger_events="fill-first") sends the child's fill
before TRIGGERED, as nautilus_trader issue #3664 reports Binance doing. Binance does not
document the child order's client id: the algo's by default (nautilus_trader matches such
fills by the algo's client id too), one of its own with FakeBinance(child_client_ids="own")
(binance_ledger.CHILD_CLIENT_IDS); either way ALGO_UPDATE's "ai" names the child's order id.
"""

from datetime import timedelta
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
    to_ms,
)
from trader.symbol_rules import SymbolRules

Json = dict[str, Any]
DOCS = "https://developers.binance.com/docs/derivatives/usds-margined-futures/"

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

# The fields of each plain-order answer, in the order of its page's example (the pages
# differ: only POST and DELETE carry cumQty, only GET and openOrders carry time).
NEW_ORDER_FIELDS = (  # DOCS + "trade/rest-api" (New Order)
    "clientOrderId", "cumQty", "cumQuote", "executedQty", "orderId", "avgPrice", "origQty",
    "price", "reduceOnly", "side", "positionSide", "status", "stopPrice", "closePosition",
    "symbol", "timeInForce", "type", "origType", "updateTime", "workingType", "priceProtect",
    "priceMatch", "selfTradePreventionMode", "goodTillDate")
QUERY_ORDER_FIELDS = (  # DOCS + "trade/rest-api/Query-Order"
    "avgPrice", "clientOrderId", "cumQuote", "executedQty", "orderId", "origQty", "origType",
    "price", "reduceOnly", "side", "positionSide", "status", "stopPrice", "closePosition",
    "symbol", "time", "timeInForce", "type", "updateTime", "workingType", "priceProtect")
CANCEL_ORDER_FIELDS = (  # DOCS + "trade/rest-api/Cancel-Order"
    "clientOrderId", "cumQty", "cumQuote", "executedQty", "orderId", "origQty", "origType",
    "price", "avgPrice", "reduceOnly", "side", "positionSide", "status", "stopPrice",
    "closePosition", "symbol", "timeInForce", "type", "updateTime", "workingType",
    "priceProtect", "priceMatch", "selfTradePreventionMode", "goodTillDate")
OPEN_ORDER_FIELDS = QUERY_ORDER_FIELDS + (  # DOCS + "trade/rest-api/Current-All-Open-Orders"
    "priceMatch", "selfTradePreventionMode", "goodTillDate")
PLAIN_ORDER_FIELDS = {"new": NEW_ORDER_FIELDS, "query": QUERY_ORDER_FIELDS,
                      "cancel": CANCEL_ORDER_FIELDS, "open": OPEN_ORDER_FIELDS}

# Algo orders: POST answers the order as placed (no actualOrderId / actualPrice yet);
# GET and openAlgoOrders add the triggered child's fields; DELETE answers an ack.
ALGO_COMMON_FIELDS = (
    "algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side", "positionSide",
    "timeInForce", "quantity", "algoStatus")
NEW_ALGO_FIELDS = ALGO_COMMON_FIELDS + (  # DOCS + "trade/rest-api/New-Algo-Order"
    "triggerPrice", "price", "icebergQuantity", "selfTradePreventionMode", "workingType",
    "priceMatch", "closePosition", "priceProtect", "reduceOnly", "activatePrice",
    "callbackRate", "createTime", "updateTime", "triggerTime", "goodTillDate")
QUERY_ALGO_FIELDS = ALGO_COMMON_FIELDS + (  # DOCS + "trade/rest-api/Query-Algo-Order"
    "actualOrderId", "actualPrice", "triggerPrice", "price", "icebergQuantity",
    "tpTriggerPrice", "tpPrice", "slTriggerPrice", "slPrice", "tpOrderType",
    "selfTradePreventionMode", "workingType", "priceMatch", "closePosition", "priceProtect",
    "reduceOnly", "createTime", "updateTime", "triggerTime", "goodTillDate")
ALGO_ORDER_FIELDS = {"new": NEW_ALGO_FIELDS, "query": QUERY_ALGO_FIELDS,
                     "open": QUERY_ALGO_FIELDS}   # openAlgoOrders rows = Query Algo Order


def num(value: Decimal | None) -> str:
    """Binance's decimal strings: plain notation, "0" for nothing."""
    if value is None:
        return "0"
    return format(value.normalize(), "f") if value else "0"


def interval_name(interval: timedelta) -> str:
    return INTERVAL_NAMES[int(interval.total_seconds())]


def plain_order(order: Order, order_id: int, created_ms: int, answer: str,
                time_in_force: str = "GTC") -> Json:
    """A plain order as `answer` ("new" | "query" | "cancel" | "open") documents it;
    `time_in_force` as it was sent (GTX: post-only)."""
    executed = order.filled_qty
    every = {
        "orderId": order_id, "symbol": order.symbol, "status": order.status.value,
        "clientOrderId": order.client_id, "price": num(order.price),
        "avgPrice": num(order.avg_price), "origQty": num(order.quantity),
        "executedQty": num(executed), "cumQty": num(executed),
        "cumQuote": num(executed * order.avg_price), "timeInForce": time_in_force,
        "type": order.type.value, "origType": order.type.value,
        "reduceOnly": order.reduce_only, "closePosition": order.close_position,
        "side": order.side.value, "positionSide": "BOTH", "stopPrice": num(order.trigger_price),
        "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "time": created_ms,
        "updateTime": to_ms(order.updated_at) if order.updated_at else created_ms,
    }
    return {name: every[name] for name in PLAIN_ORDER_FIELDS[answer]}


def algo_order(order: Order, algo_id: int, created_ms: int, actual_order_id: str,
               answer: str) -> Json:
    """An algo order as `answer` ("new" | "query" | "open") documents it."""
    updated = to_ms(order.updated_at) if order.updated_at else created_ms
    triggered = order.status is OrderStatus.FILLED
    every = {
        "algoId": algo_id, "clientAlgoId": order.client_id, "algoType": "CONDITIONAL",
        "orderType": order.type.value, "symbol": order.symbol, "side": order.side.value,
        "positionSide": "BOTH", "timeInForce": "GTC",
        "quantity": num(ZERO if order.close_position else order.quantity),
        "algoStatus": ALGO_STATUS[order.status], "actualOrderId": actual_order_id,
        "actualPrice": num(order.avg_price), "triggerPrice": num(order.trigger_price),
        "price": "0", "icebergQuantity": None, "tpTriggerPrice": "0", "tpPrice": "0",
        "slTriggerPrice": "0", "slPrice": "0", "tpOrderType": "",
        "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": "MARK_PRICE",
        "priceMatch": "NONE", "closePosition": order.close_position, "priceProtect": False,
        "reduceOnly": order.reduce_only, "activatePrice": "", "callbackRate": "",
        "createTime": created_ms, "updateTime": updated,
        "triggerTime": updated if triggered else 0, "goodTillDate": 0,
    }
    return {name: every[name] for name in ALGO_ORDER_FIELDS[answer]}


def algo_cancel_ack(order: Order, algo_id: int) -> Json:
    """DELETE /fapi/v1/algoOrder: an acknowledgement, not the order
    (DOCS + "trade/rest-api/Cancel-Algo-Order")."""
    return {"algoId": algo_id, "clientAlgoId": order.client_id, "code": "200",
            "msg": "success"}


BNB_STEP = Decimal("0.00000001")


def commission(fee: Decimal | None, bnb_price: Decimal | None) -> tuple[str, str]:
    """A trade's commission as Binance names it: (asset, amount). With "BNB burn" on
    (GET /fapi/v2/account "feeBurn": true, DOCS + "account/rest-api/Account-Information-V2")
    and BNB in the wallet (`bnb_price`: BNB's price in USDT), Binance charges it in BNB and
    says so in ORDER_TRADE_UPDATE "N" (Commission Asset) and userTrades "commissionAsset"
    (DOCS + "user-data-streams/Event-Order-Update", "trade/rest-api/Account-Trade-List"):
    the simulator's USDT fee at that price, to 8 decimals (Binance's discount for paying in
    BNB left out). Else, as when there is no BNB to pay with, in USDT."""
    if bnb_price is None or not fee:
        return "USDT", num(fee)
    return "BNB", num((fee / bnb_price).quantize(BNB_STEP))


def order_trade_update(order: Order, fill: Fill | None, order_id: int, moment_ms: int,
                       order_type: str | None = None, time_in_force: str = "GTC",
                       bnb_price: Decimal | None = None, execution: str = "TRADE",
                       expire_reason: str = "0", original_type: str | None = None) -> Json:
    """ORDER_TRADE_UPDATE for a plain order, or for the market child of an algo order
    (DOCS + "user-data-streams/Event-Order-Update"; AP/cr are trailing-stop only); its
    commission in BNB with `bnb_price` (`commission`). `execution`: "x" of a fill (TRADE,
    or CALCULATED, "Liquidation Execution"); `expire_reason`: "er" (the page's "Expiry
    Reason", 5 when the account was liquidated); `original_type`: "ot", the order's own
    type unless given (a liquidation's: LIQUIDATION)."""
    asset, fee = commission(fill.fee if fill else None, bnb_price)
    execution = execution if fill else {OrderStatus.NEW: "NEW", OrderStatus.CANCELED: "CANCELED",
                                      OrderStatus.EXPIRED: "EXPIRED"}.get(order.status, "NEW")
    return {"e": "ORDER_TRADE_UPDATE", "E": moment_ms, "T": moment_ms, "o": {
        "s": order.symbol, "c": order.client_id, "S": order.side.value,
        "o": order_type or order.type.value, "f": time_in_force, "q": num(order.quantity),
        "p": num(order.price), "ap": num(order.avg_price), "sp": num(order.trigger_price),
        "x": execution, "X": order.status.value, "i": order_id,
        "l": num(fill.quantity if fill else None), "z": num(order.filled_qty),
        "L": num(fill.price if fill else None), "N": asset, "n": fee, "T": moment_ms,
        "t": int(fill.trade_id) if fill else 0, "b": "0", "a": "0",
        "m": fill.maker if fill else False, "R": order.reduce_only,
        "wt": "CONTRACT_PRICE", "ot": original_type or order.type.value, "ps": "BOTH",
        "cp": order.close_position, "pP": False, "si": 0, "ss": 0,
        "rp": num(fill.realized_pnl if fill else None), "V": "EXPIRE_MAKER", "pm": "NONE",
        "gtd": 0, "er": expire_reason,
    }}


def algo_update(order: Order, algo_id: int, status: str, moment_ms: int,
                actual_order_id: str = "", reject_reason: str = "") -> Json:
    """ALGO_UPDATE (DOCS + "user-data-streams/Event-Algo-Order-Update"); "rm" is the
    page's reject reason ("Reduce Only reject" in its example), "" unless rejected."""
    executed = status == "FINISHED"
    return {"e": "ALGO_UPDATE", "T": moment_ms, "E": moment_ms, "o": {
        "caid": order.client_id, "aid": algo_id, "at": "CONDITIONAL", "o": order.type.value,
        "s": order.symbol, "S": order.side.value, "ps": "BOTH", "f": "GTC",
        "q": num(ZERO if order.close_position else order.quantity), "X": status,
        "ai": actual_order_id, "ap": num(order.avg_price if executed else None),
        "aq": num(order.filled_qty if executed else None), "act": "MARKET" if actual_order_id
        else "0", "tp": num(order.trigger_price), "p": "0", "V": "EXPIRE_MAKER",
        "wt": "MARK_PRICE", "pm": "NONE", "cp": order.close_position, "pP": False,
        "R": order.reduce_only, "tt": moment_ms if actual_order_id else 0, "gtd": 0,
        "rm": reject_reason,
    }}


def conditional_order_trigger_reject(order: Order, order_id: int, reason: str,
                                     moment_ms: int) -> Json:
    """CONDITIONAL_ORDER_TRIGGER_REJECT, "when a triggered TP/SL order got rejected" (DOCS +
    "user-data-streams/Event-Conditional-Order-Trigger-Reject"): the order by symbol and
    orderId only, and the reject reason."""
    return {"e": "CONDITIONAL_ORDER_TRIGGER_REJECT", "E": moment_ms, "T": moment_ms,
            "or": {"s": order.symbol, "i": order_id, "r": reason}}


def account_update(positions: list[ExchangePosition], balance: Balance, reason: str,
                   moment_ms: int, balance_change: Decimal | None = None,
                   margin_types: dict[str, str] | None = None) -> Json:
    """ACCOUNT_UPDATE (DOCS + "user-data-streams/Event-Balance-and-Position-Update").
    `balance_change` is "bc" ("balance change except PnL and commission"): the funding of a
    FUNDING_FEE update, a transfer's amount. `margin_types`: symbol -> "ISOLATED" or
    "CROSSED" (POST /fapi/v1/marginType's words; a symbol never set is on Binance's default,
    cross), each row's "mt" ("isolated" in the page's example, "cross" otherwise); None:
    every row isolated."""
    change = num(balance_change) if balance_change is not None else "0"
    types = margin_types if margin_types is not None else {}
    return {"e": "ACCOUNT_UPDATE", "E": moment_ms, "T": moment_ms, "a": {
        "m": reason,
        "B": [{"a": "USDT", "wb": num(balance.wallet), "cw": num(balance.wallet), "bc": change}],
        "P": [{"s": p.symbol, "pa": num(p.quantity), "ep": num(p.entry_price),
               "bep": num(p.entry_price), "cr": "0", "up": num(p.unrealized_pnl),
               "mt": "isolated" if margin_types is None
               or types.get(p.symbol, "CROSSED") == "ISOLATED" else "cross",
               "iw": "0", "ps": "BOTH"} for p in positions],
    }}


def position_risk(position: ExchangePosition, mark: Decimal, moment_ms: int) -> Json:
    """One row of GET /fapi/v3/positionRisk (DOCS + "trade/rest-api/Position-Information-V3";
    v3 carries no leverage)."""
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


def account(balance: Balance, positions: list[ExchangePosition], leverage: dict[str, int],
            moment_ms: int, multi_assets: bool = False,
            changed_ms: dict[str, int] | None = None) -> Json:
    """GET /fapi/v2/account, single-asset mode (DOCS + "account/rest-api/Account-Information-V2").
    A position row's "updateTime" is when it last changed (`changed_ms`, else `moment_ms`),
    as positionRisk's."""
    changed = changed_ms or {}
    wallet, available = num(balance.wallet), num(balance.available)
    return {
        "feeTier": 0, "feeBurn": True, "canTrade": True, "canDeposit": True,
        "canWithdraw": True, "updateTime": 0, "multiAssetsMargin": multi_assets, "tradeGroupId": -1,
        "totalInitialMargin": "0", "totalMaintMargin": "0", "totalWalletBalance": wallet,
        "totalUnrealizedProfit": num(balance.unrealized_pnl),
        "totalMarginBalance": num(balance.equity), "totalPositionInitialMargin": "0",
        "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": wallet,
        "totalCrossUnPnl": "0", "availableBalance": available, "maxWithdrawAmount": available,
        "assets": [{
            "asset": "USDT", "walletBalance": wallet,
            "unrealizedProfit": num(balance.unrealized_pnl),
            "marginBalance": num(balance.equity), "maintMargin": "0", "initialMargin": "0",
            "positionInitialMargin": "0", "openOrderInitialMargin": "0",
            "crossWalletBalance": wallet, "crossUnPnl": "0", "availableBalance": available,
            "maxWithdrawAmount": available, "marginAvailable": True, "updateTime": moment_ms}],
        "positions": [{
            "symbol": p.symbol, "initialMargin": "0", "maintMargin": "0",
            "unrealizedProfit": num(p.unrealized_pnl), "positionInitialMargin": "0",
            "openOrderInitialMargin": "0", "leverage": str(leverage.get(p.symbol, 1)),
            "isolated": True, "entryPrice": num(p.entry_price), "maxNotional": "250000",
            "bidNotional": "0", "askNotional": "0", "positionSide": "BOTH",
            "positionAmt": num(p.quantity), "updateTime": changed.get(p.symbol, moment_ms)}
            for p in positions],
    }


def user_trade(fill: Fill, order_id: int, bnb_price: Decimal | None = None) -> Json:
    """One row of GET /fapi/v1/userTrades (DOCS + "trade/rest-api/Account-Trade-List";
    no client order id); its commission in BNB with `bnb_price` (`commission`)."""
    asset, fee = commission(fill.fee, bnb_price)
    return {
        "buyer": fill.side.value == "BUY", "commission": fee,
        "commissionAsset": asset, "id": int(fill.trade_id), "maker": fill.maker,
        "orderId": order_id, "price": num(fill.price), "qty": num(fill.quantity),
        "quoteQty": num(fill.quantity * fill.price), "realizedPnl": num(fill.realized_pnl),
        "side": fill.side.value, "positionSide": "BOTH", "symbol": fill.symbol,
        "time": to_ms(fill.time),
    }


def symbol_info(rules: SymbolRules) -> Json:
    """One entry of exchangeInfo's symbols (DOCS + "market-data/rest-api/Exchange-Information")."""
    tick, step = num(rules.tick_size), num(rules.step_size)
    return {
        "symbol": rules.symbol, "pair": rules.symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1598252400000, "status": rules.status,
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": rules.symbol.removesuffix("USDT"), "quoteAsset": "USDT",
        "marginAsset": "USDT", "pricePrecision": 8, "quantityPrecision": 8,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "filters": [
            # The rules' own bounds when they have them, else BTCUSDT's maxPrice and a
            # minPrice of one tick (0 would be "disabled", also as documented)
            {"filterType": "PRICE_FILTER",
             "maxPrice": num(rules.max_price) if rules.max_price > 0 else "4529764",
             "minPrice": num(rules.min_price) if rules.min_price > 0 else tick,
             "tickSize": tick},
            {"filterType": "LOT_SIZE", "maxQty": num(rules.max_qty),
             "minQty": num(rules.min_qty), "stepSize": step},
            # MARKET_LOT_SIZE, "the quantity rules for MARKET orders" (DOCS +
            # "common-definition", Filters): its own when the rules have one (the page's
            # example: maxQty 590119 beside LOT_SIZE's 10000000), else LOT_SIZE's
            {"filterType": "MARKET_LOT_SIZE",
             "maxQty": num(rules.market_max_qty or rules.max_qty),
             "minQty": num(rules.market_min_qty or rules.min_qty),
             "stepSize": num(rules.market_step_size) if rules.market_step_size else step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": num(rules.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "liquidationFee": "0.012500", "marketTakeBound": "0.05",
    }


def exchange_info(symbols: list[Json], rate_limits: list[Json], moment_ms: int) -> Json:
    return {"exchangeFilters": [], "rateLimits": rate_limits, "serverTime": moment_ms,
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"}],
            "symbols": symbols, "timezone": "UTC"}


def book_ticker(book: BookTicker, moment_ms: int) -> Json:
    """GET /fapi/v1/ticker/bookTicker (DOCS + "market-data/rest-api/Symbol-Order-Book-Ticker")."""
    return {"symbol": book.symbol, "bidPrice": num(book.bid), "bidQty": "10",
            "askPrice": num(book.ask), "askQty": "10", "time": moment_ms}


def premium_index(symbol: str, mark: Decimal, funding_rate: Decimal, moment_ms: int) -> Json:
    """GET /fapi/v1/premiumIndex for one symbol (DOCS + "market-data/rest-api/Mark-Price")."""
    return {"symbol": symbol, "markPrice": num(mark), "indexPrice": num(mark),
            "estimatedSettlePrice": num(mark), "lastFundingRate": num(funding_rate),
            "interestRate": "0.00010000", "nextFundingTime": 0, "time": moment_ms}


def kline_row(candle: Candle) -> list[Any]:
    """One row of GET /fapi/v1/klines."""
    open_ms = to_ms(candle.open_time)
    return [open_ms, num(candle.open), num(candle.high), num(candle.low), num(candle.close),
            num(candle.volume), to_ms(candle.close_time) - 1, "0", 1, "0", "0", "0"]


def kline_event(candle: Candle, moment_ms: int) -> Json:
    """A combined-stream <symbol>@kline_<interval> message: {"stream": ..., "data": {"e":
    "kline", ...}}, the fields of the documented example (DOCS + "websocket-market-streams/
    Kline-Candlestick-Streams"): "T" is the close time's last millisecond, "x" whether the
    kline is closed (Binance pushes the open one every 250 ms); trade ids, counts and
    quote volumes are placeholders."""
    name = interval_name(candle.interval)
    kline = {"t": to_ms(candle.open_time), "T": to_ms(candle.close_time) - 1,
             "s": candle.symbol, "i": name, "f": 0, "L": 0, "o": num(candle.open),
             "c": num(candle.close), "h": num(candle.high), "l": num(candle.low),
             "v": num(candle.volume), "n": 1, "x": candle.closed, "q": "0", "V": "0",
             "Q": "0", "B": "0"}
    return {"stream": f"{candle.symbol.lower()}@kline_{name}",
            "data": {"e": "kline", "E": moment_ms, "s": candle.symbol, "k": kline}}


def book_ticker_event(book: BookTicker, update_id: int, moment_ms: int) -> Json:
    """A combined-stream <symbol>@bookTicker message (DOCS + "websocket-market-streams/
    Individual-Symbol-Book-Ticker-Streams"); the fake's book has 10 at each side."""
    return {"stream": f"{book.symbol.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": update_id, "E": moment_ms, "T": moment_ms, "s": book.symbol,
        "b": num(book.bid), "B": "10", "a": num(book.ask), "A": "10"}}


def mark_price_event(symbol: str, mark: Decimal, funding_rate: Decimal, moment_ms: int,
                     stream_suffix: str = "@markPrice@1s") -> Json:
    """A combined-stream <symbol>@markPrice[@1s] message (DOCS + "websocket-market-streams/
    Mark-Price-Stream"): index, settle and average prices all at the mark; next funding at
    the next 8-hour mark."""
    eight_hours = 8 * 3600 * 1000
    return {"stream": f"{symbol.lower()}{stream_suffix}", "data": {
        "e": "markPriceUpdate", "E": moment_ms, "s": symbol, "p": num(mark), "ap": num(mark),
        "i": num(mark), "P": num(mark), "r": num(funding_rate),
        "T": moment_ms - moment_ms % eight_hours + eight_hours}}
