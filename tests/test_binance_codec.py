"""The codec reads Binance exactly as Binance writes: every documented example payload
(tests/fixtures/binance/, each with its page) decodes into the right domain value; unknown
fields and enum values are tolerated; a payload that cannot be read raises
MalformedResponse, never a bare KeyError."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.binance_harness import captured_logs
from tests.fixtures.binance import documented, names, payload
from trader.domain import (
    Balance,
    BookTicker,
    CloseReason,
    ExchangePosition,
    OrderStatus,
    OrderType,
    Side,
    exchange_close_reason,
    utc,
)
from trader.exchange import binance_codec as codec
from trader.exchange import binance_event_codec as event_codec
from trader.exchange import binance_order_codec as order_codec
from trader.exchange import binance_quotes as quotes
from trader.exchange.base import ExchangeError, MalformedResponse, OrderUpdate
from trader.exchange.errors import Outcome, classify
from trader.symbol_rules import SymbolRules

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

DECODERS: dict[str, Callable[[Any], Any]] = {
    "exchange_info": lambda p: codec.rules_from_exchange_info(p, ["BLZUSDT"]),
    "order_new": lambda p: order_codec.order_from_plain(p, order_codec.NEW_ORDER),
    "order_query": lambda p: order_codec.order_from_plain(p, order_codec.QUERY_ORDER),
    "order_cancel": lambda p: order_codec.order_from_plain(p, order_codec.CANCEL_ORDER),
    "open_orders": lambda p: [order_codec.order_from_plain(r, order_codec.OPEN_ORDERS) for r in p],
    "algo_order_new": lambda p: order_codec.order_from_algo(p, order_codec.NEW_ALGO),
    "algo_order_query": lambda p: order_codec.order_from_algo(p, order_codec.QUERY_ALGO),
    "algo_order_query_finished": lambda p: order_codec.order_from_algo(p, order_codec.QUERY_ALGO),
    "order_query_child_expired": lambda p: order_codec.order_from_plain(p),
    "algo_order_cancel": order_codec.algo_cancel_result,
    "open_algo_orders": lambda p: [order_codec.order_from_algo(r, order_codec.OPEN_ALGO_ORDERS)
                                   for r in p],
    "account_v2": codec.balance_from_account,
    "account_v2_multi_assets": codec.balance_from_account,
    "position_risk_v3": lambda p: codec.position_from_risk(p, "ADAUSDT", 5),
    "position_risk_v3_hedge": lambda p: codec.position_from_risk(p, "BTCUSDT", 5),
    "symbol_config": lambda p: codec.leverage_from_symbol_config(p, "BTCUSDT"),
    "user_trades": lambda p: [codec.fill_from_trade(r, "") for r in p],
    "income_history": codec.funding_from_income,       # tests/test_funding_backfill.py
    "klines": lambda p: [codec.candle_from_rest(r, "BLZUSDT", MINUTE, NOW) for r in p],
    "book_ticker": codec.book_from_ticker,
    "event_order_trade_update": event_codec.update_from_order_event,
    "event_order_trade_update_liquidation_new": event_codec.update_from_order_event,
    "event_order_trade_update_liquidation_fill": event_codec.update_from_order_event,
    "event_order_trade_update_adl_fill": event_codec.update_from_order_event,
    "event_order_trade_update_adl_fill_calculated": event_codec.update_from_order_event,
    "event_order_trade_update_settlement_fill": event_codec.update_from_order_event,
    "event_algo_update": event_codec.update_from_algo_event,
    "event_account_update": event_codec.update_from_account_event,
    "event_account_config_update_leverage": event_codec.update_from_config_event,
    "event_account_config_update_multi_assets": event_codec.update_from_config_event,
    "event_margin_call": event_codec.margin_call_from_event,
    "event_conditional_order_trigger_reject": event_codec.trigger_reject_from_event,
    "event_kline": lambda p: event_codec.candle_from_stream(p["k"]),
    "event_kline_combined": lambda p: event_codec.candle_from_stream(p["data"]["k"]),
    "event_book_ticker": quotes.book_from_stream,          # tests/test_binance_quotes.py
    "event_book_ticker_combined": lambda p: quotes.book_from_stream(p["data"]),
    "event_mark_price": quotes.mark_from_stream,
    "event_mark_price_combined": lambda p: quotes.mark_from_stream(p["data"]),
}
ERRORS = {"error_margin_insufficient": Outcome.SKIPPED,
          "error_too_many_requests": Outcome.CIRCUIT_OPEN,
          "error_unknown_order": Outcome.NOOP, "error_no_such_order": Outcome.NOOP,
          # as answers to a read (to a send: tests/test_binance_error_answers.py)
          **dict.fromkeys(("error_unexpected_resp", "error_backend_timeout", "error_408_empty",
                           "error_503_unknown", "error_request_throttled", "error_internal_503",
                           "error_503_service_unavailable", "error_server_busy"), Outcome.SKIPPED)}
# Answers the adapter reads without a codec function: the field it reads, and its value.
READ_DIRECTLY = {
    "time": ("serverTime", 1499827319559),                     # sync_time
    "position_mode": ("dualSidePosition", True),               # start(): hedge mode refused
    "multi_assets_mode": ("multiAssetsMargin", True),          # BinanceAccount.multi_assets_mode
    "margin_type": ("code", 200), "leverage": ("leverage", 21),  # answers not used
    "premium_index": ("lastFundingRate", "0.00038246"),        # funding_rate
    "listen_key_new": ("listenKey", "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19"
                                    "v8a65a1"),             # python-binance returns it
    "listen_key_keepalive": ("listenKey", "3HBntNTepshgEdjIwSUIBgB9keLyOCg5qv3n6bYAtktG8ejcaW"
                                          "5HXz9Vx1JgIieg"),
    "event_listen_key_expired": ("e", "listenKeyExpired"),     # the user stream's switch
}


def decode(name: str, value: Any = None) -> Any:
    return DECODERS[name](payload(name) if value is None else value)


def test_every_documented_payload_is_covered_by_these_tests():
    assert set(names()) == set(DECODERS) | set(ERRORS) | set(READ_DIRECTLY)
    for name in names():
        assert documented(name).source.startswith(
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/")


# --- REST answers --------------------------------------------------------------------------

def test_exchange_info_gives_the_symbol_rules_from_its_filters():
    """PRICE_FILTER's minPrice / maxPrice bound a price or stopPrice ("disabled on 0":
    https://developers.binance.com/docs/derivatives/usds-margined-futures/common-definition,
    Filters)."""
    assert decode("exchange_info") == {"BLZUSDT": SymbolRules(
        "BLZUSDT", tick_size=Decimal("0.0001"), step_size=Decimal("1"), min_qty=Decimal("1"),
        min_notional=Decimal("5.0"), max_qty=Decimal("10000000"), status="TRADING",
        min_price=Decimal("0.0001"), max_price=Decimal("300"), market_min_qty=Decimal("1"),
        market_max_qty=Decimal("590119"), market_step_size=Decimal("1"))}


def test_a_price_filter_bound_of_zero_reads_as_no_limit():
    info = payload("exchange_info")
    [price_filter] = [f for f in info["symbols"][0]["filters"]
                      if f["filterType"] == "PRICE_FILTER"]
    price_filter.update(minPrice="0", maxPrice="0")
    rules = decode("exchange_info", info)["BLZUSDT"]
    assert (rules.min_price, rules.max_price) == (0, 0)
    assert rules.price_refusal(Decimal("1000000")) == ""
    assert rules.price_refusal(Decimal("0.0001")) == ""


@pytest.mark.parametrize(("name", "client_id", "status", "exchange_id"), [
    ("order_new", "testOrder", OrderStatus.NEW, "22542179"),
    ("order_query", "abc", OrderStatus.NEW, "1917641"),
    ("order_cancel", "myOrder1", OrderStatus.CANCELED, "283194212"),
])
def test_plain_order_answers_decode_with_foreign_types_as_other(name, client_id, status,
                                                                 exchange_id):
    order = decode(name)
    assert (order.client_id, order.status, order.exchange_id) == (client_id, status,
                                                                   exchange_id)
    assert order.type is OrderType.OTHER          # the examples are TRAILING_STOP_MARKET
    assert order.side is Side.BUY and order.symbol == "BTCUSDT"
    assert order.trigger_price == Decimal("9300") and order.filled_qty == 0


def test_open_orders_rows_decode_like_a_queried_order():
    [order] = decode("open_orders")
    assert order == decode("order_query")


def test_algo_order_answers_decode_by_client_algo_id():
    placed, queried = decode("algo_order_new"), decode("algo_order_query")
    [resting] = decode("open_algo_orders")
    assert (placed.client_id, placed.status) == ("6B2I9XVcJpCjqPAJ4YoFX7", OrderStatus.NEW)
    assert (queried.client_id, queried.status) == ("6B2I9XVcJpCjqPAJ4YoFX7",
                                                   OrderStatus.CANCELED)
    assert (resting.client_id, resting.status) == ("MRumok0dkhrP4kCm12AHaB", OrderStatus.NEW)
    for order in (placed, queried, resting):
        assert order.exchange_id.startswith("algo:") and order.trigger_price == Decimal("750")
        assert order.type is OrderType.OTHER      # TAKE_PROFIT (limit): not a type we place
        assert order.quantity == Decimal("0.01") and order.side is Side.SELL


def test_the_algo_cancel_answer_is_an_acknowledgement_not_an_order():
    assert decode("algo_order_cancel") is None
    whole = payload("algo_order_query")              # tolerated, should Binance ever send it
    assert order_codec.algo_cancel_result(whole).status is OrderStatus.CANCELED


@pytest.mark.parametrize(("algo_status", "executed", "expected"), [
    ("NEW", None, OrderStatus.NEW),
    ("TRIGGERING", None, OrderStatus.NEW),
    ("TRIGGERED", None, OrderStatus.NEW),
    ("TRIGGERED", "0.005", OrderStatus.PARTIALLY_FILLED),
    ("TRIGGERED", "0.01", OrderStatus.FILLED),
    ("FINISHED", None, OrderStatus.FILLED),
    ("FINISHED", "0", OrderStatus.EXPIRED),      # its child executed nothing: not by hand
    ("CANCELED", None, OrderStatus.CANCELED),
    ("EXPIRED", None, OrderStatus.EXPIRED),
    ("REJECTED", None, OrderStatus.REJECTED),
    ("SOMETHING_NEW", None, OrderStatus.EXPIRED),
])
def test_algo_statuses_map_as_the_codec_docstring_says(algo_status, executed, expected):
    event = payload("event_algo_update")
    event["o"] |= {"X": algo_status, "q": "0.01"}
    if executed is None:
        del event["o"]["aq"]
    else:
        event["o"]["aq"] = executed
    assert event_codec.update_from_algo_event(event).order.status is expected
    answer = payload("algo_order_query") | {"algoStatus": algo_status}
    if executed is not None:
        answer["executedQty"] = executed          # undocumented for REST: read if ever sent
    assert order_codec.order_from_algo(answer).status is expected


def finished_read(child_changes: dict[str, str]) -> Any:
    answer = payload("algo_order_query_finished")
    child = order_codec.order_from_plain(payload("order_query_child_expired") | child_changes)
    return order_codec.finished_by_child(order_codec.order_from_algo(answer), child)


def test_a_finished_algo_answer_names_the_child_that_tells_what_it_executed():
    """Query-Algo-Order documents no executed quantity; FINISHED is "filled or canceled in
    the matching engine" (Event-Algo-Order-Update). The answer's actualOrderId names the
    child, and GET /fapi/v1/order of the child (Query-Order) tells its executedQty."""
    answer = payload("algo_order_query_finished")
    assert order_codec.finished_child_id(answer) == "8886774"
    assert decode("algo_order_query_finished").status is OrderStatus.FILLED   # unknown: as before
    child = decode("order_query_child_expired")
    assert (child.exchange_id, child.status, child.filled_qty) == ("8886774",
                                                                   OrderStatus.EXPIRED, 0)
    assert order_codec.finished_child_id(answer | {"actualOrderId": ""}) == ""
    assert order_codec.finished_child_id(answer | {"executedQty": "0.01"}) == ""
    assert order_codec.finished_child_id(payload("algo_order_query")) == ""   # CANCELED


def test_a_finished_algo_event_with_nothing_executed_says_so():
    """ALGO_UPDATE FINISHED with "aq" 0: gone after its trigger, ended by the exchange (its
    SL_MISSING says so, not "cancelled outside the agent (by hand?)")."""
    event = payload("event_algo_update")
    event["o"] |= {"X": "FINISHED", "aq": "0", "rm": ""}
    order = event_codec.update_from_algo_event(event).order
    assert (order.status, order.reason) == (OrderStatus.EXPIRED, order_codec.NOTHING_EXECUTED)
    event["o"] |= {"aq": "0.005"}
    assert event_codec.update_from_algo_event(event).order.reason == ""
    assert finished_read({}).reason == order_codec.NOTHING_EXECUTED


@pytest.mark.parametrize(("child", "status", "filled"), [
    ({}, OrderStatus.EXPIRED, "0"),                       # nothing executed: gone, unfilled
    ({"executedQty": "0.005", "avgPrice": "599.5"}, OrderStatus.FILLED, "0.005"),   # in part
    ({"executedQty": "0.01", "avgPrice": "599.5", "status": "FILLED"}, OrderStatus.FILLED,
     "0.01"),
    ({"status": "NEW"}, OrderStatus.NEW, "0"),            # the child's end not shown yet
    ({"executedQty": "0.005", "avgPrice": "599.5", "status": "PARTIALLY_FILLED"},
     OrderStatus.PARTIALLY_FILLED, "0.005"),
])
def test_a_finished_algo_order_is_what_its_child_executed(child, status, filled):
    read = finished_read(child)
    assert (read.status, read.filled_qty) == (status, Decimal(filled))
    assert read.client_id == "6B2I9XVcJpCjqPAJ4YoFX7" and read.type is OrderType.STOP_MARKET
    if Decimal(filled):
        assert read.avg_price == Decimal("599.5")


def test_an_algo_cancel_acknowledgement_with_a_negative_code_is_that_error():
    answer = payload("algo_order_cancel") | {"code": "-2011", "msg": "Unknown order sent."}
    with pytest.raises(ExchangeError) as caught:
        order_codec.algo_cancel_result(answer)
    assert caught.value.code == -2011 and not isinstance(caught.value, MalformedResponse)


def test_account_answers_give_the_balance_totals():
    assert decode("account_v2") == Balance(Decimal("23.72469206"), Decimal("0"),
                                           Decimal("23.72469206"))
    assert decode("account_v2_multi_assets").wallet == Decimal("126.72469206")


def test_position_risk_v3_gives_the_one_way_position_with_the_leverage_we_set():
    assert decode("position_risk_v3") == ExchangePosition(
        "ADAUSDT", Decimal("30"), Decimal("0.385"), Decimal("0.41047590"),
        Decimal("0.76427700"), leverage=5)
    assert codec.position_from_risk([], "ADAUSDT", 5).quantity == 0   # v3 lists no flat row


def test_symbol_config_gives_the_symbols_leverage_on_the_account():
    """positionRisk v3 carries no leverage; GET /fapi/v1/symbolConfig does (an adopted
    position's leverage)."""
    assert decode("symbol_config") == 21
    assert codec.leverage_from_symbol_config(payload("symbol_config"), "ETHUSDT") is None
    row = {**payload("symbol_config")[0], "leverage": "0"}
    with pytest.raises(MalformedResponse, match="leverage"):
        codec.leverage_from_symbol_config([row], "BTCUSDT")


@pytest.mark.parametrize("leverage", ["1e999999", "126", "0", "2.5", "-3"])
def test_a_leverage_outside_binances_1_to_125_is_malformed_at_once(leverage):
    """Binance's leverage is "int from 1 to 125" (https://developers.binance.com/docs/
    derivatives/usds-margined-futures/trade/rest-api/Change-Initial-Leverage). "1e999999"
    took ~35 s to read (int() of a million-digit number) and came out as a leverage."""
    row = {**payload("symbol_config")[0], "leverage": leverage}
    with pytest.raises(MalformedResponse, match="leverage"):
        codec.leverage_from_symbol_config([row], "BTCUSDT")
    event = payload("event_account_config_update_leverage")
    event["ac"]["l"] = leverage
    with pytest.raises(MalformedResponse, match="l"):
        event_codec.update_from_config_event(event)


@pytest.mark.parametrize(("leverage", "read"), [("20", 20), ("1e999999", 5), ("0", 5),
                                              ("2.5", 5)])
def test_a_position_rows_own_leverage_is_read_only_inside_binances_range(leverage, read):
    """A v2-style row's leverage (v3 has none): read when it is Binance's "int from 1 to
    125"; otherwise the leverage we set, at once ("1e999999" took half a minute to become
    an int) and without refusing the position."""
    row = {**payload("position_risk_v3")[0], "leverage": leverage}
    position = codec.position_from_risk([row], "ADAUSDT", 5)
    assert position.leverage == read and position.quantity == decode("position_risk_v3").quantity


def test_a_hedge_mode_position_row_is_unreadable_never_read_as_flat():
    with pytest.raises(MalformedResponse, match="positionSide"):
        codec.position_from_risk(payload("position_risk_v3_hedge"), "ADAUSDT", 5)


def test_user_trades_rows_are_fills_keyed_by_order_id():
    [fill] = decode("user_trades")
    assert (fill.trade_id, fill.order_id, fill.client_id) == ("698759", "25851813", "")
    assert (fill.side, fill.quantity, fill.price) == (Side.SELL, Decimal("0.002"),
                                                      Decimal("7819.01"))
    assert fill.fee == Decimal("-0.07819010") and fill.realized_pnl == Decimal("-0.91539999")
    assert fill.time == utc(1569514978020) and not fill.maker


def test_a_fill_carries_the_asset_binance_charged_its_fee_in():
    """The documented examples charge USDT (userTrades "commissionAsset", ORDER_TRADE_UPDATE
    "N"); with "BNB burn" on, Binance names BNB there and the fee is an amount of BNB."""
    [trade] = decode("user_trades")
    told = decode("event_order_trade_update_settlement_fill").fill
    assert (trade.fee_asset, told.fee_asset) == ("USDT", "USDT")
    assert told.fee == Decimal("0.00355152")
    in_bnb = payload("user_trades")[0] | {"commission": "0.00004166", "commissionAsset": "BNB"}
    [trade] = decode("user_trades", [in_bnb])
    assert (trade.fee, trade.fee_asset) == (Decimal("0.00004166"), "BNB")
    event = payload("event_order_trade_update_settlement_fill")
    event["o"] |= {"N": "BNB", "n": "0.00000591"}
    told = decode("event_order_trade_update_settlement_fill", event).fill
    assert (told.fee, told.fee_asset) == (Decimal("0.00000591"), "BNB")


def test_a_fill_without_a_commission_asset_is_in_usdt():
    """No asset named (a fill with no commission may come without "N"): USDT, as always."""
    event = payload("event_order_trade_update_settlement_fill")
    del event["o"]["N"]
    assert decode("event_order_trade_update_settlement_fill", event).fill.fee_asset == "USDT"


def test_an_assets_usdt_price_is_its_symbols_index_price():
    """What a fee in BNB is valued with: premiumIndex's "indexPrice" (the documented
    example, for BTCUSDT); a missing or non-positive one is unreadable, never 0."""
    assert codec.asset_price_from_premium_index(payload("premium_index")) == Decimal(
        "11781.80495970")
    for broken in ({"indexPrice": "0"}, {"indexPrice": None}):
        raw = payload("premium_index") | broken
        if broken["indexPrice"] is None:
            del raw["indexPrice"]
        with pytest.raises(MalformedResponse, match="indexPrice"):
            codec.asset_price_from_premium_index(raw)


def test_market_data_answers_give_candles_and_the_book():
    [candle] = decode("klines")
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("0.01634790"), Decimal("0.80000000"), Decimal("0.01575800"),
        Decimal("0.01577100"))
    assert candle.open_time == utc(1499040000000) and candle.closed
    assert decode("book_ticker") == BookTicker("BTCUSDT", Decimal("4.00000000"),
                                               Decimal("4.00000200"))


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_documented_error_answers_map_to_their_outcome(name):
    answer = documented(name)
    body = answer.payload or {}        # HTTP 408 has no body documented
    error = codec.error_from_answer(answer.http_status, body.get("code"), body.get("msg"),
                                    None, sending=False)
    assert error.code == body.get("code", 0) and error.http_status == answer.http_status
    assert classify(error, sending=False).outcome is ERRORS[name]


