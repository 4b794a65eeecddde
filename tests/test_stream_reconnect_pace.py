"""How often the streams reconnect when a server misbehaves (found by h-review12).

- A server that drops every connection soon after accepting it: the three sockets used to
  reconnect about every second for as long as it lasted (~700 attempts in 5 minutes), since
  each successful handshake reset the backoff. Binance, USD-M "Websocket Market Streams"
  (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams):
  "IPs that are repeatedly disconnected may be banned". Now only a connection that lasted
  (StreamOptions.stable_seconds) resets it: the waits grow 1, 2, 4 ... 60 s.
- A server or proxy that accepts the TCP connection and never answers the HTTP upgrade held
  each stream for good (the session's timeouts bound the socket, not the upgrade's answer):
  StreamOptions.connect_timeout now bounds the whole handshake, then the stream retries.
"""

import asyncio

from tests.fakes.binance_harness import eventually, settings_for, started_exchange
from tests.fakes.binance_server import FakeBinance
from trader.exchange.websocket_stream import StreamOptions

DROPPING_FOR = 6.0


async def connections_while_dropping(options: StreamOptions) -> int:
    async with FakeBinance() as fake, \
            started_exchange(fake, streams=True, stream_options=options) as exchange:
        assert await eventually(lambda: exchange.streaming and exchange.streams.market_live
                                and exchange.streams.book_ticker_live, 5.0)
        await asyncio.sleep(1.0)             # each layout remembered as working
        before = fake.hub.connections_opened
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < DROPPING_FOR:    # each connection dropped within 0.3 s
            await fake.drop_streams()
            await asyncio.sleep(0.3)
        return fake.hub.connections_opened - before


async def test_sockets_dropped_soon_after_connecting_wait_longer_each_time():
    made = await connections_while_dropping(
        StreamOptions(heartbeat_seconds=5.0, backoff_initial=0.5, backoff_max=60.0))
    # 3 sockets waiting ~0.5, 1, 2, 4 s: about 4 attempts each in 6 s (+1 of slack each)
    assert made <= 15, f"{made} connections in {DROPPING_FOR:.0f} s: the backoff never grows"


async def test_connections_that_lasted_reconnect_at_once_each_time():
    """Negative: a connection that lasted resets the backoff, so a stream dropped now and
    then (Binance's 24-hour mark) reconnects after the first, short wait every time."""
    made = await connections_while_dropping(
        StreamOptions(heartbeat_seconds=5.0, backoff_initial=0.5, backoff_max=60.0,
                      stable_seconds=0.1))
    assert made >= 18, f"only {made} reconnections: lasting connections did not reset it"


async def test_an_upgrade_never_answered_is_given_up_and_retried():
    accepted: list[float] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(3600)
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with FakeBinance() as fake:
            settings = settings_for(fake, binance_futures_ws_url=f"ws://127.0.0.1:{port}/")
            options = StreamOptions(heartbeat_seconds=5.0, connect_timeout=0.5,
                                    backoff_initial=0.1, backoff_max=0.5)
            async with started_exchange(fake, settings=settings, streams=True,
                                        stream_options=options):
                # 3 streams, each giving up after 0.5 s and trying again
                assert await eventually(lambda: len(accepted) >= 6, 8.0), (
                    f"{len(accepted)} attempts: each stream still waits for the upgrade")
    finally:
        server.close()
