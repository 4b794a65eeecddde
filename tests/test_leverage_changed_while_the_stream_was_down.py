"""A leverage changed by hand while the user-data stream was down (its ACCOUNT_CONFIG_UPDATE,
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Account-Configuration-Update-previous-Leverage-Update, went to no socket) is not
missed until a restart: after the stream comes back (a reconnect, or a new listenKey after
the old one expired: .../user-data-streams/Event-User-Data-Stream-Expired), the next entry
sets the configured leverage again, as after the event itself
(tests/test_leverage_changed_by_hand.py).

Before: the agent remembered it had set the leverage once and trusted the stream to say
otherwise; a /long after the gap opened at the hand-set 25x."""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import STREAMS
from tests.test_first_command_after_boot import booted, catch_up, market_up_to_now
from tests.test_leverage_changed_by_hand import next_second
from trader import guards
from trader.commands import CommandKind

SYMBOL = "BTCUSDT"


@pytest.mark.parametrize("gap", ["reconnect", "new-listen-key"])
async def test_an_entry_after_a_stream_gap_sets_the_configured_leverage_again(tmp_path, gap):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        market = await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            configured = engine.settings.leverage
            assert (await agent.run(CommandKind.LONG)).ok
            assert (await agent.run(CommandKind.CLOSE)).ok
            engine.guards.apply(guards.unlock, SYMBOL)     # no cooldown after a /close
            await engine.tick()

            exchange, reconnects = engine.exchange, []
            exchange.on_stream_reconnect(lambda: reconnects.append(1))
            if gap == "reconnect":
                await fake.drop_streams(refuse_for=1.0)
            else:
                await fake.expire_listen_key(close_socket=True)
            fake.sim.set_leverage(SYMBOL, 25)        # by hand, while no socket listens
            assert await eventually(lambda: bool(reconnects) and exchange.streaming, 10.0)
            await engine.tick()

            await next_second()
            await catch_up(market)
            await agent.poll_feed()
            fake.clear_request_log()
            assert (await agent.run(CommandKind.LONG)).ok
            assert fake.requests("POST /fapi/v1/leverage"), "the leverage was not set again"
            assert fake.sim.position(SYMBOL).leverage == configured
            assert engine.positions[SYMBOL].leverage == configured
