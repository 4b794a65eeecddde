"""BinanceExchange through the real python-binance client against the fake Binance server:
order placement for every role, the plain / algo API split, start-up checks, reads,
Decimal formatting; plus the pure codec and rate limiter."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest
from binance.exceptions import BinanceAPIException

from tests.fakes.binance_harness import (
    SYMBOL,
    captured_logs,
    client_id,
    limit,
    market,
    settings_for,
    started_exchange,
    stop_loss,
    take_profit,
)
from tests.fakes.binance_manual import main
from tests.fakes.binance_server import FakeBinance
from trader.clock import ManualClock
from trader.domain import Candle, OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.base import ExchangeError, MalformedResponse, UnknownOutcome
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_account import SetupRefused
from trader.exchange.ratelimit import RateLimiter, RateLimits

pytest_plugins = ["tests.fakes.binance_fixtures"]


def sent(fake: FakeBinance, endpoint: str) -> dict[str, str]:
    """Parameters of the last request to `endpoint`."""
    return fake.requests(endpoint)[-1].params


# --- placement, one role at a time -----------------------------------------------------

async def test_entry_market_order_goes_to_the_order_endpoint_under_our_client_id(fake, exchange):
    order = await exchange.place(market(Side.BUY, "0.01"))

    params = sent(fake, "POST /fapi/v1/order")
    assert params["newClientOrderId"] == client_id(OrderRole.ENTRY)
    assert (params["type"], params["side"], params["quantity"]) == ("MARKET", "BUY", "0.01")
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal("0.01")
    assert fake.sim.position(SYMBOL).quantity == Decimal("0.01")
    assert fake.requests("POST /fapi/v1/algoOrder") == []


async def test_a_limit_entry_is_sent_exactly_as_planned_and_rests(fake, exchange):
    order = await exchange.place(limit(Side.BUY, "0.012", "49000.10"))

    params = sent(fake, "POST /fapi/v1/order")
    assert (params["price"], params["quantity"], params["timeInForce"]) == (
        "49000.1", "0.012", "GTC")
    assert order.status is OrderStatus.NEW and order.price == Decimal("49000.1")
    assert [o.client_id for o in await exchange.open_orders(SYMBOL)] == [order.client_id]


async def test_the_adapter_only_formats_an_off_grid_price_is_binances_to_refuse(fake, exchange):
    """Prices are rounded once, where they are planned: the codec never rounds again (a
    filter rejection is re-rounded by the executor with the fresh rules)."""
    with pytest.raises(ExchangeError) as refused:
        await exchange.place(limit(Side.BUY, "0.0129", "49000.07"))
    assert refused.value.code in (-4014, -1111)
    params = sent(fake, "POST /fapi/v1/order")
    assert params["price"] == "49000.07" and params["quantity"] == "0.0129"


async def test_stop_loss_goes_to_the_algo_api_under_our_client_algo_id(fake, exchange):
    await exchange.place(market(Side.BUY, "0.01"))
    order = await exchange.place(stop_loss(Side.SELL, "49000.1"))

    params = sent(fake, "POST /fapi/v1/algoOrder")
    assert params["clientAlgoId"] == client_id(OrderRole.STOP_LOSS)
    assert params["algoType"] == "CONDITIONAL" and params["type"] == "STOP_MARKET"
    assert params["workingType"] == "MARK_PRICE" and params["closePosition"] == "true"
    assert params["triggerPrice"] == "49000.1"
    assert "quantity" not in params and "reduceOnly" not in params
    assert "newClientOrderId" not in params
    assert len(fake.requests("POST /fapi/v1/order")) == 1   # only the entry
    assert order.status is OrderStatus.NEW and order.client_id == params["clientAlgoId"]
    assert order.exchange_id.startswith("algo:")


async def test_take_profit_with_a_quantity_is_reduce_only_on_the_algo_api(fake, exchange):
    await exchange.place(market(Side.BUY, "0.02"))
    order = await exchange.place(take_profit(Side.SELL, "51000.00", "0.02"))

    params = sent(fake, "POST /fapi/v1/algoOrder")
    assert (params["quantity"], params["reduceOnly"], params["triggerPrice"]) == (
        "0.02", "true", "51000")                        # plain digits, no trailing zeros
    assert params["clientAlgoId"] == client_id(OrderRole.TAKE_PROFIT)
    assert order.type is OrderType.TAKE_PROFIT_MARKET and order.reduce_only


@pytest.mark.parametrize("role", [OrderRole.FLATTEN, OrderRole.PARTIAL_TP])
async def test_flatten_and_partial_take_profit_are_reduce_only_market_orders(fake, exchange,
                                                                              role):
    await exchange.place(market(Side.BUY, "0.01"))
    order = await exchange.place(market(Side.SELL, "0.01", role, reduce_only=True))

    params = sent(fake, "POST /fapi/v1/order")
    assert params["reduceOnly"] == "true" and params["newClientOrderId"] == order.client_id
    assert order.status is OrderStatus.FILLED
    assert (await exchange.position(SYMBOL)).quantity == 0


async def test_fake_refuses_conditional_types_on_the_plain_order_endpoint(exchange):
    params = {"symbol": SYMBOL, "side": "SELL", "type": "STOP_MARKET", "quantity": "0.01",
              "stopPrice": "49000", "newClientOrderId": "x-1"}
    with pytest.raises(BinanceAPIException) as caught:
        await exchange.client._request_futures_api("post", "order", True, data=params)
    assert caught.value.code == -4120


# --- query and cancel by client id, on both APIs -----------------------------------------

async def test_orders_are_queried_and_cancelled_by_client_id_on_their_own_api(fake, exchange):
    await exchange.place(market(Side.BUY, "0.01"))
    resting = await exchange.place(limit(Side.BUY, "0.01", "45000", seq=2))
    stop = await exchange.place(stop_loss(Side.SELL, "48000"))

    assert (await exchange.order_by_client_id(SYMBOL, resting.client_id)).status is \
        OrderStatus.NEW
    assert (await exchange.order_by_client_id(SYMBOL, stop.client_id)).trigger_price == \
        Decimal("48000")
    assert sent(fake, "GET /fapi/v1/order")["origClientOrderId"] == resting.client_id
    assert sent(fake, "GET /fapi/v1/algoOrder")["clientAlgoId"] == stop.client_id
    assert {o.client_id for o in await exchange.open_orders(SYMBOL)} == {
        resting.client_id, stop.client_id}

    # DELETE /fapi/v1/order answers the cancelled order; DELETE /fapi/v1/algoOrder only an
    # acknowledgement (Cancel-Algo-Order page): cancel() succeeds on it without a state.
    assert (await exchange.cancel(SYMBOL, resting.client_id)).status is OrderStatus.CANCELED
    assert await exchange.cancel(SYMBOL, stop.client_id) is None
    assert sent(fake, "DELETE /fapi/v1/order")["origClientOrderId"] == resting.client_id
    assert sent(fake, "DELETE /fapi/v1/algoOrder")["clientAlgoId"] == stop.client_id
    assert await exchange.open_orders(SYMBOL) == []
    assert await exchange.cancel(SYMBOL, stop.client_id) is None       # -2011: nothing live
    assert (await exchange.order_by_client_id(SYMBOL, stop.client_id)).status is \
        OrderStatus.CANCELED


async def test_unknown_client_id_is_none_and_a_foreign_one_is_tried_plain_then_algo(
        fake, exchange):
    assert await exchange.order_by_client_id(SYMBOL, client_id(OrderRole.ENTRY, 9)) is None
    await exchange.place(market(Side.BUY, "0.01"))
    foreign = OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, Decimal("0"),
                           "web_stop_1", OrderRole.STOP_LOSS, trigger_price=Decimal("48000"),
                           close_position=True)
    await exchange.place(foreign)
    fake.clear_request_log()

    found = await exchange.order_by_client_id(SYMBOL, "web_stop_1")

    assert found is not None and found.type is OrderType.STOP_MARKET
    assert [r.path for r in fake.request_log] == ["/fapi/v1/order", "/fapi/v1/algoOrder"]


# --- answers Binance may write differently from our fake --------------------------------

def without(field: str):
    return lambda answer: {k: v for k, v in answer.items() if k != field}


async def test_an_unreadable_answer_to_an_order_post_is_an_unknown_outcome_the_probe_resolves(
        fake, exchange):
    fake.reshape_answers("POST /fapi/v1/order", without("status"))
    with captured_logs("WARNING") as logs, pytest.raises(UnknownOutcome, match="status"):
        await exchange.place(market(Side.BUY, "0.01"))

    found = await exchange.order_by_client_id(SYMBOL, client_id(OrderRole.ENTRY))
    assert found is not None and found.status is OrderStatus.FILLED   # it did go through
    assert any("may exist" in line for line in logs)


async def test_an_unreadable_answer_to_an_algo_post_is_an_unknown_outcome_too(fake, exchange):
    await exchange.place(market(Side.BUY, "0.01"))
    fake.reshape_answers("POST /fapi/v1/algoOrder", without("clientAlgoId"))
    with pytest.raises(UnknownOutcome, match="clientAlgoId"):
        await exchange.place(stop_loss(Side.SELL, "48000"))
    assert fake.sim.order(SYMBOL, client_id(OrderRole.STOP_LOSS)) is not None


async def test_open_orders_skip_unreadable_rows_and_never_count_an_unknown_status_as_live(
        fake, exchange):
    await exchange.place(market(Side.BUY, "0.02"))
    await exchange.place(stop_loss(Side.SELL, "48000"))
    await exchange.place(take_profit(Side.SELL, "52000", "0.02"))

    def odd(rows: list[dict]) -> list[dict]:
        stop, target = sorted(rows, key=lambda row: row["orderType"])
        trailing = {**stop, "clientAlgoId": "web_trailing", "orderType": "TRAILING_STOP_MARKET",
                    "brandNewField": {"x": 1}}
        return [{**stop, "algoStatus": "PAUSED"}, without("side")(target), trailing]

    fake.reshape_answers("GET /fapi/v1/openAlgoOrders", odd)
    orders = await exchange.open_orders(SYMBOL)
    assert [(o.client_id, o.type) for o in orders] == [("web_trailing", OrderType.OTHER)]


async def test_an_unreadable_position_is_a_malformed_response_never_a_flat_position(
        fake, exchange):
    await exchange.place(market(Side.BUY, "0.01"))
    fake.reshape_answers("GET /fapi/v3/positionRisk",
                         lambda rows: [without("positionAmt")(row) for row in rows])
    with pytest.raises(MalformedResponse, match="positionAmt"):
        await exchange.position(SYMBOL)


async def test_fills_leave_out_an_unreadable_trade_and_keep_the_others(fake, exchange):
    await exchange.place(market(Side.BUY, "0.01"))
    await exchange.place(market(Side.SELL, "0.01", OrderRole.FLATTEN, reduce_only=True))
    fake.reshape_answers("GET /fapi/v1/userTrades",
                         lambda rows: [without("qty")(rows[0]), *rows[1:]])
    fills = await exchange.fills(SYMBOL, datetime.now(UTC) - timedelta(minutes=5))
    assert [f.client_id for f in fills] == [client_id(OrderRole.FLATTEN)]


async def test_a_fill_of_an_order_binance_placed_carries_its_client_id_without_the_stream(
        fake, exchange):
    """userTrades rows name no client id: the adapter asks for the order once by orderId,
    so a liquidation's "autoclose-..." id reaches the engine over REST too."""
    await exchange.place(market(Side.BUY, "0.01"))
    await fake.close_position_by_exchange(SYMBOL, "autoclose-1700000000000")
    since = datetime.now(UTC) - timedelta(minutes=5)

    fills = await exchange.fills(SYMBOL, since)
    await exchange.fills(SYMBOL, since)

    assert [f.client_id for f in fills] == [client_id(OrderRole.ENTRY), "autoclose-1700000000000"]
    assert len(fake.requests("GET /fapi/v1/order")) == 1      # asked once, then remembered


