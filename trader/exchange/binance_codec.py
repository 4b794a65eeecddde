"""Binance USD-M REST answers -> domain values, with no I/O: error answers, exchange info,
the account (position, balance, trades) and market data (klines, book ticker).

Orders are read by binance_order_codec.py and stream events by binance_event_codec.py. The
shapes read here are Binance's documented examples (tests/fixtures/binance/, each with its
page). What we send is binance_requests.py; the field-by-field reading is binance_fields.py.

Reading is tolerant, never fatal (here and in the two codecs above): unknown extra fields
are ignored, unknown enum values are logged (WARNING once per value) and read as each
codec's docstring says. A payload that lacks a field we cannot do without (a client id, a
side, a status, a quantity that moved) raises `MalformedResponse(endpoint, field)` and logs
the payload, truncated; never a bare KeyError.
"""

import math
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from loguru import logger

from trader.domain import (
    SETTLEMENT_ASSET,
    ZERO,
    Balance,
    BookTicker,
    Candle,
    ExchangePosition,
    Fill,
)
from trader.exchange.base import (
    LONGEST_BAN,
    ExchangeError,
    FundingIncome,
    MalformedResponse,
    UnknownOutcome,
)
from trader.exchange.binance_fields import Fields, malformed, rows_of
from trader.exchange.errors import SERVICE_UNAVAILABLE_503, UNKNOWN_ERROR_503, execution_unknown
from trader.symbol_rules import SymbolRules

Json = dict[str, Any]

POSITION_RISK, ACCOUNT, USER_TRADES = ("GET /fapi/v3/positionRisk", "GET /fapi/v2/account",
                                       "GET /fapi/v1/userTrades")
KLINES, BOOK_TICKER, EXCHANGE_INFO = ("GET /fapi/v1/klines", "GET /fapi/v1/ticker/bookTicker",
                                      "GET /fapi/v1/exchangeInfo")
INCOME = "GET /fapi/v1/income"
PREMIUM_INDEX = "GET /fapi/v1/premiumIndex"
SYMBOL_CONFIG = "GET /fapi/v1/symbolConfig"
FUNDING_FEE = "FUNDING_FEE"
# The income types of money moved into or out of the futures wallet with no trade
# (Get-Income-History's list: TRANSFER deposits, withdrawals and transfers between wallets;
# INTERNAL_TRANSFER, CROSS_COLLATERAL_TRANSFER, STRATEGY_UMFUTURES_TRANSFER; AUTO_EXCHANGE,
# COIN_SWAP_DEPOSIT, COIN_SWAP_WITHDRAW, which the stream tells as money moved too)
MOVE_TYPES = frozenset({"TRANSFER", "INTERNAL_TRANSFER", "CROSS_COLLATERAL_TRANSFER",
                        "STRATEGY_UMFUTURES_TRANSFER", "AUTO_EXCHANGE", "COIN_SWAP_DEPOSIT",
                        "COIN_SWAP_WITHDRAW"})
FUNDING_ASSET = "USDT"    # the asset of the equity, the peak and funding
# How far our idea of Binance's time may run ahead of it before a signed request is refused
# (-1021; the fake's binance_auth.py checks the same bound): `candles_from_rest`
CLOSE_MARGIN = timedelta(seconds=1)


# --- errors --------------------------------------------------------------------------

