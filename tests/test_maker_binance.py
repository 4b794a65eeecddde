"""Maker-first entries on the wire: the real python-binance client sends a LIMIT entry as
timeInForce=GTX with its price on the tick; the fake Binance follows "New Order (TRADE)"
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/
New-Order: LIMIT needs timeInForce, GTX is "Good Till Crossing (Post Only)") and refuses a
GTX that would take liquidity with -5022 (error-code page, 50xx); the engine re-quotes it
instead of raising an error alert."""

from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException

from tests.fakes.binance_harness import SYMBOL, client_id, settings_for, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.positions import make
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.domain import OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.engine import Engine
from trader.exchange.base import ExchangeError
from trader.exchange.binance import BinanceExchange
from trader.exchange.errors import classify
from trader.intents import quote_intent
from trader.position import PositionState
from trader.trade_store import TradeStore

D = Decimal
PRICE = D("50000")          # the fake's book: bid 49999.5, ask 50000.5 (BTC, tick 0.1)
NEW_ORDER = "POST /fapi/v1/order"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


def post_only(side: Side, quantity: str, price: str, seq: int = 1) -> OrderRequest:
    return OrderRequest(SYMBOL, side, OrderType.LIMIT, D(quantity),
                        client_id(OrderRole.ENTRY, seq), OrderRole.ENTRY, price=D(price),
                        post_only=True)


# --- the wire -----------------------------------------------------------------------------

async def test_a_maker_quote_is_sent_as_gtx_with_its_price_on_the_tick(fake):
    async with started_exchange(fake) as exchange:
        order = await exchange.place(post_only(Side.BUY, "0.012", "49999.50"))
    params = fake.requests(NEW_ORDER)[-1].params
    assert (params["type"], params["timeInForce"], params["price"], params["quantity"]) == (
        "LIMIT", "GTX", "49999.5", "0.012")
    assert order.status is OrderStatus.NEW and order.price == D("49999.5")
    answer = fake.endpoints.query_order({"symbol": SYMBOL,
                                         "origClientOrderId": order.client_id})
    assert answer["timeInForce"] == "GTX" and answer["status"] == "NEW"


async def test_an_entry_quote_intent_goes_out_post_only(fake):
    """Intents carry no time in force: a LIMIT entry intent is a maker quote, so the
    request built from it is post-only (GTX on the wire)."""
    position = make(state=PositionState.ENTERING, quantity="0.010", entry="50000",
                    live_legs=False, key="lzx81c0")
    intent = quote_intent(position, client_id(OrderRole.ENTRY), D("49999.5"), D("0.010"),
                          position.opened_at)
    assert intent.request().post_only
    async with started_exchange(fake) as exchange:
        await exchange.place(intent.request())
    assert fake.requests(NEW_ORDER)[-1].params["timeInForce"] == "GTX"


@pytest.mark.parametrize(("side", "price"), [(Side.BUY, "50000.5"), (Side.SELL, "49999.5")])
async def test_a_gtx_that_would_take_liquidity_is_refused_with_5022_and_not_recorded(
        fake, side, price):
    async with started_exchange(fake) as exchange:
        with pytest.raises(ExchangeError) as refused:
            await exchange.place(post_only(side, "0.010", price))
        verdict = classify(refused.value, OrderRole.ENTRY)
        assert refused.value.code == -5022 and verdict.post_only_rejected
        assert await exchange.order_by_client_id(SYMBOL, client_id(OrderRole.ENTRY)) is None
    assert fake.sim.position(SYMBOL).quantity == 0


async def test_the_fake_wants_a_time_in_force_for_a_limit_as_binance_does(fake):
    async with started_exchange(fake) as exchange:
        with pytest.raises(BinanceAPIException) as refused:
            await exchange.client.futures_create_order(
                symbol=SYMBOL, side="BUY", type="LIMIT", quantity="0.01", price="49000",
                newClientOrderId="no-tif")
    assert refused.value.code == -1102 and "timeInForce" in refused.value.message


# --- the engine re-quotes a -5022 --------------------------------------------------------------

async def test_the_engine_requotes_a_quote_refused_for_crossing_and_then_fills_as_maker(
        fake, tmp_path):
    settings = settings_for(fake, db_path=tmp_path / "tradebot.db", entry_mode="maker",
                            maker_timeout_seconds=60)
    clock = SystemClock()
    exchange = BinanceExchange(settings, clock, streams=False)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, clock, Alerter(store))
    try:
        # The book the agent reads is stale by the time its quote arrives: the bid it joins
        # is above the real ask, so the quote would take liquidity.
        fake.reshape_answers("GET /fapi/v1/ticker/bookTicker",
                             lambda book: {**book, "bidPrice": "50001.0", "askPrice": "50002.0"})
        planned = make(state=PositionState.ENTERING, quantity="0.010", entry="50000",
                       stop="49500", tp="51000", live_legs=False, seq={},
                       opened_at=clock.now(), key="mk1")
        sent = await engine.entries.send(planned)
        assert sent is not None and sent.state is PositionState.ENTERING
        refused = fake.requests(NEW_ORDER)[-1]
        assert (refused.params["timeInForce"], refused.params["price"]) == ("GTX", "50001")
        assert engine.store.intent(refused.params["newClientOrderId"]).detail.startswith("-5022")

        await engine.tick()                       # re-quoted at the real touch
        quote = fake.requests(NEW_ORDER)[-1].params
        assert quote["newClientOrderId"].endswith("-en2") and quote["price"] == "49999.5"
        assert quote["timeInForce"] == "GTX"
        await fake.move_price(SYMBOL, D("49990"))  # trades through the quote
        for _ in range(3):
            await engine.tick()
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.PROTECTED and position.quantity == D("0.010")
        [fill] = [f for f in fake.sim.fills(SYMBOL) if "-en" in f.client_id]
        assert fill.maker and fill.price == D("49999.5")
        # refused for crossing is routine for a maker: re-quoted, never an error alert
        assert not [a for a in store.recent_alerts(50) if a.name == "ERROR" or "5022" in a.text]
        assert len([r for r in fake.requests(NEW_ORDER) if r.params["type"] == "LIMIT"]) == 2
    finally:
        await exchange.close()
        store.close()

