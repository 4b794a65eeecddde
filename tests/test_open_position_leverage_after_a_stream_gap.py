"""A leverage changed by hand on an OPEN position while the user-data stream was down (its
ACCOUNT_CONFIG_UPDATE, https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Account-Configuration-Update-previous-Leverage-Update, went to no
socket) is read again once the stream is back: GET /fapi/v1/symbolConfig
(https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/
Symbol-Config; positionRisk v3 has no leverage field). /status shows the leverage the
position has on the account (at 25x a LONG is liquidated about 4 % below its entry, not 20 %
as at 5x), and the next entry is at the configured leverage again.

Before: the adapter kept the leverage it had set or heard of, /status showed the position's
5x for good."""

import asyncio
from collections.abc import Callable

import pytest

from tests.fakes.binance_harness import eventually
from tests.test_leverage_changed_by_hand import (
    after_a_round_trip,
    config_update,
    long_again_at_the_configured_leverage,
)
from trader import breaker_rules
from trader.commands import CommandKind
from trader.engine import Engine

SYMBOL = "BTCUSDT"
BY_HAND = 25


async def ticked_until(engine: Engine, condition: Callable[[], bool], timeout: float) -> bool:
    """Tick until `condition` holds after a tick (the event reached the socket and was
    taken in), at most `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await engine.tick()
        if condition():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("gap", ["reconnect", "new-listen-key"])
async def test_status_and_the_next_entry_after_a_leverage_changed_by_hand_during_a_gap(
        tmp_path, gap):
    async with after_a_round_trip(tmp_path) as (fake, market, agent):
        engine = agent.engine
        await long_again_at_the_configured_leverage(fake, market, agent)   # open again
        exchange, reconnects = engine.exchange, []
        exchange.on_stream_reconnect(lambda: reconnects.append(1))
        if gap == "reconnect":
            await fake.drop_streams(refuse_for=1.0)
        else:
            await fake.expire_listen_key(close_socket=True)
        fake.sim.set_leverage(SYMBOL, BY_HAND)      # by hand, on the open position
        assert await eventually(lambda: bool(reconnects) and exchange.streaming, 10.0)
        await engine.tick()

        status = await agent.run(CommandKind.STATUS)
        assert status.status is not None
        assert [p.leverage for p in status.status.positions] == [BY_HAND]
        assert fake.requests("GET /fapi/v1/symbolConfig"), "the leverage was not read again"

        assert (await agent.run(CommandKind.CLOSE)).ok
        engine.guards.apply(breaker_rules.unlock, SYMBOL)     # no cooldown after a /close
        await engine.tick()
        fake.clear_request_log()
        await long_again_at_the_configured_leverage(fake, market, agent)
        assert fake.requests("POST /fapi/v1/leverage"), "the leverage was not set again"


async def test_status_follows_a_leverage_changed_by_hand_on_an_open_position(tmp_path):
    """With the stream up, the event itself: /status follows it at the next tick, though
    no position update and no REST read come with it."""
    async with after_a_round_trip(tmp_path) as (fake, market, agent):
        engine = agent.engine
        await long_again_at_the_configured_leverage(fake, market, agent)   # open again
        fake.sim.set_leverage(SYMBOL, BY_HAND)               # by hand, in the app
        await fake.hub.send_user([config_update(SYMBOL, BY_HAND)])
        held = engine.tracker.position
        assert await ticked_until(engine, lambda: held(SYMBOL).leverage == BY_HAND, 3.0)

        status = await agent.run(CommandKind.STATUS)
        assert status.status is not None
        assert [p.leverage for p in status.status.positions] == [BY_HAND]