@pytest.mark.parametrize("name", sorted(READ_DIRECTLY))
def test_answers_read_directly_carry_the_field_the_adapter_reads(name):
    field, value = READ_DIRECTLY[name]
    assert payload(name)[field] == value


# --- stream events -------------------------------------------------------------------------

def test_order_trade_update_decodes_a_foreign_order_without_a_fill():
    update = decode("event_order_trade_update")
    assert isinstance(update, OrderUpdate) and update.fill is None
    assert (update.order.client_id, update.order.type, update.order.status) == (
        "TEST", OrderType.OTHER, OrderStatus.NEW)
    assert update.order.exchange_id == "8886774" and update.time == utc(1568879465650)


@pytest.mark.parametrize(("name", "reason"), [
    ("event_order_trade_update_liquidation_fill", CloseReason.LIQUIDATION),
    ("event_order_trade_update_adl_fill", CloseReason.ADL),
    ("event_order_trade_update_adl_fill_calculated", CloseReason.ADL),
    ("event_order_trade_update_settlement_fill", CloseReason.SETTLEMENT),
])
def test_exchange_placed_fills_reach_the_engine_with_their_client_id(name, reason):
    update = decode(name)
    fill = update.fill
    assert fill is not None and fill.client_id == update.order.client_id
    assert exchange_close_reason(fill.client_id) is reason
    assert (fill.quantity, fill.price, fill.realized_pnl) == (
        Decimal("0.001"), Decimal("7103.04"), Decimal("-2.13"))
    assert fill.trade_id == "987654" and fill.order_id == "8886774"
    assert update.order.status is OrderStatus.FILLED


