"""Binance's USD-M user-data stream and its listenKey.

Where it connects. Binance's "Important WebSocket Change Notice" (https://developers.
binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/
Important-WebSocket-Change-Notice) splits the stream host into /public, /market and
/private; user data moves to /private, whose ws mode takes the key and the events wanted
as query parameters:

    <base>private/ws?listenKey=<listenKey>&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/...

The notice keeps the legacy URLs "available until 2026-04-23" (quoted in
github.com/c9s/bbgo/pull/2468), and a retired legacy path was reported to accept the
handshake and then deliver nothing (github.com/ccxt/go-binance/pull/812). Yet Binance's
pages disagree: user-data Connect pages still show the old path, or the key as a path
segment under /private (https://developers.binance.com/docs/derivatives/coin-futures/
user-data-streams: `wss://fstream.binance.com/private/ws/<listenKey>`), and servers such
as an older testnet know only the old path:

    <base>ws/<listenKey>

So the stream connects on the routed path first and falls back to the old one only when a
server refuses the routed handshake (HTTP 400/404, or closes it at once without a message;
websocket_paths.py has the rules); the path that worked is kept for the reconnects and the
choice is logged once. We ask for the events we decode plus listenKeyExpired, by name: the
notice documents `events` as the subscription, and does not say what an absent one means.
Nor does it list which names a server accepts, so a refused routed handshake is tried once
more without `events` (the form client libraries use, e.g. ccxt/go-binance#812) before the
old path:

    <base>private/ws?listenKey=<listenKey>

The listenKey, as Binance documents it for USD-M futures
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Connect):
a key is valid for 60 minutes after creation; a PUT extends it by 60 minutes, and if the
PUT answers -1125 "This listenKey does not exist." a new key must be created with POST;
a POST while the account has an active key returns that key and extends it. The PUT
answers `{"listenKey": "<the key which got extended>"}`
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Keepalive-User-Data-Stream;
the page suggests a PUT about every 60 minutes, we send one every 30 so that one lost
keepalive does not expire the key). When a key in a connection expires Binance pushes
`listenKeyExpired`, "not related to the websocket disconnection", and no user-data
event arrives after it until a new key is used
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-User-Data-Stream-Expired).

Nothing promises that event, nor that the socket closes: an expired key can leave an
open, answering, silent socket, and `streaming` would stay true while fills reach the
engine only by REST polling. So when no user-data message arrived for
`user_silence_seconds`, the stream checks its key at once with a PUT: answered -> the
account is just quiet, stay up; -1125 (or another key extended) -> down at once, new key,
reconnect without backoff. A PUT not sent (the rate-limit circuit open: an IP ban lasts
"from 2 minutes to 3 days", USD-M General Info, LIMITS) or not answered says nothing of
the key, which a PUT extended less than `keepalive_seconds` ago: the socket stays, and the
next silence checks again. Closing it would gain nothing (the POST for a new key is
refused the same way) and would lose the one source that may speak inside a ban: a
stop's fill (ARCHITECTURE.md). The engine does not wait that long with a position open:
it reads the open orders every few seconds (trader/exchange_view.py), and a change this
stream never reported has the key checked at once the same way (`doubt`).
"""

import asyncio
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from loguru import logger

from trader.clock import Clock
from trader.exchange import binance_event_codec as codec
from trader.exchange.base import ExchangeError, ExchangeEvent, UnknownOutcome
from trader.exchange.errors import classify
from trader.exchange.websocket_paths import LEGACY, ROUTED, PathChooser
from trader.exchange.websocket_stream import (
    BoundedQueue,
    ReconnectBackoff,
    ReconnectCallback,
    ReconnectingStream,
    StreamOptions,
)
from trader.outage_log import OutageLog

LISTEN_KEY_EXPIRED = "listenKeyExpired"
ROUTED_ALL_EVENTS = "routed-all-events"   # /private/ws?listenKey=<key>, no `events`


class ListenKeyApi(Protocol):
    """The two REST calls the user-data stream needs (the adapter provides them).

    `keep_alive_listen_key` may return the key Binance says it extended (the answer's
    "listenKey"; the USD-M PUT takes no parameter and extends the account's active key),
    or None if it does not tell. Both raise ExchangeError for an answered error (code
    -1125: no such key) and UnknownOutcome when no answer came back."""

    async def create_listen_key(self) -> str: ...

    async def keep_alive_listen_key(self, listen_key: str) -> str | None: ...


class ListenKeyStatus(Enum):
    ALIVE = "alive"             # PUT answered: the key exists and was extended 60 minutes
    GONE = "gone"               # -1125, another key extended, or no key at all
    UNVERIFIED = "unverified"   # not sent (circuit open), not answered, another error:
    #                             unknown, the key may be fine (a silence keeps the socket)


