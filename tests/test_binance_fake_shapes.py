"""The fake Binance answers in Binance's documented shapes: every REST answer and stream
event it produces has exactly the fields of the documented example (tests/fixtures/binance/,
each with its page), so a test against the fake is a test against Binance as documented,
not against our own assumptions (an acknowledgement is an acknowledgement)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from binance.exceptions import BinanceAPIException

from tests.fakes.binance_harness import SYMBOL, limit, started_exchange, stop_loss
from tests.fakes.binance_harness import market as market_order
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented, names
from trader.domain import Candle, Side
from trader.exchange.binance_requests import algo_params, order_params

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

NOT_PRODUCED_BY_THE_FAKE = {
    "account_v2_multi_assets": "the fake account is in single-asset mode",
    "position_risk_v3_hedge": "the fake account is in one-way mode",
    "event_order_trade_update_adl_fill": "an ADL fill told x=TRADE: only with FakeBinance("
                                         "adl_execution=\"TRADE\") "
                                         "(tests/test_liquidation_as_documented.py)",
    "event_account_config_update_leverage": "a leverage changed by hand: tests send the "
                                            "page's example (test_leverage_changed_by_hand)",
    "event_margin_call": "the fake never calls for margin: tests send the page's example "
                         "(test_margin_call)",
    "event_conditional_order_trigger_reject": "only on FakeBinance.reject_trigger "
                                              "(test_stop_trigger_rejected checks its shape)",
    "algo_order_query_finished": "a FINISHED stop and its child: "
                                 "test_stop_finished_unfilled checks the fake's shapes",
    "order_query_child_expired": "a FINISHED stop and its child: "
                                 "test_stop_finished_unfilled checks the fake's shapes",
}


def shape_problems(actual: Any, expected: Any, optional: dict[str, list[str]],
                   path: str = "") -> list[str]:
    """Where `actual` has other fields than the documented `expected` (recursively)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '<root>'}: not an object"]
        may_lack = set(optional.get(path, []))
        problems = [f"{path}.{key}: missing" for key in expected
                    if key not in actual and key not in may_lack]
        problems += [f"{path}.{key}: not documented" for key in actual if key not in expected]
        for key in expected.keys() & actual.keys():
            problems += shape_problems(actual[key], expected[key], optional, f"{path}.{key}")
        return problems
    if not isinstance(expected, list) or not expected:
        return []
    if not isinstance(actual, list):
        return [f"{path}: not an array"]
    if not isinstance(expected[0], dict | list):       # a kline row: its length is its shape
        rows = path.endswith("[]") and len(actual) != len(expected)
        return [f"{path}: {len(actual)} entries"] if rows else []
    by_filter = {e.get("filterType"): e for e in expected if isinstance(e, dict)}
    problems = []
    for item in actual:
        twin = by_filter.get(item.get("filterType"), expected[0]) \
            if isinstance(item, dict) and "filterType" in item else expected[0]
        problems += shape_problems(item, twin, optional, f"{path}[]")
    return problems


class Recorder:
    """Stands in for a hub send method: keeps every payload, then sends it on."""

    def __init__(self, send: Callable[..., Any], payload_at: int) -> None:
        self.send, self.payload_at, self.payloads = send, payload_at, []

    async def __call__(self, *args: Any) -> None:
        sent = args[self.payload_at]
        self.payloads += sent if isinstance(sent, list) else [sent]
        await self.send(*args)