# --- start-up ------------------------------------------------------------------------------

async def test_start_refuses_an_account_in_hedge_mode_before_changing_anything(fake):
    fake.set_hedge_mode(True)
    exchange = BinanceExchange(settings_for(fake), ManualClock(datetime.now(UTC)),
                               streams=False)
    with pytest.raises(SetupRefused, match="hedge mode; switch to one-way mode"):
        await exchange.start([SYMBOL], 5)
    await exchange.close()
    assert fake.requests("POST /fapi/v1/marginType") == []
    assert fake.requests("POST /fapi/v1/leverage") == []


async def test_start_in_multi_assets_mode_goes_on_asking_no_margin_type_twice(fake):
    """Found by a reviewer (rv16): a start refused in Multi-Assets mode left the positions
    open with nobody managing them. Start-up goes on (the engine blocks entries while the
    mode lasts, trader/margin_watch.py); the first -4168 stops the margin type requests,
    the flat symbols still get their leverage."""
    fake.set_multi_assets_mode(True)
    exchange = BinanceExchange(settings_for(fake), ManualClock(datetime.now(UTC)),
                               streams=False)
    await exchange.start(["BTCUSDT", "ETHUSDT"], 5)
    try:
        assert await exchange.multi_assets_mode() is True
    finally:
        await exchange.close()
    assert len(fake.requests("POST /fapi/v1/marginType")) == 1       # not for ETHUSDT
    assert fake.endpoints.margin_types == {}
    assert [r.params["symbol"] for r in fake.requests("POST /fapi/v1/leverage")] == [
        "BTCUSDT", "ETHUSDT"]


