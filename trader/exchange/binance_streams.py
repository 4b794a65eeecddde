"""Binance USD-M websockets: the user-data stream and two market streams, with REST fallback.

The market streams follow Binance's routed paths (https://developers.binance.com/docs/
derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice,
stream mode: "wss://fstream.binance.com/market/stream?streams=bnbusdt@aggTrade/
btcusdt@markPrice"; each stream on "the correct endpoint category"; a stream asked for on
another path is never delivered, and nothing says so):

    <root>market/stream?streams=btcusdt@kline_1m/btcusdt@markPrice@1s   (market)
    <root>public/stream?streams=btcusdt@bookTicker                     (book-ticker)

A server without routed paths (the layout of Binance's stream pages before the notice,
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-
streams: combined streams at "/stream?streams=<streamName1>/<streamName2>") refuses those;
each stream then falls back to the same streams on the unrouted path, keeps the path that
worked for its reconnects, and logs the choice once (websocket_paths.py has the rules):

    <root>stream?streams=btcusdt@kline_1m/btcusdt@markPrice@1s          (market)
    <root>stream?streams=btcusdt@bookTicker                            (book-ticker)

The two stay separate sockets there too, so that the market stream's silence check is not
fooled by book tops. On a routed server the unrouted path carries /public data only, so a
market stream that fell back by mistake goes silent: its silence check then tries the
routed path again.

Combined streams wrap each event as {"stream": "<name>", "data": <event>}. Closed candles go
to the candle queue; book tops and mark prices replace the previous ones in `LatestQuotes`
(binance_quotes.py), which `BinanceExchange.quote()` reads.

All streams run on aiohttp's websocket client, not python-binance's socket manager: the
library retries inside its own read loop with a fixed budget and logs failures instead of
raising them, so "the stream is down" could not be observed and turned into
`streaming = False`. Here each stream is one loop:

    connect -> mark up -> read until the socket closes, a ping goes unanswered (heartbeat)
    or the stream is silent too long (market: reconnect; user data: check the listenKey;
    book tops: never, a quiet book is no fault and its quote simply ages out) -> mark down
    -> wait (tenacity's capped exponential backoff with jitter, on the injected clock)
    -> connect again

Subscriptions live in the URL (`private/ws?listenKey=`, `<route>/stream?streams=a/b`), so a
fresh connection is the only place they are (re)made. Going down logs "stream down,
polling REST" once per outage, coming back logs recovery once and fires the `on_reconnect`
callbacks. One bad message, or one failed iteration of a loop, is logged with its
traceback, counted and skipped: the stream keeps reading. Decoded events go to bounded
queues that drop the oldest entry and log the overflow.

The user-data stream and its listenKey (creation, keepalive, expiry, the silence check)
are in binance_user_stream.py; the reconnecting loop all share is websocket_stream.py.

Waits (backoff, keepalive) run on the injected clock: give the streams a real-time
clock (SystemClock, or a ManualClock with speed > 0), never an instant one.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from loguru import logger

from trader.clock import Clock
from trader.domain import Candle
from trader.exchange import binance_event_codec as codec
from trader.exchange.base import ExchangeEvent
from trader.exchange.binance_quotes import LatestQuotes, book_from_stream, mark_from_stream
from trader.exchange.binance_user_stream import ListenKeyApi, UserDataStream
from trader.exchange.websocket_paths import LEGACY, ROUTED, PathChooser
from trader.exchange.websocket_stream import (
    BoundedQueue,
    ReconnectCallback,
    ReconnectingStream,
    StreamOptions,
)

__all__ = ["BinanceStreams", "BoundedQueue", "CombinedStream", "StreamOptions",
           "UserDataStream"]

EventHandler = Callable[[dict[str, Any]], None]
MARKET_ROUTE, PUBLIC_ROUTE = "market", "public"


class CombinedStream(ReconnectingStream):
    """`<root><route>/stream?streams=a/b`, or `<root>stream?streams=a/b` on a server
    without routed paths: each event, unwrapped from {"stream", "data"}, goes to the
    handler of its type ("e"); events of other types are ignored.

    `silence` (seconds, None: never): no message that long -> reconnect (on the routed
    path again if it was on the unrouted one).
    """

    def __init__(self, name: str, root: str, route: str, names: list[str],
                 handlers: dict[str, EventHandler], session: aiohttp.ClientSession,
                 clock: Clock, options: StreamOptions, silence: float | None) -> None:
        super().__init__(name, session, clock, options)
        self.silence, self._handlers = silence, handlers
        self._root, self._route, self._names = root, route, names
        self.paths = PathChooser(name, (ROUTED, LEGACY))

    @property
    def url(self) -> str:
        """The URL of the current layout (`paths.current`)."""
        unrouted = self.paths is not None and self.paths.current == LEGACY
        return combined_url(self._root, None if unrouted else self._route, self._names)

    async def _url(self) -> str:
        return self.url

    async def _on_silence(self) -> str | None:
        logger.warning("stream={} silent for {}s, reconnecting", self.health.name, self.silence)
        if self.paths is not None:
            self.paths.reprobe(f"silent for {self.silence}s")
        return f"silent for {self.silence}s"

    def _on_message(self, payload: dict[str, Any]) -> None:
        data = payload.get("data", payload)
        if not isinstance(data, dict):
            raise TypeError(f"data is a {type(data).__name__}, not a JSON object")
        handler = self._handlers.get(data.get("e", ""))
        if handler is not None:
            handler(data)


def combined_url(root: str, route: str | None, names: list[str]) -> str:
    """The stream-mode URL of `names` on Binance's routed path `route` ("market", "public"),
    or on the unrouted path when `route` is None."""
    path = "stream" if route is None else f"{route}/stream"
    return f"{root}{path}?streams={'/'.join(names)}"


class BinanceStreams:
    """The three streams, their websocket session, their queues and the latest quotes (no
    I/O until start).

        streams = BinanceStreams("wss://fstream.binance.com/", adapter, clock, StreamOptions())
        streams.on_reconnect.append(lambda: engine_needs_resync.set())
        streams.start(["BTCUSDT"], "1m")
        events = streams.events.drain(); candles = streams.candles.drain()
        quote = streams.quotes.quote("BTCUSDT", timedelta(seconds=5))   # or None

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
        self.quotes = LatestQuotes(clock)
        self.on_reconnect: list[ReconnectCallback] = []
        self.user: UserDataStream | None = None
        self.market: CombinedStream | None = None
        self.book_ticker: CombinedStream | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def user_live(self) -> bool:
        """True while user-data events can arrive (connected, key not known to be gone)."""
        return self.user is not None and self.user.live

    @property
    def market_live(self) -> bool:
        """True while the klines and mark prices socket is connected."""
        return self.market is not None and self.market.live

    @property
    def book_ticker_live(self) -> bool:
        """True while the book tops socket is connected."""
        return self.book_ticker is not None and self.book_ticker.live

    def states(self) -> dict[str, str]:
        """Each socket: "up", "down", or "polling" (never started: REST by design)."""
        return {name: "polling" if stream is None else "up" if stream.live else "down"
                for name, stream in (("user_data", self.user), ("market", self.market),
                                     ("book_ticker", self.book_ticker))}

    @property
    def last_user_event_at(self) -> datetime | None:
        """The injected clock's time of the last user-data message (None before the first)."""
        return self.user.health.last_message_at if self.user is not None else None

    def start(self, symbols: list[str], interval: str) -> None:
        if self._session is not None:
            logger.info("streams already running; start() again is a no-op")
            return
        options = self._options
        session = self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=options.connect_timeout, connect=options.connect_timeout))
        names = [symbol.lower() for symbol in symbols]
        self.user = UserDataStream(self._base_url, self._api, session, self._clock,
                                   options, self.events, self.on_reconnect)
        self.market = self._market_stream(session, names, interval)
        self.book_ticker = self._book_ticker_stream(session, names)
        for stream in (self.user, self.market, self.book_ticker):
            stream.start()

    def _market_stream(self, session: aiohttp.ClientSession, symbols: list[str],
                       interval: str) -> CombinedStream:
        """Klines (.../Kline-Candlestick-Streams) and the mark price every second
        (.../Mark-Price-Stream), both on the /market path."""
        names = [f"{s}@kline_{interval}" for s in symbols] + [f"{s}@markPrice@1s"
                                                              for s in symbols]
        handlers: dict[str, EventHandler] = {"kline": self._on_kline,
                                             "markPriceUpdate": self._on_mark_price}
        return CombinedStream("market", self._base_url, MARKET_ROUTE, names, handlers,
                              session, self._clock, self._options,
                              silence=self._options.silence_seconds)

    def _book_ticker_stream(self, session: aiohttp.ClientSession,
                            symbols: list[str]) -> CombinedStream:
        """Best bid and ask in real time (.../Individual-Symbol-Book-Ticker-Streams), on
        the /public path. A book may not change for minutes: no silence check."""
        return CombinedStream("book-ticker", self._base_url, PUBLIC_ROUTE,
                              [f"{s}@bookTicker" for s in symbols],
                              {"bookTicker": self._on_book_ticker}, session, self._clock,
                              self._options, silence=None)

    def _on_kline(self, data: dict[str, Any]) -> None:
        candle = codec.candle_from_stream(data.get("k"))
        if candle.closed:
            self.candles.push(candle)

    def _on_mark_price(self, data: dict[str, Any]) -> None:
        self.quotes.on_mark(mark_from_stream(data))

    def _on_book_ticker(self, data: dict[str, Any]) -> None:
        self.quotes.on_book(book_from_stream(data))

    async def stop(self) -> None:
        for stream in (self.user, self.market, self.book_ticker):
            if stream is not None:
                await stream.stop()
        if self._session is not None:
            await self._session.close()
