"""Quotes from the market streams, so that a healthy tick reads no price over REST: the
documented bookTicker and markPriceUpdate payloads decode; the latest value per symbol is
kept, only as fresh as its oldest part; through the real adapter against the fake Binance a
price move arrives as a quote, a dropped stream ages it out, a malformed message is
skipped. The paper exchange quotes its simulator. And a triggered stop's events, in either
order Binance may send them, end in the same facts."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storage import Store
from tests.fakes.binance_endpoints import TRIGGER_EVENT_ORDERS
from tests.fakes.binance_harness import (
    SYMBOL,
    client_id,
    eventually,
    market,
    started_exchange,
    stop_loss,
)
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from trader.clock import ManualClock
from trader.domain import BookTicker, Candle, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.base import MalformedResponse, OrderUpdate, Quote
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_quotes import (
    LatestQuotes,
    MarkPrice,
    book_from_stream,
    mark_from_stream,
)
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.exchange.websocket_stream import StreamOptions

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FAST = StreamOptions(heartbeat_seconds=0.2, silence_seconds=30.0, backoff_initial=0.05,
                     backoff_max=0.2, keepalive_seconds=30.0)
FRESH = timedelta(seconds=5)
BOOK = BookTicker(SYMBOL, Decimal("49990"), Decimal("50010"))
MARK = MarkPrice(SYMBOL, Decimal("50001"), Decimal("0.0001"))


# --- decoding the documented payloads ------------------------------------------------------

def test_the_documented_book_ticker_decodes_to_the_best_bid_and_ask():
    expected = BookTicker("BNBUSDT", Decimal("25.35190000"), Decimal("25.36520000"))
    assert book_from_stream(payload("event_book_ticker")) == expected
    combined = payload("event_book_ticker_combined")
    assert combined["stream"] == "bnbusdt@bookTicker"
    assert book_from_stream(combined["data"]) == expected


def test_the_documented_mark_price_decodes_with_its_funding_rate():
    expected = MarkPrice("BTCUSDT", Decimal("11794.15000000"), Decimal("0.00038167"))
    assert mark_from_stream(payload("event_mark_price")) == expected
    combined = payload("event_mark_price_combined")
    assert combined["stream"] == "btcusdt@markPrice@1s"
    assert mark_from_stream(combined["data"]) == expected


def test_a_mark_price_without_a_funding_rate_has_none_not_zero():
    """A delivery contract's "r" is "" (COIN-M Mark Price Stream page): no rate, not 0 %."""
    event = payload("event_mark_price") | {"r": ""}
    assert mark_from_stream(event).funding_rate is None
    del event["r"]
    assert mark_from_stream(event).funding_rate is None


@pytest.mark.parametrize("change", [{"b": None}, {"b": "abc"}, {"a": "NaN"}, {"a": ""},
                                    {"s": None}], ids=str)
def test_an_unreadable_book_ticker_raises_malformed_response(change):
    event = {k: v for k, v in (payload("event_book_ticker") | change).items() if v is not None}
    with pytest.raises(MalformedResponse):
        book_from_stream(event)


@pytest.mark.parametrize("event", [{"e": "markPriceUpdate", "s": "BTCUSDT"},
                                   payload("event_mark_price") | {"p": "Infinity"},
                                   payload("event_mark_price") | {"r": "x"}, [1, 2]], ids=str)
def test_an_unreadable_mark_price_raises_malformed_response(event):
    with pytest.raises(MalformedResponse):
        mark_from_stream(event)


# --- the latest quote, as fresh as its oldest part ---------------------------------------------

def test_a_book_or_a_mark_alone_is_no_quote():
    quotes = LatestQuotes(ManualClock(T0))
    quotes.on_book(BOOK)
    assert quotes.quote(SYMBOL, FRESH) is None
    marks_only = LatestQuotes(ManualClock(T0))
    marks_only.on_mark(MARK)
    assert marks_only.quote(SYMBOL, FRESH) is None


def test_a_quote_is_as_fresh_as_its_oldest_part_and_stamped_with_its_newest():
    clock = ManualClock(T0)
    quotes = LatestQuotes(clock)
    quotes.on_book(BOOK)
    clock.advance(2)
    quotes.on_mark(MARK)
    assert quotes.quote(SYMBOL, timedelta(seconds=2)) == Quote(
        SYMBOL, BOOK.bid, BOOK.ask, MARK.mark, MARK.funding_rate, at=T0 + timedelta(seconds=2))
    assert quotes.quote(SYMBOL, timedelta(seconds=1.9)) is None     # the book is 2 s old
    assert quotes.quote("ETHUSDT", FRESH) is None