async def test_start_sets_isolated_margin_and_leverage_per_symbol_and_tolerates_4046(fake):
    for _ in range(2):   # the second start meets "no need to change margin type"
        async with started_exchange(fake, symbols=("BTCUSDT", "ETHUSDT"), leverage=7):
            pass
    assert fake.endpoints.margin_types == {"BTCUSDT": "ISOLATED", "ETHUSDT": "ISOLATED"}
    assert fake.sim.leverage("BTCUSDT") == fake.sim.leverage("ETHUSDT") == 7
    assert [r.params["symbol"] for r in fake.requests("POST /fapi/v1/leverage")] == [
        "BTCUSDT", "ETHUSDT"] * 2


async def test_start_loads_symbol_rules_from_exchange_info(exchange):
    rules = exchange.rules(SYMBOL)
    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal("100"))


async def test_start_refuses_a_symbol_binance_does_not_list(fake):
    exchange = BinanceExchange(settings_for(fake), ManualClock(datetime.now(UTC)),
                               streams=False)
    with pytest.raises(SetupRefused, match="NOPEUSDT"):
        await exchange.start(["NOPEUSDT"], 5)
    await exchange.close()


# --- reads ---------------------------------------------------------------------------------

async def test_account_and_market_reads_come_back_as_decimals(fake, exchange):
    await exchange.place(market(Side.BUY, "0.01"))
    position = await exchange.position(SYMBOL)
    balance = await exchange.balance()
    fills = await exchange.fills(SYMBOL, datetime.now(UTC) - timedelta(minutes=5))
    book = await exchange.book_ticker(SYMBOL)

    assert position.quantity == Decimal("0.01") and position.leverage == 5
    assert position.entry_price == fake.sim.position(SYMBOL).entry_price
    assert balance == fake.sim.balance()
    assert [(f.client_id, f.quantity, f.side) for f in fills] == [
        (client_id(OrderRole.ENTRY), Decimal("0.01"), Side.BUY)]
    assert fills[0].fee == fake.sim.fills(SYMBOL)[0].fee
    assert book.bid < book.ask and isinstance(book.bid, Decimal)
    assert await exchange.funding_rate(SYMBOL) == Decimal("0.0001")


