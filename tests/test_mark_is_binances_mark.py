""""The mark" is Binance's mark price, never the book's middle: a reviewer saw a LONG closed
at market as STOP_LOSS ("the stop-loss 49,500 was triggered on Binance but did not execute:
the mark 49,252.45 has been past it") while Binance's mark was pushed at 50,000 the whole
time: 49,252.45 was the REST book's middle, read because the book-ticker stream had been
quiet for 10 s and a quote needed both the book and the mark fresh.

Binance: our stops trigger on the mark (workingType=MARK_PRICE, trader/exchange/
binance_requests.py; "Event: Order Update", "wt"); the mark is what <symbol>@markPrice@1s
pushes (https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/Mark-Price-Stream) and what GET /fapi/v1/premiumIndex answers as
"markPrice" (https://developers.binance.com/docs/derivatives/usds-margined-futures/
market-data/rest-api/Mark-Price, weight 1 with a symbol); the book ticker pushes only when
the best bid or ask changes (.../Individual-Symbol-Book-Ticker-Streams), so a quiet book is
no fault and says nothing of the mark.

The engine's own loop runs against FakeBinance (grace 1 s instead of 10 s); the REST book
answers 0.5 % under the LONG's stop in the cases where the book must not be taken for the
mark (Binance's book and its mark part in a fast move: the reason stops trigger on the
mark)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from storage import Store
from tests.fakes import binance_wire as wire
from tests.fakes.binance_harness import eventually, started_exchange
from tests.fakes.binance_hub import LEGACY, ROUTED
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.log_capture import logged
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from trader import display, exchange_view
from trader.alerts import AlertName
from trader.clock import ManualClock
from trader.domain import BookTicker, Candle, CloseReason, OrderType
from trader.engine import Engine
from trader.exchange import binance_codec as codec
from trader.exchange.base import ExchangeError, MalformedResponse
from trader.exchange.binance_quotes import LatestQuotes, MarkPrice
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig

GRACE = 1.0      # TRADEBOT_TRIGGER_GRACE_SECONDS in these tests
BOUND = 8.0      # seconds: the mark aged out, the grace, a tick or two, the close
PREMIUM_INDEX = "GET /fapi/v1/premiumIndex"
BOOK_TICKER = "GET /fapi/v1/ticker/bookTicker"


def unprotected(engine: Engine) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(50)
            if a.name == AlertName.POSITION_UNPROTECTED]


def held(fake: FakeBinance) -> Decimal:
    return fake.sim.position(SYMBOL).quantity


def market_closes(fake: FakeBinance) -> list[dict[str, str]]:
    return [r.params for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") == OrderType.MARKET.value]


def stop_level(engine: Engine) -> Decimal:
    stop = engine.positions[SYMBOL].stop.order
    assert stop is not None and stop.trigger_price is not None
    return stop.trigger_price


def book_under_the_stop(fake: FakeBinance, engine: Engine) -> Decimal:
    """The REST book answers 0.5 % under the LONG's stop from now on; its middle."""
    under = (stop_level(engine) * Decimal("0.995")).quantize(Decimal("0.1"))
    fake.reshape_answers(BOOK_TICKER, lambda answer: {
        **answer, "bidPrice": str(under - Decimal("0.1")), "askPrice": str(under)},
        times=10_000)
    return under - Decimal("0.05")


async def push_marks(fake: FakeBinance, mark: Decimal) -> None:
    """Binance's mark, pushed every 0.5 s (its @1s stream), no book with it."""
    while True:
        event = wire.mark_price_event(SYMBOL, mark, Decimal("0.0001"), int(time.time() * 1000))
        await fake.hub.send_market(event["stream"], event)
        await asyncio.sleep(0.5)