def error_from_answer(status: int, code: int | None, message: str | None,
                      retry_after: str | None, *, sending: bool) -> ExchangeError | UnknownOutcome:
    """A Binance error answer as our error value.

    While sending an order, an answer that leaves its execution unknown (-1000, -1006,
    -1007, HTTP 408, 503 "Unknown error, please check your request or try again later.", a
    5xx not documented as a failure: errors.py `execution_unknown`) means the order may
    exist: UnknownOutcome. A documented failure (503 -1008, -1001, "Service Unavailable.")
    or refusal is an ExchangeError: nothing executed.
    """
    code = int(code or 0)
    message = message or ""
    if not code and message.strip() not in (UNKNOWN_ERROR_503, SERVICE_UNAVAILABLE_503):
        message = f"HTTP {status} without a Binance error body"
    if sending and execution_unknown(status, code, message):
        return UnknownOutcome(message, code=code, http_status=status)
    return ExchangeError(code, message, http_status=status,
                         retry_after=retry_after_seconds(retry_after))


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as the seconds to wait, at most Binance's longest ban (`LONGEST_BAN`);
    None when missing or not a number of seconds ("soon", NaN, negative, the HTTP-date a
    proxy may write): the gate then waits its default, as for a missing one.

    >>> retry_after_seconds("18"), retry_after_seconds("1e15"), retry_after_seconds("soon")
    (18.0, 259200.0, None)
    """
    try:
        seconds = float(header) if header is not None else None
    except ValueError:
        return None
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, LONGEST_BAN.total_seconds())


# --- exchange info -------------------------------------------------------------------

def rules_from_exchange_info(info: Json, symbols: list[str], *,
                             missing_ok: bool = False) -> dict[str, SymbolRules]:
    """SymbolRules for the managed symbols; KeyError naming the symbols Binance doesn't list
    (left out instead with `missing_ok`), MalformedResponse for a listed symbol without its
    PRICE_FILTER / LOT_SIZE. PRICE_FILTER gives the tick and the price bounds (minPrice,
    maxPrice), LOT_SIZE the step and the quantity bounds, MARKET_LOT_SIZE those of MARKET
    orders (https://developers.binance.com/docs/derivatives/usds-margined-futures/
    market-data/rest-api/Exchange-Information: maxQty 590119 there, LOT_SIZE's 10000000)."""
    listed = {}
    for entry in Fields(info, EXCHANGE_INFO).rows("symbols"):
        fields = Fields(entry, f"{EXCHANGE_INFO} symbol")
        listed[fields.text("symbol")] = fields
    missing = [symbol for symbol in symbols if symbol not in listed]
    if missing and not missing_ok:
        raise KeyError(f"not listed on Binance USD-M futures: {', '.join(missing)}")
    return {symbol: _rules(listed[symbol]) for symbol in symbols if symbol in listed}


def _rules(entry: Fields) -> SymbolRules:
    where = f"{EXCHANGE_INFO} {entry.text('symbol')}"
    filters = {str(raw["filterType"]): raw for raw in entry.rows("filters")
               if isinstance(raw, dict) and raw.get("filterType")}
    price_filter = Fields(filters.get("PRICE_FILTER"), f"{where} PRICE_FILTER")
    lot = Fields(filters.get("LOT_SIZE"), f"{where} LOT_SIZE")
    # "the quantity rules for MARKET orders" (common-definition, Filters); absent: 0, and
    # LOT_SIZE's rules apply to them too (SymbolRules)
    market_lot = Fields(filters.get("MARKET_LOT_SIZE", {}), f"{where} MARKET_LOT_SIZE")
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
        # 0 (or absent): no bound, as the Filters section of common-definition says
        min_price=price_filter.optional_number("minPrice"),
        max_price=price_filter.optional_number("maxPrice"),
        market_min_qty=market_lot.optional_number("minQty"),
        market_max_qty=market_lot.optional_number("maxQty"),
        market_step_size=market_lot.optional_number("stepSize").normalize(),
    )


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
            leverage=_row_leverage(f, leverage),
            updated_at=f.optional_millis("updateTime"))
    return ExchangePosition(symbol=symbol, quantity=ZERO, leverage=leverage)


def _row_leverage(row: Fields, leverage: int) -> int:
    """A positionRisk row's own leverage (v2 rows have one, v3 rows none), else `leverage`.
    One out of Binance's 1..125 is not worth refusing the position for: it is logged and the
    leverage we set is kept."""
    if not row.present("leverage"):
        return leverage
    try:
        return row.leverage("leverage")
    except MalformedResponse as exc:
        logger.warning("binance positionRisk leverage unreadable, kept {} error={}", leverage, exc)
        return leverage


def leverage_from_symbol_config(rows: Any, symbol: str) -> int | None:
    """The symbol's leverage on the account from GET /fapi/v1/symbolConfig (a JSON array
    of {"symbol", "marginType", "isAutoAddMargin", "leverage", "maxNotionalValue"}:
    https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/
    Symbol-Config); None when no row names it. MalformedResponse for a row without a
    leverage from 1 to 125 (Fields.leverage)."""
    for raw in rows_of(rows, SYMBOL_CONFIG):
        f = Fields(raw, SYMBOL_CONFIG)
        if f.text("symbol") != symbol:
            continue
        return f.leverage("leverage")
    return None