class UserDataStream(ReconnectingStream):
    """`<base>private/ws?listenKey=<key>&events=...`, or `<base>ws/<key>` on a server
    without routed paths: ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE,
    ACCOUNT_CONFIG_UPDATE (a leverage or the asset mode changed), MARGIN_CALL, CONDITIONAL_ORDER_TRIGGER_REJECT
    (a triggered stop the matching engine refused, and why) -> events."""

    def __init__(self, base_url: str, api: ListenKeyApi, session: aiohttp.ClientSession,
                 clock: Clock, options: StreamOptions, events: BoundedQueue[ExchangeEvent],
                 on_reconnect: list[ReconnectCallback] | None = None) -> None:
        super().__init__("user-data", session, clock, options, on_reconnect)
        self._base_url, self._api, self._events = base_url, api, events
        self.silence = options.user_silence_seconds
        self.listen_key: str | None = None
        self.listen_keys_created = 0
        self._keepalive_task: asyncio.Task[None] | None = None
        self._doubt_task: asyncio.Task[None] | None = None
        # PUTs of the key unsent or unanswered (an IP ban refuses one at every silence check
        # and keepalive retry, for up to 3 days): said once, and how long until one answered.
        self.keepalive_failures = OutageLog(clock)
        self._decoders: dict[str, Callable[[dict[str, Any]], Any]] = {
            "ORDER_TRADE_UPDATE": codec.update_from_order_event,
            "ALGO_UPDATE": codec.update_from_algo_event,
            "ACCOUNT_UPDATE": codec.update_from_account_event,
            codec.CONFIG_EVENT: codec.update_from_config_event,
            codec.MARGIN_EVENT: codec.margin_call_from_event,
            codec.TRIGGER_REJECT_EVENT: codec.trigger_reject_from_event,
        }
        self.paths = PathChooser(self.health.name, (ROUTED, ROUTED_ALL_EVENTS, LEGACY))

    @property
    def subscribed_events(self) -> tuple[str, ...]:
        """The event types asked for on the routed path: the decoded ones, and the expiry."""
        return (*self._decoders, LISTEN_KEY_EXPIRED)

    def start(self) -> None:
        super().start()
        self._keepalive_task = asyncio.create_task(self._keep_alive(), name="listen-key-keepalive")
        self._keepalive_task.add_done_callback(self._crashed)

    async def stop(self) -> None:
        for task in (self._keepalive_task, self._doubt_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await super().stop()

    def doubt(self) -> None:
        """The engine read over REST a change this stream never reported (an expired key
        can leave an open, silent socket): check the key now with one PUT (weight 1), not
        at the silence check 180 s later; gone -> a new key and a reconnect at once, as a
        keepalive round does. One check at a time; a key found alive stays (a socket that
        is merely half-open is the ping's to find)."""
        if self._stopping or (self._doubt_task is not None and not self._doubt_task.done()):
            return
        logger.info("stream=user-data a change went unreported, checking the listen key")
        self._doubt_task = asyncio.create_task(self._check_doubted(), name="listen-key-doubt")
        self._doubt_task.add_done_callback(self._crashed)

    async def _check_doubted(self) -> None:
        await self._keep_alive_once()   # its answer (retry soon?) is the keepalive loop's

    async def _url(self) -> str:
        if self.listen_key is None:
            self.listen_key = await self._api.create_listen_key()
            self.listen_keys_created += 1
            logger.info("stream=user-data listen key created count={}", self.listen_keys_created)
        return self.url_for(self.listen_key)

    def url_for(self, listen_key: str) -> str:
        """The URL of `listen_key` in the current layout (`paths.current`)."""
        layout = self.paths.current if self.paths is not None else ROUTED
        if layout == LEGACY:
            return f"{self._base_url}ws/{listen_key}"
        query = {"listenKey": listen_key}
        if layout == ROUTED:
            query["events"] = "/".join(self.subscribed_events)
        return f"{self._base_url}private/ws?{urlencode(query, safe='/')}"

    def _on_message(self, payload: dict[str, Any]) -> None:
        kind = payload.get("e", "")
        if kind == LISTEN_KEY_EXPIRED:
            logger.warning("stream=user-data listen key expired (event), recreating")
            self._forget_listen_key(self.listen_key, "listen key expired")
            self._restart_reason = "listen key expired"
            return
        decoder = self._decoders.get(kind)
        if decoder is None:
            logger.debug("stream=user-data ignored event={}", kind)
            return
        event = decoder(payload)
        if event is not None:        # an ACCOUNT_CONFIG_UPDATE of neither form is None
            self._events.push(event)
        if kind == codec.ACCOUNT_EVENT:   # a funding settlement is also journaled as such
            funding = codec.funding_from_account_event(payload)
            if funding is not None:
                self._events.push(funding)
            for margin_type in codec.margin_types_from_account_event(payload):
                self._events.push(margin_type)
            moved = codec.money_moved_from_account_event(payload)
            if moved is not None:
                self._events.push(moved)

    async def _on_silence(self) -> str | None:
        key = self.listen_key
        # Inside an outage of the PUT (said once) each check would say the same again
        said = logger.debug if self.keepalive_failures.failing() else logger.info
        said("stream=user-data no event for {}s, checking the listen key", self.silence)
        status = await self._check_listen_key(key)
        if status is ListenKeyStatus.ALIVE:
            return None
        if status is ListenKeyStatus.UNVERIFIED:
            # Only a definite "gone" closes a socket that may be working: an expiry would
            # have been pushed (listenKeyExpired), and inside an IP ban a new key cannot be
            # had either (the POST is refused like the PUT).
            said("stream=user-data listen key unchecked, keeping the stream; checking again "
                 "after {}s without an event", self.silence)
            return None
        reason = f"no event for {self.silence}s, listen key {status.value}"
        if not self._forget_listen_key(key, reason):
            return None   # replaced meanwhile by the keepalive loop, which closes this socket
        self._skip_backoff = True
        return reason

    async def _on_refused(self) -> None:
        """A key that expired while the socket was down shows as nothing but refused
        handshakes: no socket hears listenKeyExpired, no silence check runs. So each
        refusal checks the key with one PUT, like a silence; a key Binance forgot is
        dropped, and the next connection POSTs for a new one."""
        key = self.listen_key
        if key is not None and await self._check_listen_key(key) is ListenKeyStatus.GONE:
            self._forget_listen_key(key, "listen key gone (-1125)")

    async def _check_listen_key(self, key: str | None) -> ListenKeyStatus:
        """PUT the key: extends it 60 minutes, or answers -1125 if Binance forgot it."""
        if key is None:
            return ListenKeyStatus.GONE
        failures = self.keepalive_failures
        try:
            extended = await self._api.keep_alive_listen_key(key)
        except ExchangeError as exc:
            if classify(exc, sending=False).listen_key_gone:
                failures.ended("", "stream=user-data keepalive answered again")
                logger.warning("stream=user-data listen key gone (-1125)")
                return ListenKeyStatus.GONE
            failures.failed("", "stream=user-data keepalive failed error={} (said once until "
                            "one is answered)", exc)
            return ListenKeyStatus.UNVERIFIED
        except UnknownOutcome as exc:
            failures.failed("", "stream=user-data keepalive outcome unknown error={} (said "
                            "once until one is answered)", exc)
            return ListenKeyStatus.UNVERIFIED
        failures.ended("", "stream=user-data keepalive answered again")
        if extended is not None and extended != key:
            # The account has another active key now (made by another process after ours
            # expired): ours gets no event any more.
            logger.warning("stream=user-data keepalive extended another listen key")
            return ListenKeyStatus.GONE
        logger.debug("stream=user-data listen key kept alive")
        return ListenKeyStatus.ALIVE

    def _forget_listen_key(self, key: str | None, reason: str) -> bool:
        """Events stopped on `key`: down at once, and the next connection POSTs for a key
        (Binance returns the active one if there still is one). False if already replaced."""
        if key is None or key != self.listen_key:
            return False
        self.health.mark_down(reason)
        self.listen_key = None
        return True

    async def _keep_alive(self) -> None:
        """PUT the key every `keepalive_seconds`; after a failure retry sooner, on the
        reconnect backoff (the key lives 60 minutes). One failed round never ends the loop."""
        retry = ReconnectBackoff(self._options.backoff_initial, self._options.backoff_max,
                                 self._options.jitter, self._clock.sleep)
        delay = self._options.keepalive_seconds
        while not self._stopping:
            await self._clock.sleep(delay)
            try:
                done = await self._keep_alive_once()
            except Exception as exc:  # noqa: BLE001 - one failed round must not end the loop
                logger.opt(exception=exc).error(
                    "stream=user-data keepalive round failed, retrying after backoff "
                    "error={!r}", exc)
                done = False
            if done:
                retry.reset()
                delay = self._options.keepalive_seconds
            else:
                delay = retry.next_delay()

    async def _keep_alive_once(self) -> bool:
        """One keepalive round; False if it should be retried soon."""
        key = self.listen_key
        status = await self._check_listen_key(key)
        if status is ListenKeyStatus.GONE:
            if self._forget_listen_key(key, "listen key gone (-1125)"):
                await self._reconnect_now()
            return True   # no key, or a new one on the way: the next round is for that one
        return status is ListenKeyStatus.ALIVE