async def test_klines_come_back_as_candles_with_closed_flags(fake, exchange):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minute in range(3):
        await fake.push_candle(Candle(SYMBOL, start + timedelta(minutes=minute),
                                      timedelta(minutes=1), Decimal("50000"),
                                      Decimal("50010.5"), Decimal("49990"), Decimal("50001.1"),
                                      Decimal("12.5")))
    candles = await exchange.klines(SYMBOL, "1m", start=start + timedelta(minutes=1), limit=10)

    assert [c.open_time for c in candles] == [start + timedelta(minutes=m) for m in (1, 2)]
    assert candles[0].high == Decimal("50010.5") and candles[0].closed
    assert sent(fake, "GET /fapi/v1/klines")["limit"] == "10"


# --- Decimal formatting --------------------------------------------------------------------

async def test_every_price_and_quantity_is_a_plain_decimal_string(fake):
    async with started_exchange(fake, symbols=("XRPUSDT",)) as exchange:
        await exchange.place(OrderRequest("XRPUSDT", Side.BUY, OrderType.MARKET,
                                          Decimal("123.40"), "tb-XRPUSDT-k-en1",
                                          OrderRole.ENTRY))
        await exchange.place(OrderRequest("XRPUSDT", Side.SELL, OrderType.STOP_MARKET,
                                          Decimal("1E+2"), "tb-XRPUSDT-k-sl1",
                                          OrderRole.STOP_LOSS, trigger_price=Decimal("4.5E-1"),
                                          reduce_only=True))
    order_params = sent(fake, "POST /fapi/v1/order")
    algo_params = sent(fake, "POST /fapi/v1/algoOrder")
    assert order_params["quantity"] == "123.4"
    assert (algo_params["quantity"], algo_params["triggerPrice"]) == ("100", "0.45")
    for params in (order_params, algo_params):
        assert not any("E" in value or "e-" in value for key, value in params.items()
                       if key in ("quantity", "price", "triggerPrice"))


