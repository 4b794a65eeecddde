"""A listenKey that expires while the user-data socket is down: no listenKeyExpired event
can reach the agent, and no silence check runs without a socket. Every reconnect with the
old key is refused at the handshake (the fake answers HTTP 400 for a key it does not know;
Binance's docs do not say what a dead key's handshake gets), so the stream stayed down,
fills came only by REST polling, until the 30-minute keepalive found the key gone.

Found from outside: `tradebot run` against the fake Binance, drop_streams then
expire_listen_key: "stream=user-data handshake refused status=400" every backoff for
minutes, never a new key. A refused user-data handshake now checks the key (one PUT,
as the silence check does) and makes a new one when Binance forgot it."""

import pytest

from tests.fakes.binance_harness import eventually, market, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_streams import FAST, collect
from trader.domain import Side
from trader.exchange.base import OrderUpdate


@pytest.mark.parametrize("event", [False, True], ids=["silent", "event-while-down"])
async def test_a_key_that_expired_while_the_socket_was_down_is_replaced_on_reconnect(event):
    async with FakeBinance() as fake, \
            started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: exchange.streaming)
        user = exchange.streams.user
        old_key = user.listen_key
        await fake.drop_streams(refuse_for=0.3)
        assert await eventually(lambda: not exchange.streaming)
        await fake.expire_listen_key(silent=not event)   # nobody connected hears the event

        assert await eventually(lambda: exchange.streaming, timeout=5.0), \
            "the user-data stream never came back"
        assert user.listen_key not in (None, old_key) and user.listen_keys_created == 2
        await exchange.place(market(Side.BUY, "0.01"))
        await collect(exchange, lambda evs: any(isinstance(e, OrderUpdate) for e in evs))
