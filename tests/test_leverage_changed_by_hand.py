"""A leverage changed by hand in the Binance app while the agent runs: Binance pushes
ACCOUNT_CONFIG_UPDATE with "ac": {"s": symbol, "l": leverage}
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Account-Configuration-Update-previous-Leverage-Update). The agent's next entry on
that symbol must be at the configured leverage again: risk sizing, the margin check and
the distance from the stop to the liquidation price all assume it (at 25x a LONG is
liquidated about 4 % below its entry; at 125x before a 1.5 % stop).

Found from outside: the real engine, python-binance and the user-data socket against the
fake Binance. The agent set the leverage once per process, before its first entry, and
remembered that it had; it did not ask for ACCOUNT_CONFIG_UPDATE, so a /long after the
change opened at the hand-set 25x."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from tests.chaos.market import Market
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented
from tests.test_binance_protection import STREAMS
from tests.test_first_command_after_boot import Agent, booted, catch_up, market_up_to_now
from trader import breaker_rules
from trader.commands import CommandKind
from trader.exchange.base import AssetModeChanged, LeverageChanged
from trader.exchange.binance_event_codec import update_from_config_event

SYMBOL = "BTCUSDT"


def test_the_documented_event_reads_as_the_symbols_new_leverage_and_the_other_as_the_mode():
    changed = update_from_config_event(documented("event_account_config_update_leverage").fresh())
    assert isinstance(changed, LeverageChanged)
    assert (changed.symbol, changed.leverage) == ("BTCUSDT", 25)
    assert changed.time.timestamp() * 1000 == 1611646737476            # T
    mode = update_from_config_event(documented("event_account_config_update_multi_assets").fresh())
    assert mode == AssetModeChanged(True, changed.time)      # "ai": {"j": true}, same T


def config_update(symbol: str, leverage: int) -> dict:
    """The page's example, for `symbol` and `leverage`."""
    now = int(time.time() * 1000)
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now - 3,
            "ac": {"s": symbol, "l": leverage}}


async def next_second() -> None:
    """A manual entry's key is its second."""
    second = int(time.time())
    while int(time.time()) == second:
        await asyncio.sleep(0.02)


@asynccontextmanager
async def after_a_round_trip(tmp_path) -> AsyncIterator[tuple[FakeBinance, Market, Agent]]:
    """The agent booted with its user-data stream, after a /long at the configured leverage
    and its /close (no cooldown left), the close taken in."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        market = await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            assert fake.sim.position(SYMBOL).leverage == engine.settings.leverage
            assert (await agent.run(CommandKind.CLOSE)).ok
            engine.guards.apply(breaker_rules.unlock, SYMBOL)     # no cooldown after a /close
            await engine.tick()                     # takes in what the close pushed
            yield fake, market, agent


async def long_again_at_the_configured_leverage(fake: FakeBinance, market: Market,
                                                agent: Agent) -> None:
    """A /long in a later second (a manual entry's key is its second) opens at the
    configured leverage."""
    await next_second()
    await catch_up(market)
    await agent.poll_feed()
    assert (await agent.run(CommandKind.LONG)).ok
    configured = agent.engine.settings.leverage
    assert fake.sim.position(SYMBOL).leverage == configured
    assert agent.engine.positions[SYMBOL].leverage == configured


async def test_an_entry_after_a_leverage_changed_by_hand_is_at_the_configured_leverage(
        tmp_path):
    async with after_a_round_trip(tmp_path) as (fake, market, agent):
        engine = agent.engine
        fake.sim.set_leverage(SYMBOL, 25)               # by hand, in the app
        await fake.hub.send_user([config_update(SYMBOL, 25)])
        await eventually(lambda: len(engine.exchange.streams.events) > 0, 2.0)
        await engine.tick()                               # the event is taken in
        await long_again_at_the_configured_leverage(fake, market, agent)


async def test_a_leverage_change_on_another_symbol_or_to_the_configured_one_sends_nothing(
        tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            fake.clear_request_log()
            await fake.hub.send_user([config_update("ETHUSDT", 20),
                                      config_update(SYMBOL, engine.settings.leverage)])
            await asyncio.sleep(0.3)
            await engine.tick()
            assert fake.requests("POST /fapi/v1/leverage") == []
