"""Binance USD-M websockets: the user-data stream and the kline stream, with REST fallback.

Both streams run on aiohttp's websocket client, not python-binance's socket manager:
the library builds the futures user stream as `<root>private/ws?listenKey=...` (we want
`<root>ws/<listenKey>`), retries inside its own read loop with a fixed budget and logs
failures instead of raising them, so "the stream is down" could not be observed and
turned into `streaming = False`. Here each stream is one loop:

    connect -> mark up -> read until the socket closes, a ping goes unanswered
    (heartbeat) or market data is silent for `silence_seconds` -> mark down -> wait
    (capped exponential backoff with jitter) -> connect again

Subscriptions live in the URL (`/ws/<listenKey>`, `/stream?streams=a/b`), so a fresh
connection is the only place they are (re)made. Going down logs "stream down, polling
REST" once per outage, coming back logs recovery once. The listenKey is created over
REST, kept alive every 30 minutes, and recreated when Binance reports it expired
(`listenKeyExpired` event, or -1125 on keepalive). Decoded events go to bounded queues
that drop the oldest entry and log the overflow.

Waits (backoff, keepalive) run on the injected clock: give the streams a real-time
clock (SystemClock, or a ManualClock with speed > 0), never an instant one.
"""

import asyncio
import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
from loguru import logger

from trader.clock import Clock
from trader.domain import Candle
from trader.exchange import binance_codec as codec
from trader.exchange.base import ExchangeError, ExchangeEvent, UnknownOutcome

LISTEN_KEY_GONE = -1125   # "This listenKey does not exist."
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Knobs for both streams (tests shrink them to fractions of a second)."""
    keepalive_seconds: float = 30 * 60.0
    heartbeat_seconds: float = 30.0     # websocket ping period; no pong -> connection dead
    silence_seconds: float = 90.0       # kline stream: no message this long -> reconnect
    connect_timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.2                 # +- fraction of each backoff delay
    max_events: int = 10_000
    max_candles: int = 2_000


class ListenKeyApi(Protocol):
    """The two REST calls the user-data stream needs (the adapter provides them)."""

    async def create_listen_key(self) -> str: ...

    async def keep_alive_listen_key(self, listen_key: str) -> None: ...


class Backoff:
    """Capped exponential backoff with jitter: initial, 2x, 4x ... up to `cap`."""

    def __init__(self, initial: float, cap: float, jitter: float,
                 rng: random.Random | None = None) -> None:
        self.initial, self.cap, self.jitter = initial, cap, jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        base = min(self.cap, self.initial * 2 ** self.attempt)
        self.attempt += 1
        return max(0.0, base * (1 + self._rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self.attempt = 0


class BoundedQueue(Generic[T]):
    """A deque that drops its oldest item when full (logged), plus a wake-up event."""

    def __init__(self, name: str, maxlen: int) -> None:
        self.name = name
        self.dropped = 0
        self._items: deque[T] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()

    def push(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning("queue={} full, dropping oldest dropped={} maxlen={}",
                               self.name, self.dropped, self._items.maxlen)
        self._items.append(item)
        self._ready.set()

    def drain(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)

    async def wait(self, timeout: float) -> bool:
        if self._items:
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return bool(self._items)
        return True

    async def next(self, timeout: float) -> T | None:
        """Pop the oldest item, waiting up to `timeout` seconds for one."""
        if not await self.wait(timeout):
            return None
        item = self._items.popleft()
        if not self._items:
            self._ready.clear()
        return item


class StreamHealth:
    """Up/down state of one stream; announces each outage and each recovery once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = False
        self.outages = 0
        self.connections = 0
        self.decode_errors = 0
        self._down_announced = False

    def mark_up(self) -> None:
        self.up = True
        self.connections += 1
        if self._down_announced:
            self._down_announced = False
            logger.info("stream={} recovered, streaming again", self.name)
        else:
            logger.info("stream={} connected", self.name)

    def mark_down(self, reason: str) -> None:
        self.up = False
        if not self._down_announced:
            self._down_announced = True
            self.outages += 1
            logger.warning("stream={} down, polling REST reason={}", self.name, reason)


