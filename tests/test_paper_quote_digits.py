"""The quote kept for a tick's reads is the quote of the very mark the simulator holds: a
price equal in value but written with other digits (0.5 then 0.50) gets a quote of its own,
its mark and book carrying those digits, as one made anew."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from storage import Store
from trader.clock import ManualClock
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.exchange.sim_path import book_at
from trader.exchange.sim_rules import spread_for

T0 = datetime(2024, 1, 1, 7, 40, tzinfo=UTC)
SYMBOL = "DOGEUSDT"
AGE = timedelta(seconds=30)


def test_an_equal_price_with_other_digits_is_quoted_from_its_own_digits() -> None:
    store = Store.open(":memory:")
    clock = ManualClock(T0)
    paper = PaperExchange(store, clock, SimConfig(), persist_every=0, save_state=False)
    sim = paper.sim
    tick = sim.rules_for(SYMBOL).tick_size
    for text in ("0.5", "0.50", "0.500", "0.5"):
        price = D(text)
        sim.set_price(SYMBOL, price, clock.now())          # one moment: the same tick
        quote = paper.quote(SYMBOL, AGE)
        assert quote is not None and quote.mark is price
        book = book_at(SYMBOL, price, spread_for(SYMBOL, sim.config.spread), tick)
        assert (str(quote.bid), str(quote.ask)) == (str(book.bid), str(book.ask))
        assert paper.quote(SYMBOL, AGE) is quote           # the tick's other reads: kept
    store.close()