def test_a_newer_value_replaces_the_older_one():
    clock = ManualClock(T0)
    quotes = LatestQuotes(clock)
    quotes.on_book(BOOK)
    quotes.on_mark(MARK)
    clock.advance(10)
    quotes.on_book(BookTicker(SYMBOL, Decimal("50100"), Decimal("50101")))
    quotes.on_mark(MarkPrice(SYMBOL, Decimal("50100.5"), None))
    quote = quotes.quote(SYMBOL, timedelta(0))
    assert quote is not None and quote.book == BookTicker(SYMBOL, Decimal("50100"),
                                                          Decimal("50101"))
    assert (quote.mark, quote.funding_rate, quote.at) == (Decimal("50100.5"), None,
                                                          T0 + timedelta(seconds=10))


# --- the paper exchange --------------------------------------------------------------------------

async def test_the_paper_exchange_quotes_its_simulator_always_fresh(store: Store):
    clock = ManualClock(T0)
    paper = PaperExchange(store, clock, SimConfig(spread={SYMBOL: Decimal("0.0002")}))
    await paper.start([SYMBOL], leverage=5)
    assert paper.quote(SYMBOL, FRESH) is None                       # no price yet
    paper.feed_candle(Candle(SYMBOL, T0, timedelta(minutes=1), Decimal("50000"),
                             Decimal("50050"), Decimal("49950"), Decimal("50020")))
    clock.advance(3600)
    quote = paper.quote(SYMBOL, timedelta(0))
    assert quote is not None and quote.at == clock.now()
    assert quote.book == await paper.book_ticker(SYMBOL) and quote.bid < quote.ask
    assert quote.mark == (await paper.position(SYMBOL)).mark_price == Decimal("50020")
    assert quote.funding_rate == await paper.funding_rate(SYMBOL)


# --- through the adapter against the fake Binance ------------------------------------------------

@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def exchange(fake):
    async with started_exchange(fake, streams=True, stream_options=FAST) as started:
        assert await eventually(lambda: started.streams.market_live
                                and started.streams.book_ticker_live)
        yield started


def quoted_mark(exchange: BinanceExchange, mark: str, max_age: timedelta = FRESH) -> bool:
    quote = exchange.quote(SYMBOL, max_age)
    return quote is not None and quote.mark == Decimal(mark)


async def test_a_price_move_arrives_as_a_quote_without_a_rest_read(fake, exchange):
    assert exchange.quote(SYMBOL, FRESH) is None      # nothing pushed yet: the caller reads REST
    await fake.move_price(SYMBOL, Decimal("50100"))

    assert await eventually(lambda: quoted_mark(exchange, "50100"))
    quote = exchange.quote(SYMBOL, FRESH)
    assert quote is not None and quote.funding_rate == fake.sim.funding_rate(SYMBOL)
    assert fake.requests("GET /fapi/v1/ticker/bookTicker") == []
    assert quote.book == await exchange.book_ticker(SYMBOL) and quote.bid < quote.ask
    await fake.push_candle(Candle(SYMBOL, T0, timedelta(minutes=1), Decimal("50100"),
                                  Decimal("50300"), Decimal("50000"), Decimal("50250")))
    assert await eventually(lambda: quoted_mark(exchange, "50250"))


async def test_a_dropped_market_stream_ages_the_quote_out_until_it_is_back(fake, exchange):
    await fake.move_price(SYMBOL, Decimal("50100"))
    assert await eventually(lambda: quoted_mark(exchange, "50100"))

    await fake.drop_streams(refuse_for=1.0)
    assert await eventually(lambda: not exchange.streams.market_live)
    await fake.move_price(SYMBOL, Decimal("50200"))                  # nobody hears of it
    short = timedelta(seconds=0.3)
    assert await eventually(lambda: exchange.quote(SYMBOL, short) is None, timeout=3.0)
    assert quoted_mark(exchange, "50100", timedelta(minutes=1))     # only age made it None

    assert await eventually(lambda: exchange.streams.market_live
                            and exchange.streams.book_ticker_live, timeout=5.0)
    await fake.move_price(SYMBOL, Decimal("50300"))
    assert await eventually(lambda: quoted_mark(exchange, "50300", short))


def btcusdt(name: str, **changes: Any) -> tuple[str, str]:
    """A documented combined example, re-addressed to BTCUSDT: (stream name, text)."""
    event = payload(name)
    event["data"] |= {"s": SYMBOL, **changes}
    event["stream"] = f"btcusdt@{event['stream'].partition('@')[2]}"
    return event["stream"], json.dumps(event)


