"""The first commands after start-up: `tradebot run` runs the commands queued while it booted
(and while it read the pinned state, up to 15 s) before its first tick, and answers
/balance and /status from its view at once. So the boot itself reads the balance: a /long
sent as soon as the agent says it started must enter, not answer "the balance was not read
from the exchange yet; try again in a minute", and /balance must show the wallet.

Found from outside: the real agent against the fake Binance and Telegram, /long confirmed
right after "boot reconciliation done". Here the same order of steps as trader/agent_loops.py's live
loop (boot, feed poll, commands, then the first tick), on the Binance adapter."""

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.chaos.market import Market
from tests.fakes.binance_harness import eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from trader import breaker_rules
from trader.alerter import Alerter
from trader.clock import Clock, ManualClock, SystemClock
from trader.commands import Command, CommandKind, CommandResult
from trader.control import Controller
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_streams import StreamOptions
from trader.market.live import ExchangeFeed
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"


@dataclass
class Agent:
    controller: Controller
    feed: ExchangeFeed

    @property
    def engine(self) -> Engine:
        return self.controller.engine

    async def poll_feed(self) -> None:
        """The live loop's feed poll (trader/agent_loops.py): the candles closed since the last."""
        for candle in await self.feed.poll(self.engine.clock.now()):
            self.engine.on_candle(candle)

    async def run(self, kind: CommandKind, symbol: str = SYMBOL) -> CommandResult:
        message_id = len(self.controller.results) + 1     # each command a message of its own
        command = Command(kind, f"tg:1:{message_id}", datetime.now(UTC), symbol=symbol,
                          source="telegram")
        if not kind.mutating:
            return await self.controller.execute(command)
        return await self.controller.run(command)   # what process() does with a queued one


@asynccontextmanager
async def booted(fake: FakeBinance, tmp_path: Path, clock: Clock | None = None,
                 stream_options: StreamOptions | None = None, **env: Any
                 ) -> AsyncIterator[Agent]:
    """An agent as `tradebot run` has it after boot and its first feed poll, before its
    first tick. `clock`: the engine's (the exchange adapter keeps the system's).
    `stream_options`: the user-data stream on (up before this returns); off without.
    `env`: settings, as `settings_for` takes them."""
    settings = settings_for(fake, db_path=tmp_path / "t.db", **env)
    streams = stream_options is not None
    exchange = BinanceExchange(settings, SystemClock(), streams=streams,
                               stream_options=stream_options)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, clock or SystemClock(), Alerter(store))
    try:
        await boot(engine)
        if streams:
            assert await eventually(lambda: exchange.streaming, timeout=5.0)
        agent = Agent(Controller(engine), ExchangeFeed(exchange, engine.symbols,
                                                       settings.interval))
        await agent.poll_feed()
        yield agent
    finally:
        await exchange.close()
        store.close()


# The user-data stream's timings for tests that watch it live: a dropped socket is back
# within a fraction of a second, a silent one found in 5 s.
FAST_STREAMS = StreamOptions(heartbeat_seconds=5.0, backoff_initial=0.05, backoff_max=0.2)


@asynccontextmanager
async def streaming_agent(tmp_path: Path, price: Decimal = Decimal("50000"),
                          clock_skew_ms: int = 0, **env: Any
                          ) -> AsyncIterator[tuple[FakeBinance, Agent]]:
    """A fake Binance quoting SYMBOL at `price` with its 1m candles up to now, its clock
    `clock_skew_ms` off the host's, and an agent booted on it (`booted`) with its user-data
    stream up (FAST_STREAMS); `env`: settings."""
    async with FakeBinance(prices={SYMBOL: price}) as fake:
        fake.set_clock_skew(clock_skew_ms)
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS, **env) as agent:
            yield fake, agent


async def market_up_to_now(fake: FakeBinance) -> Market:
    """Closed 1m candles up to now (no gap, so no stale data)."""
    market = Market(fake, random.Random(3), SYMBOL, history=timedelta(minutes=60))
    await catch_up(market)
    return market


async def catch_up(market: Market) -> None:
    while market.seconds_until_closed() == 0:
        await market.push()


async def test_balance_right_after_boot_shows_the_wallet(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            booted(fake, tmp_path) as agent:
        result = await agent.run(CommandKind.BALANCE)
        assert result.balance is not None, result.lines
        assert result.balance.wallet > 0


async def test_long_right_after_boot_enters_with_its_stop(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            result = await agent.run(CommandKind.LONG)
            assert result.ok, result.lines
            assert agent.engine.positions[SYMBOL].state is PositionState.PROTECTED
            assert fake.sim.position(SYMBOL).quantity > 0


async def test_long_after_a_close_seen_over_rest_plans_with_the_balance_as_it_is_now(tmp_path):
    """The stream was down when the stop filled: the close is found over REST, with no
    account event to say the margin is free again. A /long just after must not be refused
    for "insufficient margin" counted from the balance read while the last position held
    half the account (a manual entry reads the balance as fresh as its view)."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        market = await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            first_second = int(time.time())
            await engine.balance_keeper.refresh()    # read with the position open (a tick when due)
            await fake.close_position_by_hand(SYMBOL)
            await engine.tick()                       # the close, found over REST
            assert SYMBOL not in engine.positions
            engine.guards.apply(breaker_rules.unlock, SYMBOL)  # no cooldown after a close by hand
            while int(time.time()) == first_second:   # a manual entry's key is its second
                await asyncio.sleep(0.02)
            await catch_up(market)
            await agent.poll_feed()
            result = await agent.run(CommandKind.LONG)
            assert result.ok and fake.sim.position(SYMBOL).quantity > 0, result.lines


async def test_a_second_long_in_the_same_second_after_a_close_enters(tmp_path):
    """A manual entry's key is "m" + its second: /long, a close and /long again within one
    second (a script, or a quick thumb) found the first entry's id taken and answered "the
    entry was not sent: ... an order with its id exists already". The confirmation is what
    makes a /long happen once; its key moves on to the next free second."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        frozen = ManualClock(datetime.now(UTC))           # every step in the same second
        async with booted(fake, tmp_path, frozen) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            first = engine.positions[SYMBOL].key
            await fake.close_position_by_hand(SYMBOL)
            await engine.tick()
            assert SYMBOL not in engine.positions
            engine.guards.apply(breaker_rules.unlock, SYMBOL)
            result = await agent.run(CommandKind.LONG)
            assert result.ok and fake.sim.position(SYMBOL).quantity > 0, result.lines
            assert engine.positions[SYMBOL].key != first
            entries = [c for c in fake.accepted_orders if c.endswith("-en1")]
            assert len(entries) == len(set(entries)) == 2


async def test_a_long_the_exchange_refuses_says_why(tmp_path):
    """"the LONG entry was refused by the exchange; nothing is open (/logs shows why)": the
    phone is where the operator is, so the reply gives Binance's answer itself."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            fake.inject_fault("POST /fapi/v1/order", code=-2019, http_status=400)
            result = await agent.run(CommandKind.LONG)
            assert not result.ok
            assert "-2019" in result.lines[0], result.lines
            assert "margin is insufficient" in result.lines[0].lower(), result.lines
            assert fake.sim.position(SYMBOL).quantity == 0
