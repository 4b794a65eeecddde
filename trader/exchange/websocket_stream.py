"""A websocket stream that reconnects by itself, knowing nothing of what it carries: the
connect / read / back off loop (ReconnectingStream), its up/down health (announced once
per outage, with reconnect callbacks and the time of the last message), the reconnect
backoff (tenacity's wait policy, slept on the injected clock) and the bounded drop-oldest
queue the decoded messages go to. A stream whose server may speak one of several URL
layouts learns which by connecting (websocket_paths.py): a refused handshake, or a socket
closed at once, moves it to the next layout. binance_streams.py and binance_user_stream.py
build Binance's market and user-data streams on it."""

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import aiohttp
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, wait_exponential, wait_random_exponential
from tenacity.wait import wait_base

from trader.clock import Clock
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.exchange.websocket_paths import REFUSED_STATUSES, PathChooser, PathOutcome

T = TypeVar("T")
ReconnectCallback = Callable[[], None]
LOGGED_PAYLOAD_CHARS = 500


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Knobs for both streams, in seconds (tests shrink them to fractions of a second)."""
    keepalive_seconds: float = 30 * 60.0
    heartbeat_seconds: float = 30.0     # websocket ping period; no pong -> connection dead
    silence_seconds: float = 90.0       # kline stream: no message this long -> reconnect
    user_silence_seconds: float = 180.0  # user-data: no event this long -> check the key
    connect_timeout: float = 10.0       # the whole handshake: socket, TLS, HTTP upgrade
    stable_seconds: float = 30.0        # a connection that lasted this long ends an outage:
    #                                     the next one starts the backoff again (a server that
    #                                     drops each connection at once gets waits that grow)
    refused_within_seconds: float = 2.0  # closed by the server this soon, before any message:
    #                                      the path may not be served (websocket_paths.py)
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.2                 # +- fraction of each backoff delay
    max_events: int = 10_000
    max_candles: int = 2_000


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
    """Up/down state of one stream; announces each outage and each recovery once.

    `on_reconnect` callables run (no arguments, in the stream's task) each time the stream
    is up again after an outage (a first connection that needed retries included; not one
    that succeeded at once), right after connecting. They must be quick and must
    not block: set a flag or queue a command for the engine. One that raises is logged and
    the others still run. `last_message_at` is the injected clock's time of the last
    message read from the socket (None before the first).
    """

    def __init__(self, name: str, on_reconnect: list[ReconnectCallback] | None = None) -> None:
        self.name = name
        self.up = False
        self.outages = 0
        self.connections = 0
        self.decode_errors = 0
        self.last_message_at: datetime | None = None
        self.on_reconnect: list[ReconnectCallback] = [] if on_reconnect is None else on_reconnect
        self._down_announced = False

    def mark_up(self) -> None:
        self.up = True
        self.connections += 1
        if not self._down_announced:
            logger.info("stream={} connected", self.name)
            return
        self._down_announced = False
        logger.info("stream={} recovered, streaming again", self.name)
        for callback in list(self.on_reconnect):
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - a listener's bug must not end the stream
                logger.opt(exception=exc).error("stream={} reconnect callback failed "
                                                "callback={!r}", self.name, callback)

    def mark_down(self, reason: str) -> None:
        self.up = False
        if not self._down_announced:
            self._down_announced = True
            self.outages += 1
            logger.warning("stream={} down, polling REST reason={}", self.name, reason)


def reconnect_wait(initial: float, cap: float, jitter: float) -> wait_base:
    """tenacity wait policy: attempt n waits min(cap, initial * 2**(n-1)) seconds, spread by
    +-`jitter` (a fraction) so that many clients dropped together do not reconnect together.

    The spread is multiplicative, which tenacity has no single policy for: the sum of a
    steady part, `wait_exponential` scaled by (1 - jitter), and a random part,
    `wait_random_exponential` up to 2 * jitter of the same capped base, is
    base * (1 + uniform(-jitter, +jitter)).
    """
    steady = wait_exponential(multiplier=initial * (1 - jitter), max=cap * (1 - jitter))
    spread = wait_random_exponential(multiplier=initial * 2 * jitter, max=cap * 2 * jitter)
    return steady + spread


class ReconnectBackoff:
    """Attempts of one outage, each waiting by `reconnect_wait` on the injected clock's
    sleep; `reset()` once a connection has lasted, so the next outage starts at `initial`
    again.

        backoff = ReconnectBackoff(1.0, 60.0, 0.2, clock.sleep)
        await backoff.pause()   # ~1 s, then ~2 s, ~4 s ... up to ~60 s
    """

    def __init__(self, initial: float, cap: float, jitter: float,
                 sleep: Callable[[float], Awaitable[None]]) -> None:
        self._retrying = AsyncRetrying(wait=reconnect_wait(initial, cap, jitter), sleep=sleep)
        self._sleep = sleep     # (tenacity types its own `sleep` as maybe not awaitable)
        self._state = RetryCallState(self._retrying, None, (), {})

    @property
    def attempt(self) -> int:
        """Attempts of the current outage so far (0 right after a reset)."""
        return self._state.attempt_number - 1

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds; counts the attempt."""
        delay = float(self._retrying.wait(self._state))
        self._state.prepare_for_next_attempt()
        return delay

    async def pause(self) -> float:
        """Sleep the next delay on the injected clock; returns it (seconds)."""
        delay = self.next_delay()
        await self._sleep(delay)
        return delay

    def reset(self) -> None:
        self._state = RetryCallState(self._retrying, None, (), {})


def truncated(text: str) -> str:
    """A payload short enough for one log line, with its full length when cut."""
    if len(text) <= LOGGED_PAYLOAD_CHARS:
        return text
    return f"{text[:LOGGED_PAYLOAD_CHARS]}... ({len(text)} chars)"


class ReconnectingStream:
    """One websocket kept connected: connect, read, back off, connect again, forever.

    Subclasses give `_url()` (awaited before each connection), `_on_message(payload)`
    (one JSON object; anything it raises is contained by `_decode`) and `_on_silence()`
    (called after `silence` seconds without a message, when `silence` is set). A subclass
    whose URL has several layouts sets `paths` and builds `_url()` from `paths.current`;
    the loop tells it how each connection went.
    """

    silence: float | None = None   # no message this long -> _on_silence()

    def __init__(self, name: str, session: aiohttp.ClientSession, clock: Clock,
                 options: StreamOptions,
                 on_reconnect: list[ReconnectCallback] | None = None) -> None:
        self.health = StreamHealth(name, on_reconnect)
        self._session, self._clock, self._options = session, clock, options
        self._backoff = ReconnectBackoff(options.backoff_initial, options.backoff_max,
                                         options.jitter, clock.sleep)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._skip_backoff = False
        self._restart_reason: str | None = None   # set by a message: reconnect now
        self.paths: PathChooser | None = None
        self._switching_path = False   # the last layout was refused: try the next one now
        self._messages_this_connection = 0
        self._closed_by_server = False

    @property
    def live(self) -> bool:
        return self.health.up

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream-{self.health.name}")
        self._task.add_done_callback(self._crashed)

    def _crashed(self, task: "asyncio.Task[None]") -> None:
        """Last resort: a loop that ends of an error must not look live. Say so, loudly."""
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

    async def _on_silence(self) -> str | None:
        """No message for `silence` seconds: None to keep reading, or why to reconnect."""
        raise NotImplementedError

    async def _on_refused(self) -> None:
        """The server refused the handshake; nothing more to do unless the URL holds
        something that can expire (the user-data stream's listenKey)."""

    async def _run(self) -> None:
        while not self._stopping:
            reason = await self._one_connection()
            if self._stopping:
                break
            if self._switching_path:
                # A refused path is no outage of a stream that was not up: say nothing,
                # and try the next layout without waiting.
                self._switching_path = False
                if self.health.up:
                    self.health.mark_down(reason)
                continue
            self.health.mark_down(reason)
            if self._skip_backoff:
                self._skip_backoff = False
                continue
            await self._backoff.pause()

    async def _one_connection(self) -> str:
        """One connection's life, whatever goes wrong in it; returns why it ended."""
        try:
            return await self._connect_and_read()
        except Exception as exc:  # noqa: BLE001 - one failed iteration must not end the stream
            self._skip_backoff = False
            logger.opt(exception=exc).error(
                "stream={} unexpected error, reconnecting after backoff error={!r}",
                self.health.name, exc)
            return f"unexpected error: {exc!r}"

    async def _connect_and_read(self) -> str:
        try:
            url = await self._url()
            # The session's timeouts bound getting a socket, not the upgrade's answer: a
            # server or proxy that never answers it would hold this stream for good.
            async with asyncio.timeout(self._options.connect_timeout):
                ws = await self._session.ws_connect(
                    url, heartbeat=self._options.heartbeat_seconds)
            async with ws:
                self._ws = ws
                self.health.mark_up()
                return await self._read_and_judge(ws)
        except aiohttp.WSServerHandshakeError as exc:
            # Not the URL in the log: the user-data one carries the listenKey.
            refused = exc.status in REFUSED_STATUSES
            self._record_path(PathOutcome.REFUSED if refused else PathOutcome.FAILED,
                              f"HTTP {exc.status}")
            logger.warning("stream={} handshake refused status={} message={} layout={}",
                           self.health.name, exc.status, exc.message,
                           self.paths.current if self.paths else "-")
            await self._on_refused()
            return f"handshake refused: HTTP {exc.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ExchangeError,
                UnknownOutcome) as exc:
            self._record_path(PathOutcome.FAILED)
            logger.warning("stream={} connect failed error={!r}", self.health.name, exc)
            return f"connect failed: {exc!r}"
        finally:
            self._ws = None

    async def _read_and_judge(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read the connection to its end; if the server ended it before any message, tell
        `paths` whether it had lasted (worked) or was closed at once (how some servers
        refuse a path). Ended by us (stop, restart, silence) it says nothing: a silence
        check may even have moved `paths` to another layout already."""
        opened = self._clock.now()
        self._messages_this_connection, self._closed_by_server = 0, False
        reason = await self._read(ws)
        lasted = (self._clock.now() - opened).total_seconds()
        if lasted >= self._options.stable_seconds:
            # Binance: "IPs that are repeatedly disconnected may be banned" (USD-M Websocket
            # Market Streams): only a connection that lasted resets the backoff.
            self._backoff.reset()
        ours = self._stopping or self._skip_backoff or not self._closed_by_server
        if self._messages_this_connection or ours:
            return reason
        if lasted >= self._options.refused_within_seconds:
            self._record_path(PathOutcome.WORKED)
        else:
            self._record_path(PathOutcome.CLOSED_AT_ONCE, reason)
        return reason

    def _record_path(self, outcome: PathOutcome, detail: str = "") -> None:
        if self.paths is not None and self.paths.record(outcome, detail):
            self._switching_path = True

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        while True:
            try:
                # Not ws.receive(timeout=...): aiohttp restarts that timer on every pong it
                # consumes, so with a heartbeat shorter than `silence` it never fires.
                async with asyncio.timeout(self.silence):
                    message = await ws.receive()
            except TimeoutError:
                ended = await self._on_silence()
                if ended is None:
                    continue
                return ended
            if message.type is not aiohttp.WSMsgType.TEXT:
                self._closed_by_server = True
                return f"socket {message.type.name.lower()} {ws.exception() or ''}".strip()
            self.health.last_message_at = self._clock.now()
            self._messages_this_connection += 1
            if self._messages_this_connection == 1:
                self._record_path(PathOutcome.WORKED)
            self._decode(message.data)
            if self._restart_reason is not None:
                reason, self._restart_reason = self._restart_reason, None
                self._skip_backoff = True
                return reason

    def _decode(self, text: str) -> None:
        """One message, contained: whatever it holds or breaks, the stream reads on. The
        engine's REST reconciliation still sees what an unreadable event described."""
        try:
            payload = json.loads(text)
            if not isinstance(payload, dict):
                raise TypeError(f"a {type(payload).__name__}, not a JSON object")
            self._on_message(payload)
        except Exception as exc:  # noqa: BLE001 - the message boundary: count, log, read on
            self.health.decode_errors += 1
            logger.opt(exception=exc).error(
                "stream={} cannot handle message error={!r} decode_errors={} payload={}",
                self.health.name, exc, self.health.decode_errors, truncated(text))

    async def _reconnect_now(self) -> None:
        """Close the current socket so the loop reconnects at once (no backoff)."""
        self._skip_backoff = True
        if self._ws is not None:
            await self._ws.close()