# --- rate limits ---------------------------------------------------------------------------

async def test_adapter_holds_back_when_the_used_weight_nears_the_limit(fake):
    clock = ManualClock(datetime.now(UTC))
    async with started_exchange(fake, clock=clock) as exchange:
        fake.add_used_weight(2200)                   # someone else on our IP
        await exchange.balance()                     # learns the count from the header
        before = clock.now()
        with captured_logs("WARNING") as logs:
            await exchange.balance()
    assert timedelta(0) < clock.now() - before <= timedelta(seconds=60)
    assert any("rate limit near" in line for line in logs)


def test_rate_limits_are_read_from_exchange_info():
    limits = RateLimits.from_exchange_info([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50}])
    assert limits == RateLimits(weight_per_minute=1200, orders_per_minute=1200,
                                orders_per_10s=50)


def test_rate_limiter_waits_for_the_window_to_roll_over_and_not_longer():
    limiter = RateLimiter(RateLimits(weight_per_minute=100, orders_per_10s=10), headroom=0.9)
    # 2 s into a 10 s window (a count read in a window's first second may be the previous
    # window's: tests/test_rate_limit_window_edge.py)
    seen = datetime(2026, 1, 1, 12, 0, 22, tzinfo=UTC)
    limiter.observe({"X-MBX-USED-WEIGHT-1M": "85", "X-MBX-ORDER-COUNT-10S": "9"}, seen)

    assert limiter.delay(seen, weight=5) == 0.0
    assert limiter.delay(seen, weight=6) == pytest.approx(38.0)
    assert limiter.delay(seen, weight=1, orders=1) == pytest.approx(8.0)   # 10 s window
    assert limiter.delay(seen + timedelta(seconds=39), weight=50) == 0.0
    assert limiter.delay(seen + timedelta(seconds=5), weight=0, orders=1) == pytest.approx(3.0)


# --- the fake's control API over HTTP (for an agent running in another process) -------------

async def test_fake_can_be_driven_over_http_control_endpoints(fake, exchange):
    async with aiohttp.ClientSession(base_url=fake.url) as http:
        async def control(name: str, **body) -> dict:
            async with http.post(f"/_control/{name}", json=body) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        await control("open_position_by_hand", symbol=SYMBOL, side="BUY", qty="0.02")
        await control("move_price", symbol=SYMBOL, price="50500")
        await control("push_candle", symbol=SYMBOL, open_time=1767225600000, interval="1m",
                      open="50500", high="50600", low="50400", close="50550", volume="2")
        await control("inject_fault", path_or_endpoint="POST /fapi/v1/order", code=-2019)
        async with http.get("/_control/state") as response:
            state = await response.json()
        async with http.post("/_control/no_such_control", json={}) as response:
            assert response.status == 404

        position = await exchange.position(SYMBOL)
        assert position.quantity == Decimal("0.02") and position.mark_price == Decimal("50550")
        assert state["positions"] == [{"symbol": SYMBOL, "quantity": "0.02",
                                       "entry_price": state["positions"][0]["entry_price"]}]
        with pytest.raises(ExchangeError) as caught:
            await exchange.place(market(Side.BUY, "0.01"))
        assert caught.value.code == -2019
        await control("close_position_by_hand", symbol=SYMBOL)
        assert (await exchange.position(SYMBOL)).quantity == 0
        async with http.get("/_control/request_log") as response:
            log = await response.json()
        assert {"method": "POST", "path": "/fapi/v1/order"} in [
            {"method": entry["method"], "path": entry["path"]} for entry in log]


def test_fake_runs_as_a_script_with_prices_from_the_command_line():
    seen: dict[str, Decimal] = {}

    async def check(server: FakeBinance) -> None:
        async with server:
            seen["price"] = server.sim.mark_price("BTCUSDT")
            seen["port"] = Decimal(server.port)

    main(["--port", "0", "--price", "BTCUSDT=42000.5"], serve=check)
    assert seen["price"] == Decimal("42000.5") and seen["port"] > 0