def balance_from_account(raw: Json) -> Balance:
    """GET /fapi/v2/account totals (USDT in single-asset mode, USD in multi-assets mode)."""
    f = Fields(raw, ACCOUNT)
    return Balance(wallet=f.number("totalWalletBalance"),
                   unrealized_pnl=f.number("totalUnrealizedProfit"),
                   available=f.number("availableBalance"),
                   positions=positions_from_account(f))


def positions_from_account(f: Fields) -> tuple[ExchangePosition, ...]:
    """The open one-way positions of GET /fapi/v2/account's "positions" (every symbol, flat
    ones with positionAmt 0; https://developers.binance.com/docs/derivatives/
    usds-margined-futures/account/rest-api/Account-Information-V2), with "updateTime", the
    exchange's last change of each (0: never)."""
    held = []
    for raw in f.rows("positions"):
        p = Fields(raw, f"{ACCOUNT} positions")
        if p.optional_text("positionSide", "BOTH") != "BOTH" \
                or not p.optional_number("positionAmt"):
            continue
        changed = p.optional_millis("updateTime")
        held.append(ExchangePosition(
            symbol=p.text("symbol"), quantity=p.number("positionAmt"),
            entry_price=p.optional_number("entryPrice"),
            unrealized_pnl=p.optional_number("unrealizedProfit"),
            leverage=_row_leverage(p, 0),
            updated_at=changed if changed is not None and changed.timestamp() > 0 else None))
    return tuple(held)


def fill_from_trade(raw: Json, client_id: str) -> Fill:
    """One row of GET /fapi/v1/userTrades. Binance omits the client id: the caller maps it
    from the row's orderId (kept as `order_id`). Its fee is "commission" in
    "commissionAsset" (https://developers.binance.com/docs/derivatives/usds-margined-futures/
    trade/rest-api/Account-Trade-List): BNB when the account pays its fees in BNB."""
    f = Fields(raw, USER_TRADES)
    return Fill(trade_id=f.text("id"), symbol=f.text("symbol"), client_id=client_id,
                side=f.side("side"), quantity=f.number("qty"), price=f.number("price"),
                fee=f.optional_number("commission"),
                realized_pnl=f.optional_number("realizedPnl"), time=f.millis("time"),
                maker=f.flag("maker"), order_id=f.optional_text("orderId"),
                fee_asset=f.optional_text("commissionAsset") or SETTLEMENT_ASSET)


def mark_from_premium_index(raw: Json) -> Decimal:
    """GET /fapi/v1/premiumIndex of one symbol: its "markPrice". MalformedResponse when it
    is missing or not above 0 (a stop judged against a mark of 0 would be judged wrong)."""
    f = Fields(raw, PREMIUM_INDEX)
    mark = f.number("markPrice")
    if mark <= 0:
        raise malformed(PREMIUM_INDEX, "markPrice", raw)
    return mark


def asset_price_from_premium_index(raw: Json) -> Decimal:
    """GET /fapi/v1/premiumIndex of one symbol: its "indexPrice". MalformedResponse when it
    is missing or not above 0 (a fee valued at 0 would read as no fee)."""
    f = Fields(raw, PREMIUM_INDEX)
    price = f.number("indexPrice")
    if price <= 0:
        raise malformed(PREMIUM_INDEX, "indexPrice", raw)
    return price


def funding_from_income(rows: list[Any]) -> list[FundingIncome]:
    """The FUNDING_FEE rows of a GET /fapi/v1/income answer (`income_rows`)."""
    return income_rows(rows, FUNDING_FEE)


def income_rows(rows: list[Any], income_type: str) -> list[FundingIncome]:
    """The `income_type` rows among the rows of a GET /fapi/v1/income answer, in the order
    given: {"symbol", "incomeType", "income", "asset", "info", "time", "tranId", "tradeId"}
    (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/
    Get-Income-History; tranId is a JSON number there, a string on the COIN-M page: both
    read as text).

    A row that cannot be read (no tranId, no time, an income that is not a number) is
    logged and skipped: one bad row never hides the payments beside it. Rows of another
    income type are skipped too (we ask for one type at a time).
    """
    return [income for kind, income in _readable_income(rows, income_type)
            if kind == income_type]


