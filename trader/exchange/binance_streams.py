"""Binance USD-M websockets: the user-data stream and the kline stream, with REST fallback.

Both streams run on aiohttp's websocket client, not python-binance's socket manager:
the library builds the futures user stream as `<root>private/ws?listenKey=...` (we want
`<root>ws/<listenKey>`), retries inside its own read loop with a fixed budget and logs
failures instead of raising them, so "the stream is down" could not be observed and
turned into `streaming = False`. Here each stream is one loop:

    connect -> mark up -> read until the socket closes, a ping goes unanswered
    (heartbeat) or the stream is silent too long (klines: reconnect; user data: check
    the listenKey) -> mark down -> wait (tenacity's capped exponential backoff with
    jitter, on the injected clock) -> connect again

Subscriptions live in the URL (`/ws/<listenKey>`, `/stream?streams=a/b`), so a fresh
connection is the only place they are (re)made. Going down logs "stream down, polling
REST" once per outage, coming back logs recovery once and fires the `on_reconnect`
callbacks. One bad message, or one failed iteration of a loop, is logged with its
traceback, counted and skipped: the stream keeps reading. Decoded events go to bounded
queues that drop the oldest entry and log the overflow.

The user-data stream and its listenKey (creation, keepalive, expiry, the silence check)
are in binance_user_stream.py; the reconnecting loop both share is websocket_stream.py.

Waits (backoff, keepalive) run on the injected clock: give the streams a real-time
clock (SystemClock, or a ManualClock with speed > 0), never an instant one.
"""

from datetime import datetime
from typing import Any

import aiohttp
from loguru import logger

from trader.clock import Clock
from trader.domain import Candle
from trader.exchange import binance_codec as codec
from trader.exchange.base import ExchangeEvent
from trader.exchange.binance_user_stream import ListenKeyApi, UserDataStream
from trader.exchange.websocket_stream import (
    BoundedQueue,
    ReconnectCallback,
    ReconnectingStream,
    StreamOptions,
)

__all__ = ["BinanceStreams", "BoundedQueue", "KlineStream", "StreamOptions", "UserDataStream"]


class KlineStream(ReconnectingStream):
    """`<base>stream?streams=btcusdt@kline_1m/...`: closed candles -> the candle queue."""

    def __init__(self, base_url: str, symbols: list[str], interval: str,
                 session: aiohttp.ClientSession, clock: Clock, options: StreamOptions,
                 candles: BoundedQueue[Candle]) -> None:
        super().__init__("klines", session, clock, options)
        names = "/".join(f"{symbol.lower()}@kline_{interval}" for symbol in symbols)
        self.url = f"{base_url}stream?streams={names}"
        self.silence = options.silence_seconds
        self._candles = candles

    async def _url(self) -> str:
        return self.url

    async def _on_silence(self) -> str | None:
        logger.warning("stream={} silent for {}s, reconnecting", self.health.name, self.silence)
        return f"silent for {self.silence}s"

    def _on_message(self, payload: dict[str, Any]) -> None:
        data = payload.get("data", payload)
        if data.get("e") != "kline":
            return
        candle = codec.candle_from_stream(data["k"])
        if candle.closed:
            self._candles.push(candle)


class BinanceStreams:
    """Both streams, their websocket session and their bounded queues (no I/O until start).

        streams = BinanceStreams("wss://fstream.binance.com/", adapter, clock, StreamOptions())
        streams.on_reconnect.append(lambda: engine_needs_resync.set())
        streams.start(["BTCUSDT"], "1m")
        events = streams.events.drain(); candles = streams.candles.drain()

    `on_reconnect`: callables (no arguments) fired each time the user-data stream is up
    again after an outage (not on a first connection that succeeds at once). Events during
    the outage are lost to the stream, so a listener should make the engine refresh over
    REST (symbol rules, orders, positions). They run in the stream's task: quick,
    non-blocking; one that raises is logged and the stream goes on.
    `last_user_event_at`: when the last user-data message arrived (for /health).
    """

    def __init__(self, base_url: str, api: ListenKeyApi, clock: Clock,
                 options: StreamOptions) -> None:
        self._base_url, self._api, self._clock, self._options = base_url, api, clock, options
        self.events: BoundedQueue[ExchangeEvent] = BoundedQueue("user-data-events",
                                                                options.max_events)
        self.candles: BoundedQueue[Candle] = BoundedQueue("candles", options.max_candles)
        self.on_reconnect: list[ReconnectCallback] = []
        self.user: UserDataStream | None = None
        self.klines: KlineStream | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def user_live(self) -> bool:
        """True while user-data events can arrive (connected, key not known to be gone)."""
        return self.user is not None and self.user.live

    @property
    def klines_live(self) -> bool:
        return self.klines is not None and self.klines.live

    @property
    def last_user_event_at(self) -> datetime | None:
        """The injected clock's time of the last user-data message (None before the first)."""
        return self.user.health.last_message_at if self.user is not None else None

    def start(self, symbols: list[str], interval: str) -> None:
        if self._session is not None:
            logger.info("streams already running; start() again is a no-op")
            return
        options = self._options
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=options.connect_timeout, connect=options.connect_timeout))
        self.user = UserDataStream(self._base_url, self._api, self._session, self._clock,
                                   options, self.events, self.on_reconnect)
        self.klines = KlineStream(self._base_url, symbols, interval, self._session,
                                  self._clock, options, self.candles)
        self.user.start()
        self.klines.start()

    async def stop(self) -> None:
        for stream in (self.user, self.klines):
            if stream is not None:
                await stream.stop()
        if self._session is not None:
            await self._session.close()
