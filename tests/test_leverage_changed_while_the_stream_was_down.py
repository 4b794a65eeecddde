"""A leverage changed by hand while the user-data stream was down (its ACCOUNT_CONFIG_UPDATE,
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Account-Configuration-Update-previous-Leverage-Update, went to no socket) is not
missed until a restart: after the stream comes back (a reconnect, or a new listenKey after
the old one expired: .../user-data-streams/Event-User-Data-Stream-Expired), the next entry
sets the configured leverage again, as after the event itself
(tests/test_leverage_changed_by_hand.py).

Before: the agent remembered it had set the leverage once and trusted the stream to say
otherwise; a /long after the gap opened at the hand-set 25x."""

import pytest

from tests.fakes.binance_harness import eventually
from tests.test_leverage_changed_by_hand import (
    after_a_round_trip,
    long_again_at_the_configured_leverage,
)

SYMBOL = "BTCUSDT"


@pytest.mark.parametrize("gap", ["reconnect", "new-listen-key"])
async def test_an_entry_after_a_stream_gap_sets_the_configured_leverage_again(tmp_path, gap):
    async with after_a_round_trip(tmp_path) as (fake, market, agent):
        exchange, reconnects = agent.engine.exchange, []
        exchange.on_stream_reconnect(lambda: reconnects.append(1))
        if gap == "reconnect":
            await fake.drop_streams(refuse_for=1.0)
        else:
            await fake.expire_listen_key(close_socket=True)
        fake.sim.set_leverage(SYMBOL, 25)        # by hand, while no socket listens
        assert await eventually(lambda: bool(reconnects) and exchange.streaming, 10.0)
        await agent.engine.tick()
        fake.clear_request_log()
        await long_again_at_the_configured_leverage(fake, market, agent)
        assert fake.requests("POST /fapi/v1/leverage"), "the leverage was not set again"


async def test_an_entry_while_the_stream_is_still_down_sets_the_configured_leverage(tmp_path):
    """Nothing tells the agent of a change made while no socket listens: an entry made
    before the stream is back sets the leverage first (one request per entry, only then)."""
    async with after_a_round_trip(tmp_path) as (fake, market, agent):
        exchange = agent.engine.exchange
        await fake.drop_streams(refuse_for=60.0)
        assert await eventually(lambda: not exchange.streaming, 5.0)
        fake.sim.set_leverage(SYMBOL, 25)        # by hand, while no socket listens
        fake.clear_request_log()
        await long_again_at_the_configured_leverage(fake, market, agent)
        assert fake.requests("POST /fapi/v1/leverage"), "the leverage was not set again"