async def test_a_malformed_quote_message_is_counted_and_skipped(fake, exchange):
    bad = [btcusdt("event_book_ticker_combined", b="abc"), ("btcusdt@bookTicker", "{no json"),
           btcusdt("event_mark_price_combined", p="")]
    for stream, text in bad:
        await fake.hub.send_market_text(stream, text)
    book, market_data = exchange.streams.book_ticker.health, exchange.streams.market.health
    assert await eventually(lambda: (book.decode_errors, market_data.decode_errors) == (2, 1))
    assert exchange.quote(SYMBOL, FRESH) is None                    # nothing half-read kept

    for stream, text in [btcusdt("event_book_ticker_combined"),
                         btcusdt("event_mark_price_combined")]:
        await fake.hub.send_market_text(stream, text)
    assert await eventually(lambda: quoted_mark(exchange, "11794.15"))
    assert (book.connections, market_data.connections) == (1, 1)   # read on, no reconnect


# --- a triggered stop: either order of its events -------------------------------------------------

async def triggered_stop_facts(trigger_events: str) -> dict[str, Any]:
    """Trigger a closePosition stop on a fake sending its events in `trigger_events` order;
    what the adapter decoded from them, and the child order's client id as sent."""
    async with FakeBinance(trigger_events=trigger_events) as fake, \
            started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        sent: list[dict[str, Any]] = []
        send_user = fake.hub.send_user

        async def recording(payloads: list[dict[str, Any]], listen_key: str | None = None):
            sent.extend(payloads)
            await send_user(payloads, listen_key)

        fake.hub.send_user = recording  # type: ignore[method-assign]
        assert await eventually(lambda: exchange.streaming)
        stop_id = client_id(OrderRole.STOP_LOSS)
        await exchange.place(market(Side.BUY, "0.01"))
        await exchange.place(stop_loss(Side.SELL, "49000"))
        await fake.move_price(SYMBOL, Decimal("48900"))
        updates: list[OrderUpdate] = []

        def finished() -> bool:
            updates.extend(e for e in exchange.drain_events() if isinstance(e, OrderUpdate))
            return any(u.order.client_id == stop_id and u.order.exchange_id.startswith("algo:")
                       and u.order.status is OrderStatus.FILLED for u in updates)

        assert await eventually(finished)
    orders = [e for e in sent if e["e"] in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE")]
    trigger = [e["o"]["X"] if e["e"] == "ALGO_UPDATE" else "child fill" for e in orders
               if e["o"].get("caid", e["o"].get("c")) == stop_id][1:]
    child = next(e["o"] for e in orders if e["e"] == "ORDER_TRADE_UPDATE"
                 and e["o"]["ot"] == "STOP_MARKET")
    stop = [u for u in updates if u.order.exchange_id.startswith("algo:")]
    fills = [u.fill for u in updates if u.fill is not None and u.fill.order_id == str(child["i"])]
    return {"sent": trigger, "child_client_id": child["c"], "statuses": [
        (u.order.exchange_id.startswith("algo:"), u.order.status) for u in updates
        if u.order.client_id == stop_id][1:],
        "final": (stop[-1].order.client_id, stop[-1].order.type, stop[-1].order.status,
                  stop[-1].order.filled_qty),
        "fills": [(f.client_id, f.side, f.quantity, f.order_id) for f in fills]}


async def test_a_triggered_stop_ends_in_the_same_facts_whichever_event_comes_first():
    """Binance does not document whether the child's fill comes before or after ALGO_UPDATE
    TRIGGERED (nautilus_trader #3664 saw it first). Either way: the stop is FILLED under its
    clientAlgoId, and its one fill carries the child's client id as Binance sent it."""
    facts = {order: await triggered_stop_facts(order) for order in TRIGGER_EVENT_ORDERS}
    first, fill_first = facts["triggered-first"], facts["fill-first"]
    assert first["sent"] == ["TRIGGERED", "child fill", "FINISHED"]
    assert fill_first["sent"] == ["child fill", "TRIGGERED", "FINISHED"]

    stop_id = client_id(OrderRole.STOP_LOSS)
    for observed in (first, fill_first):
        assert observed["final"] == (stop_id, OrderType.STOP_MARKET, OrderStatus.FILLED,
                                     Decimal("0.01"))
        [(fill_client_id, side, quantity, _)] = observed["fills"]
        assert fill_client_id == observed["child_client_id"]
        assert (side, quantity) == (Side.SELL, Decimal("0.01"))
    assert (first["final"], first["fills"]) == (fill_first["final"], fill_first["fills"])
    # In between, fill-first reads FILLED (the child) before NEW (TRIGGERED, nothing
    # executed yet by the algo's count): whoever tracks orders must not let a later live
    # status undo a fill it has seen.
    assert fill_first["statuses"] == [(False, OrderStatus.FILLED), (True, OrderStatus.NEW),
                                      (True, OrderStatus.FILLED)]
    assert first["statuses"] == [(True, OrderStatus.NEW), (False, OrderStatus.FILLED),
                                 (True, OrderStatus.FILLED)]
