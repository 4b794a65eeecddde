"""The price of BNB a close values its fees with is one short read tried once
(trader/exchange/binance_market.py PRICE_READ_SECONDS): the close (its record, its CLOSE, the
tick with it) never waits longer for a price that only values a fee, and its record's
close time is when the close was seen, not the end of that read. A fee left unvalued is
valued later by the close read-back (tests/test_bnb_fee_valued_after_close.py). (review9
item 3: a hanging GET /fapi/v1/premiumIndex of BNBUSDT held the close 44 s: the client's
10 s timeout, four tries; the record said "held 44 s" for a trade of 0 s.)"""

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL as PAPER_SYMBOL
from tests.engine_world import long_signal, make_world
from tests.test_fees_paid_in_bnb import (
    BNB_USDT,
    agent_paying_fees,
    bnb_price_reads,
    charged_in_bnb,
    close_texts,
)
from tests.test_first_command_after_boot import SYMBOL
from tests.test_stop_fill_during_ban import long_open
from trader.domain import FeeInKind, Fill
from trader.engine import Engine
from trader.exchange.base import UnknownOutcome
from trader.exchange.binance_market import PRICE_READ_SECONDS


async def tick_on(engine: Engine) -> None:
    while True:
        await asyncio.sleep(0.2)
        await engine.tick()


async def closed_within(engine: Engine, seconds: float) -> float:
    """Ticks until the position's close is recorded; how long it took."""
    started = time.monotonic()
    ticking = asyncio.ensure_future(tick_on(engine))
    try:
        while not engine.store.closed_positions() and time.monotonic() - started < seconds:
            await asyncio.sleep(0.1)
    finally:
        ticking.cancel()
    return time.monotonic() - started


async def test_a_hanging_bnb_price_read_holds_the_close_one_short_read_at_most(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        fake.inject_fault("GET /fapi/v1/premiumIndex", delay=PRICE_READ_SECONDS * 5, times=10,
                          only={"symbol": "BNBUSDT"})
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))     # the stop fills
        took = await closed_within(engine, 60)
        [record] = engine.store.closed_positions()
        # the fill seen within a tick or two, then one read of at most PRICE_READ_SECONDS
        assert took < PRICE_READ_SECONDS + 3, f"the close waited {took:.1f} s: " \
            f"{close_texts(agent)}"
        assert len(bnb_price_reads(fake)) == 1                      # tried once
        assert record.fees_in_kind == (FeeInKind("BNB", charged_in_bnb(fake), None),)
        [close] = close_texts(agent)
        assert "could not read the price of BNB" in close, close
        assert "valued once it can be read" in close, close


async def test_a_price_answered_within_the_bound_values_the_fee_at_the_close(tmp_path):
    """Negative: a slow read that answers inside the bound values the fee as before."""
    async with agent_paying_fees(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        fake.inject_fault("GET /fapi/v1/premiumIndex", delay=PRICE_READ_SECONDS / 4,
                          only={"symbol": "BNBUSDT"})
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await closed_within(engine, 30)
        [record] = engine.store.closed_positions()
        bnb = charged_in_bnb(fake)
        assert record.fees_in_kind == (FeeInKind("BNB", bnb, (bnb * BNB_USDT).quantize(
            Decimal("0.00000001"))),)
        assert len(bnb_price_reads(fake)) == 1
        assert "could not read" not in close_texts(agent)[0]


async def test_the_close_time_is_when_the_close_was_seen_not_after_the_price_read(tmp_path):
    """The paper exchange and a manual clock: a price read that takes 40 s (the clock moved
    by it) leaves the record's close time, and its "held", at the close's moment."""
    world = await make_world(tmp_path)
    await world.warm_up()
    real_fills = world.paper.fills

    async def fills_in_bnb(symbol: str, since: object) -> list[Fill]:
        from dataclasses import replace
        return [replace(f, fee=(f.fee / 600).quantize(Decimal("0.00000001")), fee_asset="BNB")
                for f in await real_fills(symbol, since)]      # type: ignore[arg-type]

    async def slow_price(asset: str) -> Decimal:
        world.clock.advance(timedelta(seconds=40))
        raise UnknownOutcome("premium index: TimeoutError()")
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop = world.engine.positions[PAPER_SYMBOL].stop.trigger_price
    world.paper.fills = fills_in_bnb                 # type: ignore[method-assign]
    world.paper.asset_price = slow_price             # type: ignore[method-assign]
    candle = await world.step(stop - 50, low=stop - 100)
    [record] = world.store.closed_positions()
    assert record.closed_at is not None
    assert record.closed_at <= candle.close_time + timedelta(seconds=1), (
        record.closed_at, candle.close_time)
    assert [f.usdt for f in record.fees_in_kind] == [None]
