"""The balance is not read again on the timer while the exchange vouches that a read would
answer the balance held (trader/balance_keeper.py; the paper exchange's flat account: a
replay's timer is due on every candle): exactly when the read would answer that very
balance; with a position open, after a close, with an event, and on an exchange that
cannot vouch (Binance), it is read as before."""

from contextlib import suppress
from datetime import timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.test_balance_after_close import balance_reads
from tests.test_idle_path_shortcuts import BTC, FIVE_MINUTES, T0, act, actions, balance_from_scratch
from trader.exchange.base import ExchangeError
from trader.exchange.binance import BinanceExchange
from trader.exchange.sim import SimConfig, Simulator

MINUTE = timedelta(minutes=1, seconds=1)     # past the 60 s timer (streaming)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(actions, st.booleans()), min_size=1, max_size=30))
def test_the_simulator_vouches_only_for_what_a_read_answers(script: list[tuple]) -> None:  # type: ignore[type-arg]
    sim = Simulator(SimConfig(balance=D("2000")))
    sim.set_price(BTC, D("70000"), T0)
    held, now = sim.balance(), T0
    for n, (action, read) in enumerate(script):
        with suppress(ExchangeError):   # refused (margin, leverage): nothing changed
            act(sim, action, n, now)
        if sim.balance_current(held):
            assert repr(balance_from_scratch(sim)) == repr(held)
            assert sim.balance() is held
        if read:
            held = sim.balance()
        now += FIVE_MINUTES


async def test_a_flat_account_is_not_read_again_on_the_timer(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    reads = balance_reads(world)
    held = world.engine.balance
    for _ in range(3):
        world.clock.set(world.clock.now() + MINUTE)
        await world.engine.tick()
    assert reads == []
    assert world.engine.balance is held and await world.paper.balance() is held
    assert world.engine.balance_at == world.clock.now()      # as good as a read (/balance)


async def test_an_open_position_is_read_on_the_timer_and_after_its_close(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert SYMBOL in world.engine.positions
    reads = balance_reads(world)
    await world.step(world.last_close + 200)       # the mark moved: the equity too
    assert reads, "the balance of an open position was not read on the timer"
    assert world.engine.balance == await world.paper.balance()
    stop = world.engine.positions[SYMBOL].stop.trigger_price
    world.paper.stream_live = False             # found over REST: no account event
    world.paper.drain_events = list             # type: ignore[method-assign]
    await world.step(stop - 50, low=stop - 100)
    assert SYMBOL not in world.engine.positions
    reads.clear()
    world.clock.set(world.clock.now() + timedelta(seconds=2))    # well inside the timer
    await world.engine.tick()
    assert reads, "the balance from before the close was kept"


async def test_an_exchange_that_cannot_vouch_is_read_on_the_timer(tmp_path):
    assert not hasattr(BinanceExchange, "balance_current")
    world = await make_world(tmp_path)
    await world.warm_up()
    world.engine.balance_keeper.vouches = None          # as on Binance
    reads = balance_reads(world)
    world.clock.set(world.clock.now() + MINUTE)
    await world.engine.tick()
    assert len(reads) == 1