def test_a_liquidation_order_is_an_other_order_until_its_calculated_fill():
    opened = decode("event_order_trade_update_liquidation_new")
    filled = decode("event_order_trade_update_liquidation_fill")
    assert opened.order.type is filled.order.type is OrderType.OTHER
    assert opened.fill is None and opened.order.status is OrderStatus.NEW
    assert filled.fill is not None        # x = CALCULATED: the liquidation execution


def test_algo_update_decodes_the_conditional_order():
    update = decode("event_algo_update")
    assert (update.order.client_id, update.order.status, update.order.exchange_id) == (
        "Q5xaq5EGKgXXa0fD7fs0Ip", OrderStatus.CANCELED, "algo:2148719")
    assert update.order.trigger_price == Decimal("750") and update.fill is None
    assert update.child_order_id == ""          # "ai": "" (not triggered)


def test_algo_update_names_the_child_order_a_triggered_algo_order_placed():
    """"ai" (触发后普通订单 id: the plain order's id after the trigger, the zh-CN page of
    Event-Algo-Order-Update): binance_children.py files the child's trades under the algo's
    client id, whatever client id the child has."""
    event = payload("event_algo_update")
    event["o"].update({"X": "TRIGGERED", "ai": "8886774"})
    assert decode("event_algo_update", event).child_order_id == "8886774"