@asynccontextmanager
async def pushing_marks(fake: FakeBinance, mark: Decimal) -> AsyncIterator[None]:
    """Marks pushed while inside; the fake's request log cleared once the first arrived
    (before it, at boot, the agent had none pushed and read one over REST)."""
    pusher = asyncio.create_task(push_marks(fake, mark))
    try:
        await asyncio.sleep(1.0)           # the first one arrived (sent at once, local)
        fake.clear_request_log()
        yield
    finally:
        pusher.cancel()


async def market_stream_down(fake: FakeBinance, engine: Engine) -> None:
    """The market sockets (mark and book) closed and refused from now on; the user-data
    stream stays up (its socket is not touched)."""
    for layout in (ROUTED, LEGACY):
        fake.hub.refuse_upgrades(layout, times=10_000)
    for ws in list(fake.hub.market):
        await ws.close(code=1001, message=b"market streams down")
    streams = engine.exchange.streams          # type: ignore[attr-defined]
    assert await eventually(lambda: not streams.market_live and not streams.book_ticker_live,
                            5.0)
    assert engine.exchange.streaming


@pytest.fixture
def short_quote_age(monkeypatch):
    """A pushed quote stands for 1 s instead of 10 (the wait for it to age out)."""
    monkeypatch.setattr(exchange_view, "QUOTE_MAX_AGE", timedelta(seconds=1))


async def test_a_fresh_pushed_mark_is_the_mark_when_the_book_stream_is_quiet(tmp_path):
    """The reviewer's case (h-review12), with QUOTE_MAX_AGE as it is: the book-ticker
    stream connected and quiet past 10 s, the mark pushed above the stop every 0.5 s, the
    REST book under it: the position stays open, nothing alerted, and no mark is read over
    REST while a pushed one is fresh (the REST budget)."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        level = stop_level(engine)
        book_under_the_stop(fake, engine)
        async with pushing_marks(fake, PRICE):
            await asyncio.sleep(10 + GRACE + 4)     # the pushed book ages out, grace, ticks
        assert engine.exchange.streams.market_live   # type: ignore[attr-defined]
        assert held(fake) == Decimal("0.100"), (
            f"closed at market while Binance's mark ({PRICE}) never reached the stop "
            f"({level}); alerts: {unprotected(engine)}")
        assert unprotected(engine) == [] and market_closes(fake) == []
        assert fake.requests(PREMIUM_INDEX) == [], "a pushed mark was fresh: none to read"
        assert fake.requests(BOOK_TICKER), "the breakers still read the (quiet) book"
        assert engine.view.last_mark(SYMBOL) == PRICE


async def test_with_the_market_stream_down_a_mark_short_of_the_stop_keeps_the_position(
        tmp_path, short_quote_age):
    """No market stream: the mark is read from premiumIndex (Binance's 50,000, short of the
    stop), not from the REST book under the stop: nothing is closed."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        await market_stream_down(fake, engine)
        book_under_the_stop(fake, engine)
        fake.clear_request_log()
        await asyncio.sleep(1 + GRACE + 3)          # the pushed mark ages out, grace, ticks
        assert held(fake) == Decimal("0.100"), unprotected(engine)
        assert unprotected(engine) == [] and market_closes(fake) == []
        read = fake.requests(PREMIUM_INDEX)
        assert read and all(r.params.get("symbol") == SYMBOL for r in read)
        assert engine.view.last_mark(SYMBOL) == PRICE     # /status: the mark read, too


