"""The user-data stream's silence check inside an IP ban keeps a working stream up.

Binance bans an IP "from 2 minutes to 3 days" (USD-M General Info, LIMITS). A listenKey is
valid 60 minutes after its last PUT (Start User Data Stream: "The stream will close after
60 minutes unless a keepalive is sent"), and a key that expires in a connection is
announced (Event-User-Data-Stream-Expired: pushed "when a valid listenKey in connection got
expired"). Found by review12 (test_rv12_ban_outlasts_silence_check): after
`user_silence_seconds` without an event (180 s live) the check's PUT was refused locally by
the gate (CircuitOpen), `_on_silence` took "unverified" for "gone", forgot the key and
closed the healthy socket; the POST for a new one was refused too, so the stream stayed
down for the rest of the ban and a stop that filled then was heard only when it ended
(/status showed the LONG PROTECTED, no CLOSE). ARCHITECTURE.md: "a stop's fill must not
wait out an IP ban". Now only a definite "gone" (-1125, another key extended,
listenKeyExpired) closes the socket; a PUT not sent or not answered leaves it, and the next
silence checks again.
"""

import asyncio
from dataclasses import replace
from decimal import Decimal

import aiohttp
import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, booted, market_up_to_now
from tests.test_stop_fill_during_ban import alerts, banned, long_open, ticks
from trader.clock import SystemClock
from trader.domain import CloseReason
from trader.exchange.base import CircuitOpen, ExchangeError, ExchangeEvent, UnknownOutcome
from trader.exchange.binance_user_stream import UserDataStream
from trader.exchange.websocket_stream import BoundedQueue, StreamOptions

QUIET_SECONDS = 0.5      # the silence check (180 s live)
QUIET = StreamOptions(heartbeat_seconds=5.0, backoff_initial=0.05, backoff_max=0.2,
                      user_silence_seconds=QUIET_SECONDS)
PUT_KEY = "PUT /fapi/v1/listenKey"


async def test_a_stop_filled_in_a_ban_longer_than_the_silence_check_is_heard(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=QUIET) as agent:
            engine = agent.engine
            entry = await long_open(agent)
            user = engine.exchange.streams.user
            key, connections = user.listen_key, user.health.connections
            sent = await banned(agent, fake, 120)
            await asyncio.sleep(QUIET_SECONDS * 4)      # a quiet account: several checks
            assert engine.exchange.streaming and user.listen_key == key, (
                "the silence check's PUT was refused locally (circuit open) and the stream "
                f"was closed on a valid key: up={engine.exchange.streaming}")
            assert (user.health.connections, user.health.outages) == (connections, 0)
            await fake.move_price(SYMBOL, entry * Decimal("0.985"))    # the stop fills
            assert fake.sim.position(SYMBOL).quantity == 0
            await ticks(engine, 5)
            closed = engine.store.closed_positions()
            assert [c.close_reason for c in closed] == [CloseReason.STOP_LOSS], (
                f"stop filled during the ban, not heard: closed={closed}, "
                f"open={list(engine.positions)}")
            [close] = alerts(engine, "CLOSE")
            assert "(STOP_LOSS) at " in close, close
            assert len(fake.request_log) == sent, fake.request_log[sent:]
            assert fake.retry_after_watch.violations == []


async def test_after_the_ban_the_silence_check_puts_the_key_on_the_same_socket(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=QUIET) as agent:
            engine = agent.engine
            user = engine.exchange.streams.user
            key, connections = user.listen_key, user.health.connections
            await banned(agent, fake, 1.5)
            await asyncio.sleep(QUIET_SECONDS * 2)
            assert fake.requests(PUT_KEY) == []                      # refused, not sent
            assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
            assert await eventually(lambda: fake.requests(PUT_KEY), timeout=QUIET_SECONDS * 4)
            assert user.listen_key == key == fake.endpoints.listen_key
            assert (user.health.connections, user.listen_keys_created) == (connections, 1)
            assert engine.exchange.streaming
            assert fake.retry_after_watch.violations == []


async def test_a_key_binance_forgot_is_still_replaced_at_the_silence_check(tmp_path):
    """The negative: a -1125 answer is a definite "gone": a new key, a reconnect at once."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=QUIET) as agent:
            engine = agent.engine
            user = engine.exchange.streams.user
            old_key = user.listen_key
            await fake.expire_listen_key(silent=True)   # no event; PUT answers -1125
            assert await eventually(lambda: user.health.outages == 1, timeout=QUIET_SECONDS * 6)
            assert await eventually(lambda: engine.exchange.streaming, timeout=3.0)
            assert user.listen_key not in (None, old_key) and user.listen_keys_created == 2
            assert fake.requests(PUT_KEY)


class OneAnswer:
    """A ListenKeyApi whose PUT gives one answer (raises it, when an exception)."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    async def create_listen_key(self) -> str:
        raise AssertionError("the silence check does not create keys")

    async def keep_alive_listen_key(self, listen_key: str) -> str | None:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer if isinstance(self.answer, str) else None


@pytest.mark.parametrize(("answer", "closes"), [
    (CircuitOpen(110.0, "IP banned (HTTP 418, code -1003)", http_status=418), False),
    (UnknownOutcome("timeout"), False),
    (ExchangeError(-1001, "Internal error; unable to process your request.", 503), False),
    ("key-1", False),                                            # extended: alive
    (ExchangeError(-1125, "This listenKey does not exist."), True),
    ("key-2", True),                                             # another key extended
])
async def test_only_a_definite_gone_closes_the_socket_at_a_silence(answer, closes):
    async with aiohttp.ClientSession() as session:
        events: BoundedQueue[ExchangeEvent] = BoundedQueue("events", 10)
        stream = UserDataStream("ws://unused/", OneAnswer(answer), session, SystemClock(),
                                replace(QUIET, user_silence_seconds=180.0), events)
        stream.listen_key = "key-1"
        stream.health.up = True
        reason = await stream._on_silence()
        assert (reason is not None) is closes, reason
        assert stream.listen_key == (None if closes else "key-1")
        assert stream.health.up is not closes