async def rejected(call: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as caught:
        await call
    return caught.value


async def fake_answers(fake: FakeBinance) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every REST answer and stream event the fake produces, by fixture name."""
    user, market = Recorder(fake.hub.send_user, 0), Recorder(fake.hub.send_market, 1)
    fake.hub.send_user, fake.hub.send_market = user, market
    async with started_exchange(fake) as exchange:
        client = exchange.client
        entry, resting = market_order(Side.BUY, "0.01"), limit(Side.BUY, "0.01", "45000", 2)
        stop = stop_loss(Side.SELL, "48000")
        answers: dict[str, Any] = {
            "time": await client.futures_time(),
            "exchange_info": await client.futures_exchange_info(),
            "position_mode": await client.futures_get_position_mode(),
            "multi_assets_mode": await client.futures_get_multi_assets_mode(),
            "margin_type": await client.futures_change_margin_type(symbol="ETHUSDT",
                                                                   marginType="ISOLATED"),
            "leverage": await client.futures_change_leverage(symbol=SYMBOL, leverage=3),
            "symbol_config": await client.futures_symbol_config(symbol=SYMBOL),
            "order_new": await client.futures_create_order(**order_params(entry)),
        }
        await client.futures_create_order(**order_params(resting))
        await fake.settle_funding(SYMBOL, Decimal("0.0001"))    # a row for the income history
        await fake.change_margin_type_by_hand("ETHUSDT", "CROSSED")   # ACCOUNT_UPDATE too
        await fake.switch_asset_mode_by_hand(True)
        await fake.move_money_by_hand(Decimal("-100"), "WITHDRAW")   # ACCOUNT_UPDATE, no P
        answers |= {
            "order_query": await client.futures_get_order(symbol=SYMBOL,
                                                          origClientOrderId=entry.client_id),
            "open_orders": await client.futures_get_open_orders(symbol=SYMBOL),
            "order_cancel": await client.futures_cancel_order(
                symbol=SYMBOL, origClientOrderId=resting.client_id),
            "algo_order_new": await client.futures_create_algo_order(**algo_params(stop)),
            "algo_order_query": await client.futures_get_algo_order(clientAlgoId=stop.client_id),
            "open_algo_orders": await client.futures_get_open_algo_orders(symbol=SYMBOL),
            "algo_order_cancel": await client.futures_cancel_algo_order(
                clientAlgoId=stop.client_id),
            "account_v2": await client.futures_account(),
            "position_risk_v3": await client.futures_position_information(symbol=SYMBOL),
            "user_trades": await client.futures_account_trades(symbol=SYMBOL),
            "income_history": await client.futures_income_history(incomeType="FUNDING_FEE"),
            "book_ticker": await client.futures_orderbook_ticker(symbol=SYMBOL),
            "premium_index": await client.futures_mark_price(symbol=SYMBOL),
            "listen_key_new": await client._request_futures_api("post", "listenKey",
                                                                signed=False, data={}),
        }
        key = answers["listen_key_new"]["listenKey"]
        answers["listen_key_keepalive"] = await client.futures_stream_keepalive(listenKey=key)
        await fake.push_candle(Candle(SYMBOL, NOW, MINUTE, Decimal("50000"), Decimal("50010"),
                                      Decimal("49990"), Decimal("50000"), Decimal("3")))
        answers["klines"] = await client.futures_klines(symbol=SYMBOL, interval="1m")
        for closer in ("adl_autoclose", "settlement_autoclose-1", "autoclose-1"):
            await fake.close_position_by_exchange(SYMBOL, closer, qty=Decimal("0.003"))
        await fake.expire_listen_key()
        errors = {
            "error_margin_insufficient": await rejected(client.futures_create_order(
                **order_params(market_order(Side.BUY, "100", seq=3)))),
            "error_unknown_order": await rejected(client.futures_cancel_order(
                symbol=SYMBOL, origClientOrderId=resting.client_id)),
            "error_no_such_order": await rejected(client.futures_get_order(
                symbol=SYMBOL, origClientOrderId="tb-BTCUSDT-none-en1")),
        }
        for name in DOCUMENTED_FAILURES:
            fake.answer_documented("POST /fapi/v1/order", name)
            errors[name] = await rejected(client.futures_create_order(
                **order_params(market_order(Side.BUY, "0.01", seq=4))))
        fake.add_used_weight(fake.usage.weight_per_minute)
        errors["error_too_many_requests"] = await rejected(client.futures_time())
    for event in user.payloads:
        answers.setdefault(event_fixture(event), []).append(event)
    for event in market.payloads:
        name = MARKET_FIXTURES[event["data"]["e"]]
        answers.setdefault(f"{name}_combined", []).append(event)
        answers.setdefault(name, []).append(event["data"])
    return answers, errors


# Error answers the fake gives only when a test asks (`FakeBinance.answer_documented`).
DOCUMENTED_FAILURES = ("error_unexpected_resp", "error_backend_timeout", "error_408_empty",
                       "error_503_unknown", "error_request_throttled", "error_internal_503",
                       "error_503_service_unavailable", "error_server_busy")


MARKET_FIXTURES = {"kline": "event_kline", "bookTicker": "event_book_ticker",
                   "markPriceUpdate": "event_mark_price"}


EVENT_FIXTURES = {"ORDER_TRADE_UPDATE": "event_order_trade_update",
                  "ALGO_UPDATE": "event_algo_update",
                  "ACCOUNT_UPDATE": "event_account_update",
                  "listenKeyExpired": "event_listen_key_expired"}
# ORDER_TRADE_UPDATE of Binance's own orders, by client id and status (a NEW without a
# documented example of its own reads as the page's plain one)
EXCHANGE_ORDER_FIXTURES = {
    ("autoclose-", "NEW"): "event_order_trade_update_liquidation_new",
    ("autoclose-", "FILLED"): "event_order_trade_update_liquidation_fill",
    ("adl_autoclose", "FILLED"): "event_order_trade_update_adl_fill_calculated",
    ("settlement_autoclose-", "FILLED"): "event_order_trade_update_settlement_fill"}


def event_fixture(event: dict[str, Any]) -> str:
    if "ai" in event:       # ACCOUNT_CONFIG_UPDATE's other form: Multi-Assets mode
        return "event_account_config_update_multi_assets"
    if event["e"] == "ORDER_TRADE_UPDATE":
        for (prefix, status), name in EXCHANGE_ORDER_FIXTURES.items():
            if event["o"]["c"].startswith(prefix) and event["o"]["X"] == status:
                return name
    return EVENT_FIXTURES[event["e"]]


async def test_every_answer_and_event_of_the_fake_has_the_documented_fields():
    async with FakeBinance() as fake:
        answers, errors = await fake_answers(fake)
    assert set(answers) | set(errors) | set(NOT_PRODUCED_BY_THE_FAKE) == set(names())
    problems: dict[str, list[str]] = {}
    for name, answer in answers.items():
        doc = documented(name)
        samples = answer if name.startswith("event_") else [answer]
        assert samples, f"the fake produced no {name}"
        for sample in samples:
            problems.setdefault(name, []).extend(
                shape_problems(sample, doc.payload, doc.optional_fields))
    assert {name: found for name, found in problems.items() if found} == {}
    for name, error in errors.items():
        doc = documented(name)
        if doc.payload is None:      # no body (HTTP 408): python-binance finds no JSON
            assert (error.status_code, error.code) == (doc.http_status, 0), name
            continue
        assert (error.status_code, error.code, error.message) == (
            doc.http_status, doc.payload["code"], doc.payload["msg"]), name


async def test_position_risk_says_when_the_position_last_changed_not_when_it_was_read():
    """GET /fapi/v3/positionRisk's updateTime is the position's update time: the documented
    example answers a request signed at 1702920680303 with 1625474304765 (DOCS +
    "trade/websocket-api/Position-Information"). The fake gave the time of each read."""
    import asyncio
    async with FakeBinance() as fake, started_exchange(fake) as exchange:
        client = exchange.client
        await client.futures_create_order(**order_params(market_order(Side.BUY, "0.01")))
        [first] = await client.futures_position_information(symbol=SYMBOL)
        await asyncio.sleep(0.05)
        [again] = await client.futures_position_information(symbol=SYMBOL)
        assert first["updateTime"] == again["updateTime"]
        await client.futures_create_order(**order_params(market_order(Side.BUY, "0.01", seq=2)))
        [grown] = await client.futures_position_information(symbol=SYMBOL)
        assert grown["updateTime"] > again["updateTime"]


async def test_a_symbol_binance_does_not_list_is_refused_as_binance_refuses_it():
    """-1121 BAD_SYMBOL "Invalid symbol." (DOCS + "error-code"); the fake answered the
    premium index and book of an unknown symbol with its simulator's -2010."""
    async with FakeBinance() as fake, started_exchange(fake) as exchange:
        client = exchange.client
        for call in (lambda: client.futures_mark_price(symbol="NOSUCHUSDT"),
                     lambda: client.futures_orderbook_ticker(symbol="NOSUCHUSDT")):
            error = await rejected(call())
            assert (error.code, error.message) == (-1121, "Invalid symbol.")