async def test_with_the_market_stream_down_a_mark_past_a_stuck_stop_closes_the_position(
        tmp_path, short_quote_age):
    """No market stream, the stop stuck TRIGGERING, premiumIndex's mark 2 % past it: the
    stuck stop is caught from the mark read over REST and the position closed at market,
    the alert naming that mark."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        await market_stream_down(fake, engine)
        stop = engine.positions[SYMBOL].stop.order
        assert stop is not None
        await fake.stick_trigger(SYMBOL, stop.client_id)
        past = (stop_level(engine) * Decimal("0.98")).quantize(Decimal("0.1"))
        await fake.move_price(SYMBOL, past)        # pushed to no socket: premiumIndex says it
        assert await eventually(lambda: held(fake) == 0, BOUND), "still open past its stop"
        assert await eventually(lambda: unprotected(engine), BOUND)
        [text] = unprotected(engine)
        assert "was triggered on Binance but did not execute" in text
        assert f"the mark {display.number(past)} has been past it" in text, text
        [close] = market_closes(fake)
        assert close["reduceOnly"] == "true" and close["side"] == "SELL"
        assert fake.requests(PREMIUM_INDEX)
        assert await eventually(lambda: [p.close_reason for p in
                                         engine.store.closed_positions()]
                                == [CloseReason.STOP_LOSS], BOUND)


async def test_a_pushed_mark_past_a_stuck_stop_beyond_the_grace_closes_at_market_as_before(
        tmp_path):
    """Negative: the streams healthy, the stop stuck TRIGGERING and Binance's mark (and
    book) pushed 2 % past it: closed at market as STOP_LOSS after the grace, as before the
    fix; nothing read over REST for the mark."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        stop = engine.positions[SYMBOL].stop.order
        assert stop is not None
        await fake.stick_trigger(SYMBOL, stop.client_id)
        past = (stop_level(engine) * Decimal("0.98")).quantize(Decimal("0.1"))
        fake.clear_request_log()
        await fake.move_price(SYMBOL, past)
        assert await eventually(lambda: held(fake) == 0, BOUND), "still open past its stop"
        assert await eventually(lambda: unprotected(engine), BOUND)
        [text] = unprotected(engine)
        assert f"the mark {display.number(past)} has been past it" in text, text
        assert "closing the LONG 0.1 at market" in text and len(market_closes(fake)) == 1
        assert fake.requests(PREMIUM_INDEX) == []
        assert await eventually(lambda: [p.close_reason for p in
                                         engine.store.closed_positions()]
                                == [CloseReason.STOP_LOSS], BOUND)


async def test_a_pushed_mark_past_the_stop_is_judged_however_quiet_the_book(tmp_path):
    """The other face of the reviewer's case: the book quiet (the REST book above the
    stop), Binance's pushed mark past a stop that did not execute. The REST book's middle
    hid it (the position stayed unprotected); now the pushed mark alone is enough: closed
    at market as STOP_LOSS after the grace, nothing read over REST for the mark."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        past = (stop_level(engine) * Decimal("0.99")).quantize(Decimal("0.1"))
        async with pushing_marks(fake, past):
            assert await eventually(lambda: held(fake) == 0, BOUND + 2), "still open"
            assert await eventually(lambda: unprotected(engine), BOUND)
        [text] = unprotected(engine)
        assert "closing the LONG 0.1 at market" in text
        assert len(market_closes(fake)) == 1
        assert fake.requests(PREMIUM_INDEX) == []
        assert await eventually(lambda: [p.close_reason for p in
                                         engine.store.closed_positions()]
                                == [CloseReason.STOP_LOSS], BOUND)


async def test_with_no_mark_to_be_had_a_stop_is_not_judged_and_the_log_says_why(
        tmp_path, short_quote_age):
    """No market stream and premiumIndex refused: no mark this tick. The book under the
    stop is not taken for one: nothing is closed, and the log says nothing is judged on the
    price until a mark is read."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        await market_stream_down(fake, engine)
        book_under_the_stop(fake, engine)
        fake.inject_fault(PREMIUM_INDEX, code=-1000, http_status=400, times=10_000,
                          msg="An unknown error occured while processing the request.")
        with logged("WARNING", "no mark price this tick") as lines:
            await asyncio.sleep(1 + GRACE + 3)
        assert held(fake) == Decimal("0.100"), unprotected(engine)
        assert unprotected(engine) == [] and market_closes(fake) == []
        assert lines and f"symbol={SYMBOL}" in lines[0] and "nothing is judged" in lines[0]