def money_moved_rows(rows: list[Any]) -> list[FundingIncome]:
    """The money moved into or out of the USDT futures wallet among the rows of a GET
    /fapi/v1/income answer read without incomeType ("If incomeType is not sent, all kinds
    of flow will be returned": the Get-Income-History page): the USDT rows of MOVE_TYPES.
    Every row names its "asset"; the drawdown rule's peak is USDT, as the stream's "bc" it
    counts (binance_event_codec.money_moved_from_account_event): a USDC or BNB row is not
    USDT moved. `tran_id` is "<incomeType>:<tranId>": the page says "trandId is unique in
    the same incomeType for a user" (its example gives a TRANSFER and a COMMISSION row the
    same one)."""
    return [replace(income, tran_id=f"{kind}:{income.tran_id}")
            for kind, income in _readable_income(rows, "money moved")
            if kind in MOVE_TYPES and income.asset == FUNDING_ASSET]


def latest_income_time(rows: list[Any]) -> datetime | None:
    """The latest "time" among the readable rows of a GET /fapi/v1/income page, whatever
    their type (a page read without incomeType is followed from there); None for none."""
    times = [income.time for _, income in _readable_income(rows, "page")]
    return max(times) if times else None


def _readable_income(rows: list[Any], wanted: str) -> list[tuple[str, FundingIncome]]:
    """Each readable row with its incomeType, in the order given; an unreadable one logged
    and skipped (`wanted`: what the rows are read for, in the log line)."""
    incomes = []
    for raw in rows:
        try:
            f = Fields(raw, f"{INCOME} row")
            incomes.append((f.text("incomeType"),
                            FundingIncome(tran_id=f.text("tranId"),
                                          symbol=f.optional_text("symbol"),
                                          amount=f.number("income"), asset=f.text("asset"),
                                          time=f.millis("time"))))
        except MalformedResponse as exc:    # malformed() logged the row itself
            logger.warning("income row skipped type={} error={}", wanted, exc)
    return incomes


# --- market data ---------------------------------------------------------------------

def candles_from_rest(rows: list[Any], symbol: str, interval: timedelta,
                      asked_at: datetime) -> list[Candle]:
    """The rows of one GET /fapi/v1/klines answer, oldest first, each closed as Binance has
    it. Binance answers the kline in progress as its last row (Kline-Candlestick-Data: "the
    most recent klines are returned"; its COIN-M page names that close "Close (or latest
    price)"), so a row followed by a later one is closed: Binance began the next (what the
    kline stream's "x" says: trader/exchange/binance_event_codec.py). The last row is closed
    once its close time is CLOSE_MARGIN before `asked_at`, Binance's time as the request
    left (the host's plus the measured offset): the answer came after it, and that offset
    is off by up to a second before Binance refuses a signed request (-1021: a timestamp
    more than 1000 ms ahead of its clock), so a kline still open is never taken as closed.
    https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
    rest-api/Kline-Candlestick-Data"""
    candles = [candle_from_rest(row, symbol, interval, asked_at - CLOSE_MARGIN) for row in rows]
    return [replace(candle, closed=True)
            if not candle.closed and later.open_time >= candle.close_time else candle
            for candle, later in pairwise(candles)] + candles[-1:]


def candle_from_rest(row: Any, symbol: str, interval: timedelta, now: datetime) -> Candle:
    """One row of GET /fapi/v1/klines: [openTime, open, high, low, close, volume, closeTime...],
    closed if it closed by `now` (Binance's time: `candles_from_rest`)."""
    if not isinstance(row, list) or len(row) < 6:
        raise malformed(KLINES, "[openTime, open, high, low, close, volume]", row)
    f = Fields(dict(zip(("t", "o", "h", "l", "c", "v"), row, strict=False)), KLINES)
    open_time = f.millis("t")
    return Candle(symbol=symbol, open_time=open_time, interval=interval,
                  open=f.number("o"), high=f.number("h"), low=f.number("l"),
                  close=f.number("c"), volume=f.optional_number("v"),
                  closed=open_time + interval <= now)


def book_from_ticker(raw: Json) -> BookTicker:
    f = Fields(raw, BOOK_TICKER)
    return BookTicker(symbol=f.text("symbol"), bid=f.number("bidPrice"),
                      ask=f.number("askPrice"))