def test_account_update_keeps_the_one_way_positions_only():
    update = decode("event_account_update")
    assert [(p.symbol, p.quantity) for p in update.positions] == [("BTCUSDT", Decimal("0"))]
    assert update.reason == "ORDER" and update.time == utc(1564745798938)


def test_kline_events_decode_raw_and_combined():
    candle = decode("event_kline")
    assert candle == decode("event_kline_combined")
    assert (candle.symbol, candle.interval, candle.close, candle.closed) == (
        "BTCUSDT", MINUTE, Decimal("0.0020"), False)


# --- tolerance -----------------------------------------------------------------------------

def with_unknown_fields(value: Any) -> Any:
    """The same payload with an extra field in every object (Binance adds fields freely)."""
    if isinstance(value, dict):
        return {**{k: with_unknown_fields(v) for k, v in value.items()},
                "zNewField": {"nested": [1, "x"]}}
    if isinstance(value, list):
        return [with_unknown_fields(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_unknown_extra_fields_change_nothing(name):
    assert decode(name, with_unknown_fields(payload(name))) == decode(name)


@pytest.mark.parametrize(("name", "path", "value", "check"), [
    ("order_query", ("origType",), "BRAND_NEW", lambda o: o.type is OrderType.OTHER),
    ("order_query", ("status",), "PAUSED", lambda o: o.status is OrderStatus.EXPIRED),
    ("order_query", ("workingType",), "INDEX_PRICE", lambda o: o.status is OrderStatus.NEW),
    ("algo_order_query", ("algoStatus",), "SUSPENDED",
     lambda o: not o.status.live),
    ("algo_order_query", ("orderType",), "SNIPER", lambda o: o.type is OrderType.OTHER),
    ("event_order_trade_update", ("o", "x"), "TELEPORT", lambda u: u.fill is None),
    ("event_order_trade_update", ("o", "X"), "SLEEPING",
     lambda u: u.order.status is OrderStatus.EXPIRED),
    ("event_order_trade_update", ("o", "f"), "GTX_FUTURE", lambda u: u.order.status.live),
    ("event_algo_update", ("o", "X"), "PAUSED", lambda u: not u.order.status.live),
    ("event_algo_update", ("o", "wt"), "INDEX_PRICE", lambda u: u.order.client_id),
    ("event_account_update", ("a", "m"), "NEW_REASON",
     lambda u: u.reason.startswith("NEW_REASON")),
])
def test_unknown_enum_values_are_read_safely_and_logged(name, path, value, check):
    value = f"{value}_{uuid.uuid4().hex[:8]}"     # warned once per process: keep it fresh
    raw = payload(name)
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with captured_logs("WARNING") as logs:
        result = decode(name, raw)
        decode(name, raw)
    assert check(result)
    if path[-1] in ("origType", "status", "algoStatus", "orderType", "x", "X"):
        assert sum(value in line for line in logs) == 1      # once, not per tick


def test_an_unknown_status_on_our_stop_never_reads_as_protection():
    stop = payload("open_algo_orders")[0] | {"clientAlgoId": "tb-BTCUSDT-k-sl1",
                                             "orderType": "STOP_MARKET",
                                             "algoStatus": "HALF_ALIVE"}
    assert not order_codec.order_from_algo(stop, order_codec.OPEN_ALGO_ORDERS).status.live


def test_an_unknown_execution_type_that_moved_quantity_still_carries_the_fill():
    event = payload("event_order_trade_update_liquidation_fill")
    event["o"]["x"] = "REPLAYED"
    assert decode("event_order_trade_update", event).fill is not None


@pytest.mark.parametrize(("name", "path", "endpoint"), [
    ("order_new", ("clientOrderId",), "POST /fapi/v1/order"),
    ("order_query", ("status",), "GET /fapi/v1/order"),
    ("algo_order_new", ("algoStatus",), "POST /fapi/v1/algoOrder"),
    ("algo_order_query", ("orderType",), "GET /fapi/v1/algoOrder"),
    ("account_v2", ("availableBalance",), "GET /fapi/v2/account"),
    ("book_ticker", ("bidPrice",), "GET /fapi/v1/ticker/bookTicker"),
    ("event_order_trade_update", ("o", "c"), "ORDER_TRADE_UPDATE"),
    ("event_algo_update", ("o", "caid"), "ALGO_UPDATE"),
    ("event_kline", ("k", "c"), "kline"),
])
def test_a_missing_required_field_is_a_malformed_response_naming_it(name, path, endpoint):
    raw = payload(name)
    target = raw
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with captured_logs("ERROR") as logs, pytest.raises(MalformedResponse) as caught:
        decode(name, raw)
    assert endpoint in caught.value.message and path[-1] in caught.value.message
    assert caught.value.code == 0 and isinstance(caught.value, ExchangeError)
    assert any("payload=" in line and len(line) < 800 for line in logs)


def test_a_number_that_is_not_a_number_is_malformed_not_invalid_operation():
    raw = payload("user_trades")[0] | {"qty": "0.00.2"}
    with pytest.raises(MalformedResponse, match="qty"):
        codec.fill_from_trade(raw, "")


def test_an_algo_cancel_answer_naming_no_order_is_malformed():
    with pytest.raises(MalformedResponse, match="clientAlgoId"):
        order_codec.algo_cancel_result({"code": "200", "msg": "success"})


# --- any damage to any documented payload: a value or MalformedResponse, nothing else -------

JUNK = st.one_of(st.none(), st.just(""), st.text(max_size=5), st.integers(),
                 st.booleans(), st.just({}), st.just([]), st.just("1e999999"))


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_payloads_decode_or_raise_malformed_response(data):
    name = data.draw(st.sampled_from(sorted(DECODERS)))
    raw = payload(name)
    path = data.draw(st.sampled_from(paths(raw)))
    target = raw
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()):
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(JUNK)
    allowed: tuple[type[Exception], ...] = (MalformedResponse,)
    if name == "exchange_info":
        allowed += (KeyError,)       # documented: a symbol Binance doesn't list
    if name == "algo_order_cancel":
        allowed += (ExchangeError,)  # a negative code in the acknowledgement
    if path in {("k",), ("data",), ("data", "k")}:
        allowed += (KeyError, TypeError)   # the test's own lookup of the kline object
    try:
        DECODERS[name](raw)
    except Exception as error:  # noqa: BLE001 - the property: nothing else may escape
        assert isinstance(error, allowed), f"{name} {path}: {error!r}"


@pytest.mark.parametrize("quantity", ["0", "", None, "absent"])
def test_a_close_position_algo_stop_read_back_covers_the_whole_position(quantity):
    """Query Algo Order (https://developers.binance.com/docs/derivatives/usds-margined-
    futures/trade/rest-api/Query-Algo-Order) shows no closePosition example, and New Algo
    Order says quantity "Cannot be sent with closePosition=true": the docs are silent on what
    a read-back says, so every reading decodes and covers whatever is open (Order.closes)."""
    answer = payload("algo_order_query") | {"orderType": "STOP_MARKET", "closePosition": True,
                                            "algoStatus": "NEW"}
    if quantity == "absent":
        del answer["quantity"]
    else:
        answer["quantity"] = quantity
    order = order_codec.order_from_algo(answer)
    assert order.close_position and order.status is OrderStatus.NEW
    assert order.closes(Decimal("0.5")) == Decimal("0.5")


@pytest.mark.parametrize("orig_qty", ["0", "0.01"])
def test_a_close_position_plain_stop_read_back_covers_the_whole_position(orig_qty):
    """Query Order (.../trade/rest-api/Query-Order) always has origQty; for a closePosition
    order the docs do not say its value: zero or not, the order covers the whole position."""
    answer = payload("order_query") | {"type": "STOP_MARKET", "origType": "STOP_MARKET",
                                       "closePosition": True, "origQty": orig_qty,
                                       "executedQty": "0", "status": "NEW"}
    order = order_codec.order_from_plain(answer)
    assert order.close_position and order.closes(Decimal("0.5")) == Decimal("0.5")