# --- the parts: the mark's freshness apart from the book's; premiumIndex as documented ---------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FRESH = timedelta(seconds=5)


def test_a_pushed_mark_stays_the_mark_however_old_the_book_and_the_reverse():
    """A quiet book (pushed only when the top changes) leaves the mark fresh, and a mark
    stream down leaves the book fresh; a whole quote still needs both."""
    clock = ManualClock(T0)
    quotes = LatestQuotes(clock)
    quotes.on_book(BookTicker(SYMBOL, Decimal("49990"), Decimal("50010")))
    clock.advance(60)
    quotes.on_mark(MarkPrice(SYMBOL, PRICE, Decimal("0.0001")))
    mark = quotes.mark(SYMBOL, FRESH)
    assert mark is not None and mark.mark == PRICE
    assert quotes.book(SYMBOL, FRESH) is None and quotes.quote(SYMBOL, FRESH) is None
    quotes.on_book(BookTicker(SYMBOL, Decimal("49990"), Decimal("50010")))
    clock.advance(6)
    assert quotes.mark(SYMBOL, FRESH) is None and quotes.book(SYMBOL, timedelta(seconds=6))
    assert quotes.mark("ETHUSDT", FRESH) is None and quotes.book("ETHUSDT", FRESH) is None


def test_the_mark_read_over_rest_is_premium_indexs_mark_price():
    """The documented example (Mark-Price page): "markPrice", not "indexPrice"; a missing
    or non-positive one is unreadable, never 0."""
    assert codec.mark_from_premium_index(payload("premium_index")) == Decimal("11793.63104562")
    for broken in ({"markPrice": "0"}, {"markPrice": "-1"}, {}):
        raw = payload("premium_index") | broken
        if not broken:
            del raw["markPrice"]
        with pytest.raises(MalformedResponse, match="markPrice"):
            codec.mark_from_premium_index(raw)


async def test_the_adapter_reads_the_mark_from_premium_index_with_the_symbol():
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            started_exchange(fake, streams=False) as exchange:
        fake.reshape_answers(PREMIUM_INDEX, lambda answer: {**answer, "markPrice": "50123.4"})
        assert await exchange.mark_price(SYMBOL) == Decimal("50123.4")
        [read] = fake.requests(PREMIUM_INDEX)
        assert read.params == {"symbol": SYMBOL}
        assert exchange.pushed_mark(SYMBOL, FRESH) is None        # nothing pushed: streams off
        assert fake.requests(BOOK_TICKER) == []


async def test_the_paper_exchange_answers_its_simulators_mark(store: Store):
    """Backtests and `tradebot run --replay`: the mark read over REST is the simulator's
    mark, the very one its quote carries (premiumIndex "markPrice")."""
    clock = ManualClock(T0)
    paper = PaperExchange(store, clock,
                          SimConfig(spread={SYMBOL: Decimal("0.0002")}))
    await paper.start([SYMBOL], leverage=5)
    with pytest.raises(ExchangeError):
        await paper.mark_price(SYMBOL)                   # no price yet: the simulator's -2010
    assert paper.pushed_mark(SYMBOL, FRESH) is None and paper.pushed_book(SYMBOL, FRESH) is None
    paper.feed_candle(Candle(SYMBOL, T0, timedelta(minutes=1), Decimal("50000"),
                             Decimal("50050"), Decimal("49950"), Decimal("50020")))
    quote = paper.quote(SYMBOL, FRESH)
    assert quote is not None
    assert await paper.mark_price(SYMBOL) == paper.pushed_mark(SYMBOL, FRESH) == quote.mark \
        == Decimal("50020")
    assert paper.pushed_book(SYMBOL, FRESH) is quote.book
    assert paper.pushed_funding_rate(SYMBOL, FRESH) == quote.funding_rate