class _ReconnectingStream:
    """The connect / read / back off loop shared by both streams."""

    silence: float | None = None

    def __init__(self, name: str, session: aiohttp.ClientSession, clock: Clock,
                 options: StreamOptions) -> None:
        self.health = StreamHealth(name)
        self._session, self._clock, self._options = session, clock, options
        self._backoff = Backoff(options.backoff_initial, options.backoff_max, options.jitter)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._skip_backoff = False
        self._restart_reason: str | None = None   # set by a message: reconnect now

    @property
    def live(self) -> bool:
        return self.health.up

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream-{self.health.name}")
        self._task.add_done_callback(self._crashed)

    def _crashed(self, task: "asyncio.Task[None]") -> None:
        """A loop that dies of an unexpected error must not look live: say so, loudly."""
        if task.cancelled() or task.exception() is None:
            return
        self.health.up = False
        logger.opt(exception=task.exception()).error(
            "stream={} task crashed, polling REST only until restart", self.health.name)

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.health.up = False

    async def _url(self) -> str:
        raise NotImplementedError

    def _on_message(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while not self._stopping:
            reason = await self._connect_and_read()
            if self._stopping:
                break
            self.health.mark_down(reason)
            if self._skip_backoff:
                self._skip_backoff = False
                continue
            await self._clock.sleep(self._backoff.next())

    async def _connect_and_read(self) -> str:
        """One connection's life; returns why it ended."""
        try:
            url = await self._url()
            async with self._session.ws_connect(
                    url, heartbeat=self._options.heartbeat_seconds) as ws:
                self._ws = ws
                self.health.mark_up()
                self._backoff.reset()
                return await self._read(ws)
        except (aiohttp.ClientError, TimeoutError, OSError, ExchangeError,
                UnknownOutcome) as exc:
            logger.warning("stream={} connect failed error={!r}", self.health.name, exc)
            return f"connect failed: {exc!r}"
        finally:
            self._ws = None

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        while True:
            try:
                message = await ws.receive(timeout=self.silence)
            except TimeoutError:
                logger.warning("stream={} silent for {}s, reconnecting",
                               self.health.name, self.silence)
                return f"silent for {self.silence}s"
            if message.type is aiohttp.WSMsgType.TEXT:
                self._decode(message.data)
                if self._restart_reason is not None:
                    reason, self._restart_reason = self._restart_reason, None
                    self._skip_backoff = True
                    return reason
                continue
            return f"socket {message.type.name.lower()} {ws.exception() or ''}".strip()

    def _decode(self, text: str) -> None:
        try:
            payload = json.loads(text)
        except ValueError:
            logger.warning("stream={} bad json dropped text={!r}", self.health.name, text[:200])
            return
        try:
            self._on_message(payload)
        except (KeyError, ValueError, TypeError) as exc:
            # One unreadable event must not take the stream down; the engine's REST
            # reconciliation still sees what it described. Counted for /status.
            self.health.decode_errors += 1
            logger.error("stream={} cannot decode event error={!r} payload={}",
                         self.health.name, exc, text[:500])

    async def _reconnect_now(self) -> None:
        """Close the current socket so the loop reconnects at once (no backoff)."""
        self._skip_backoff = True
        if self._ws is not None:
            await self._ws.close()


class UserDataStream(_ReconnectingStream):
    """`<base>ws/<listenKey>`: ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE -> events."""

    def __init__(self, base_url: str, api: ListenKeyApi, session: aiohttp.ClientSession,
                 clock: Clock, options: StreamOptions,
                 events: BoundedQueue[ExchangeEvent]) -> None:
        super().__init__("user-data", session, clock, options)
        self._base_url, self._api, self._events = base_url, api, events
        self.listen_key: str | None = None
        self.listen_keys_created = 0
        self._keepalive_task: asyncio.Task[None] | None = None
        self._decoders: dict[str, Callable[[dict[str, Any]], Any]] = {
            "ORDER_TRADE_UPDATE": codec.update_from_order_event,
            "ALGO_UPDATE": codec.update_from_algo_event,
            "ACCOUNT_UPDATE": codec.update_from_account_event,
        }

    def start(self) -> None:
        super().start()
        self._keepalive_task = asyncio.create_task(self._keep_alive(), name="listen-key-keepalive")
        self._keepalive_task.add_done_callback(self._crashed)

    async def stop(self) -> None:
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            await asyncio.gather(self._keepalive_task, return_exceptions=True)
        await super().stop()

    async def _url(self) -> str:
        if self.listen_key is None:
            self.listen_key = await self._api.create_listen_key()
            self.listen_keys_created += 1
            logger.info("stream=user-data listen key created count={}", self.listen_keys_created)
        return f"{self._base_url}ws/{self.listen_key}"

    def _on_message(self, payload: dict[str, Any]) -> None:
        kind = payload.get("e", "")
        if kind == "listenKeyExpired":
            logger.warning("stream=user-data listen key expired, recreating")
            self.listen_key = None
            self._restart_reason = "listen key expired"
            return
        decoder = self._decoders.get(kind)
        if decoder is None:
            logger.debug("stream=user-data ignored event={}", kind)
            return
        event = decoder(payload)
        if event is None:
            logger.info("stream=user-data skipped order of a type we never use payload={}",
                        payload)
            return
        self._events.push(event)

    async def _keep_alive(self) -> None:
        while not self._stopping:
            await self._clock.sleep(self._options.keepalive_seconds)
            key = self.listen_key
            if key is None:
                continue
            try:
                await self._api.keep_alive_listen_key(key)
                logger.debug("stream=user-data listen key kept alive")
            except ExchangeError as exc:
                if exc.code != LISTEN_KEY_GONE:
                    logger.warning("stream=user-data keepalive failed error={}", exc)
                    continue
                logger.warning("stream=user-data listen key gone (-1125), recreating")
                self.listen_key = None
                await self._reconnect_now()
            except UnknownOutcome as exc:
                logger.warning("stream=user-data keepalive outcome unknown error={}", exc)


class KlineStream(_ReconnectingStream):
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
        streams.start(["BTCUSDT"], "1m")
        events = streams.events.drain(); candles = streams.candles.drain()
    """

    def __init__(self, base_url: str, api: ListenKeyApi, clock: Clock,
                 options: StreamOptions) -> None:
        self._base_url, self._api, self._clock, self._options = base_url, api, clock, options
        self.events: BoundedQueue[ExchangeEvent] = BoundedQueue("user-data-events",
                                                                options.max_events)
        self.candles: BoundedQueue[Candle] = BoundedQueue("candles", options.max_candles)
        self.user: UserDataStream | None = None
        self.klines: KlineStream | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def user_live(self) -> bool:
        return self.user is not None and self.user.live

    @property
    def klines_live(self) -> bool:
        return self.klines is not None and self.klines.live

    def start(self, symbols: list[str], interval: str) -> None:
        if self._session is not None:
            logger.info("streams already running; start() again is a no-op")
            return
        options = self._options
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=options.connect_timeout, connect=options.connect_timeout))
        self.user = UserDataStream(self._base_url, self._api, self._session, self._clock,
                                   options, self.events)
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
