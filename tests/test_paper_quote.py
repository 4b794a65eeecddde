"""The paper exchange keeps its quote for the reads of one tick (mark, book, funding at one
moment and one price), never past a change: after any candle, clock move, price move,
funding-rate or schedule change or fill, `quote` equals a quote made anew from the
simulator."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import Store
from trader.clock import ManualClock
from trader.domain import BookTicker, Candle, OrderRequest, OrderRole, OrderType, Side
from trader.exchange.base import ExchangeError, Quote
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.exchange.sim_path import book_at
from trader.exchange.sim_rules import spread_for

T0 = datetime(2024, 1, 1, 7, 40, tzinfo=UTC)
BTC = "BTCUSDT"
AGE = timedelta(seconds=30)


def fresh_quote(paper: PaperExchange, now: datetime) -> Quote:
    sim = paper.sim
    mark = sim.mark_price(BTC)
    book = book_at(BTC, mark, spread_for(BTC, sim.config.spread), sim.rules_for(BTC).tick_size)
    return Quote(BTC, book.bid, book.ask, mark, sim.funding_rate(BTC, now), now)


def act(paper: PaperExchange, clock: ManualClock, action: tuple) -> None:
    kind, value = action
    sim, now = paper.sim, clock.now()
    price = sim.mark_price(BTC) * (1 + value) if isinstance(value, D) else None
    if kind == "candle" and price is not None:
        close = price.quantize(D("0.1"))
        paper.feed_candle(Candle(BTC, now, timedelta(minutes=5), close, close, close, close))
        clock.set(now + timedelta(minutes=5))
    elif kind == "clock":
        clock.advance(timedelta(seconds=value))
    elif kind == "price" and price is not None:
        paper.publish(sim.set_price(BTC, price.quantize(D("0.1")), now))
    elif kind == "rate":
        sim.set_funding_rate(BTC, value)
    elif kind == "schedule":
        sim.set_funding_schedule(BTC, [(T0 + timedelta(hours=hours), value)
                                       for hours in (-8, 0, 8, 16)])
    else:
        request = OrderRequest(BTC, value, OrderType.MARKET, D("0.01"), "m", OrderRole.ENTRY)
        try:
            events = sim.place(request, now)[1]
        except ExchangeError as error:   # margin refused: nothing changed
            assert error.code == -2019
            return
        paper.publish(events)


rates = st.sampled_from([D("0.0001"), D("0.00010"), D("-0.0003")])
moves = st.sampled_from([D(0), D("0.001"), D("-0.002")])
actions = st.one_of(
    st.tuples(st.just("candle"), moves),
    st.tuples(st.just("clock"), st.sampled_from([0, 1, 3600])),
    st.tuples(st.just("price"), moves),
    st.tuples(st.just("rate"), rates),
    st.tuples(st.just("schedule"), rates),
    st.tuples(st.just("order"), st.sampled_from([Side.BUY, Side.SELL])),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, max_size=25))
def test_the_quote_always_equals_one_made_anew(script: list[tuple]) -> None:
    store = Store.open(":memory:")
    clock = ManualClock(T0)
    paper = PaperExchange(store, clock, SimConfig(spread={BTC: D("0.0002")}),
                          persist_every=0, save_state=False)
    assert paper.quote(BTC, AGE) is None   # no price yet
    paper.feed_candle(Candle(BTC, T0 - timedelta(minutes=5), timedelta(minutes=5),
                             D("70000"), D("70000"), D("70000"), D("70000")))
    for action in script:
        act(paper, clock, action)
        for _ in range(2):   # the second read comes from what the first kept
            quote = paper.quote(BTC, AGE)
            assert quote == fresh_quote(paper, clock.now())
            # its book is the simulator's kept one (`top`): the book of its bid and ask
            assert quote is not None and quote.book == BookTicker(BTC, quote.bid, quote.ask)
    store.close()
