"""The fake Binance server's websockets: user-data sockets and combined market streams,
with the failure modes the adapter must survive: dropped sockets, refused reconnects,
frozen (half-open) connections that neither send nor answer pings, and sockets of an
expired listenKey that stay open, answer pings and receive nothing more.

Binance's pages document two URL layouts, so the hub serves either or both
(`StreamHub(ws_layout=...)`, "routed" | "legacy" | "both"):
- routed (.../websocket-market-streams/Important-WebSocket-Change-Notice):
  /private/ws?listenKey=<key>&events=A/B (only the events named are sent; the notice's
  example names them, and does not say what an absent `events` means: all are sent then),
  /private/ws/<key> (https://developers.binance.com/docs/derivatives/coin-futures/
  user-data-streams), /public/stream?streams=... and /market/stream?streams=...;
- legacy (the pages before the notice; the USD-M user-data Connect page as we had it,
  https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
  Connect): /ws/<key> and the unrouted /stream?streams=..., which then carries every stream.
A layout the hub does not serve is refused like a server that does not know the path:
HTTP 404 on the upgrade, or (`refuse_with = "close"`) a handshake accepted and closed at
once without a message. `upgrades` records every upgrade request and its answer.

Market streams are routed as Binance documents (.../websocket-market-streams/
Important-WebSocket-Change-Notice, "Endpoint & Stream Mapping"): book tops and depth on
/public, every other market stream on /market. A socket gets only the streams of its
route, silently, as Binance does; in "both", one on the old unrouted /stream gets only
/public data ("A connection with no routed path only receives /public data",
developers.binance.com/docs/products/caas/market-data-streams)."""

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web
from loguru import logger

from tests.fakes import binance_wire as wire
from trader.domain import BookTicker

Json = dict[str, Any]
PUBLIC, MARKET, UNROUTED = "public", "market", ""
ROUTED, LEGACY, BOTH = "routed", "legacy", "both"
SERVED_LAYOUTS = {ROUTED: {ROUTED}, LEGACY: {LEGACY}, BOTH: {ROUTED, LEGACY}}
USER, MARKET_DATA = "user", "market"


def route_of(stream: str) -> str:
    """The routed path Binance serves a market stream on: "public" or "market"."""
    kind = stream.removeprefix("!") if stream.startswith("!") else stream.partition("@")[2]
    return PUBLIC if kind.startswith(("bookTicker", "depth")) else MARKET


@dataclass(frozen=True, slots=True)
class MarketSubscription:
    """One market socket: the path it connected on ("public", "market", "" unrouted) and the
    streams it asked for."""
    route: str
    streams: frozenset[str]

    def delivers(self, stream: str) -> bool:
        return stream in self.streams and route_of(stream) == (self.route or PUBLIC)


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One websocket upgrade request: "user" or "market", the layout of its path, the HTTP
    status answered (101: accepted)."""
    kind: str
    layout: str
    status: int


class StreamHub:
    """Open sockets by listen key / stream name; broadcasts and fault controls."""

    def __init__(self, ws_layout: str = BOTH) -> None:
        if ws_layout not in SERVED_LAYOUTS:
            raise ValueError(f"ws_layout must be one of {', '.join(SERVED_LAYOUTS)}, "
                             f"not {ws_layout!r}")
        self.ws_layout = ws_layout
        self.refuse_with = "404"               # or "close": accept, then close at once
        self.known_events: frozenset[str] | None = None   # set: `events` naming others -> 400
        self.upgrades: list[Upgrade] = []
        self.user: dict[web.WebSocketResponse, str] = {}
        self.user_events: dict[web.WebSocketResponse, frozenset[str]] = {}
        self.market: dict[web.WebSocketResponse, MarketSubscription] = {}
        self.book_updates = 0                  # the bookTicker update id ("u")
        self.frozen = False
        self.connections_opened = 0
        self.expired_keys: set[str] = set()   # their sockets stay open and get nothing
        self._refuse_until = 0.0
        self._refusals: dict[str, int] = {}     # layout -> upgrades still to refuse

    @property
    def refusing(self) -> bool:
        return asyncio.get_running_loop().time() < self._refuse_until

    def refuse_upgrades(self, layout: str, times: int = 1) -> None:
        """Refuse the next `times` upgrades on `layout`'s paths as if it were not served."""
        self._refusals[layout] = self._refusals.get(layout, 0) + times

    async def serve_user(self, request: web.Request, layout: str, listen_key: str,
                         valid: bool, events: frozenset[str] | None) -> web.StreamResponse:
        """`events`: the event types asked for (None: all); `valid`: the key is live."""
        refusal = await self._refusal(request, USER, layout)
        if refusal is not None:
            return refusal
        if not valid:
            self.upgrades.append(Upgrade(USER, layout, 400))
            return web.Response(status=400, text="invalid listen key")
        if events is not None and self.known_events is not None \
                and not events <= self.known_events:
            self.upgrades.append(Upgrade(USER, layout, 400))
            return web.Response(status=400, text="invalid events")
        return await self._serve(request, self.user, listen_key, USER, layout, events)

    async def serve_market(self, request: web.Request, route: str,
                           streams: set[str]) -> web.StreamResponse:
        layout = LEGACY if route == UNROUTED else ROUTED
        refusal = await self._refusal(request, MARKET_DATA, layout)
        if refusal is not None:
            return refusal
        return await self._serve(request, self.market,
                                 MarketSubscription(route, frozenset(streams)), MARKET_DATA,
                                 layout)

    async def _refusal(self, request: web.Request, kind: str,
                       layout: str) -> web.StreamResponse | None:
        """The answer of a server that does not know `layout`'s paths, or None."""
        if layout in SERVED_LAYOUTS[self.ws_layout] and not self._refusals.get(layout):
            return None
        if self._refusals.get(layout):
            self._refusals[layout] -= 1
        if self.refuse_with == "close":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            self.upgrades.append(Upgrade(kind, layout, 101))
            await ws.close(code=1008, message=b"unknown path")
            return ws
        self.upgrades.append(Upgrade(kind, layout, 404))
        return web.Response(status=404, text="Not Found")

    async def _serve(self, request: web.Request, registry: dict[web.WebSocketResponse, Any],
                     subscription: Any, kind: str, layout: str,
                     events: frozenset[str] | None = None) -> web.StreamResponse:
        if self.refusing or self.frozen:
            self.upgrades.append(Upgrade(kind, layout, 503))
            return web.Response(status=503, text="streams unavailable (fault injected)")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self.upgrades.append(Upgrade(kind, layout, 101))
        self.connections_opened += 1
        registry[ws] = subscription
        if events is not None:
            self.user_events[ws] = events
        try:
            async for message in ws:
                if message.type is WSMsgType.PING and not self.frozen:
                    await ws.pong(message.data)
        finally:
            registry.pop(ws, None)
            self.user_events.pop(ws, None)
        return ws

    async def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        if self.frozen or ws.closed:
            return
        try:
            await ws.send_str(text)
        except ConnectionError as exc:
            logger.info("fake binance: socket gone while sending error={!r}", exc)

    async def send_user(self, payloads: list[Json], listen_key: str | None = None) -> None:
        await self.send_user_text([json.dumps(payload) for payload in payloads], listen_key)

    async def send_user_text(self, texts: list[str], listen_key: str | None = None) -> None:
        """Raw text frames to the user-data sockets (of `listen_key`, or all live keys)."""
        for ws, key in list(self.user.items()):
            if key in self.expired_keys:
                continue
            if listen_key is None or key == listen_key:
                for text in texts:
                    if self._asked_for(ws, text):
                        await self._send(ws, text)

    def _asked_for(self, ws: web.WebSocketResponse, text: str) -> bool:
        """False for an event of a type the socket's `events` did not name. Text that is
        no event with a type (the containment tests send such) goes through."""
        events = self.user_events.get(ws)
        if events is None:
            return True
        try:
            kind = json.loads(text).get("e")
        except (ValueError, AttributeError):
            return True
        return not isinstance(kind, str) or kind in events

    async def send_market(self, stream: str, payload: Json) -> None:
        await self.send_market_text(stream, json.dumps(payload))

    async def send_market_text(self, stream: str, text: str) -> None:
        """A raw text frame to the market sockets that subscribed `stream` on its route."""
        for ws, subscription in list(self.market.items()):
            if self._delivers(subscription, stream):
                await self._send(ws, text)

    def _delivers(self, subscription: MarketSubscription, stream: str) -> bool:
        if subscription.route == UNROUTED and self.ws_layout == LEGACY:
            return stream in subscription.streams   # before the split: one path for all
        return subscription.delivers(stream)

    async def send_quote(self, book: BookTicker, mark: Decimal, funding_rate: Decimal,
                         moment_ms: int) -> None:
        """The price moved: the documented <symbol>@bookTicker and <symbol>@markPrice(@1s)
        events to their subscribers."""
        self.book_updates += 1
        book_event = wire.book_ticker_event(book, self.book_updates, moment_ms)
        await self.send_market(book_event["stream"], book_event)
        for suffix in ("@markPrice", "@markPrice@1s"):
            mark_event = wire.mark_price_event(book.symbol, mark, funding_rate, moment_ms, suffix)
            await self.send_market(mark_event["stream"], mark_event)

    def expire_user(self, listen_key: str) -> None:
        """Sockets of `listen_key` stay open and answer pings, but get no event any more."""
        self.expired_keys.add(listen_key)

    async def drop_all(self, refuse_for: float = 0.0) -> None:
        """Close every socket; refuse new ones for `refuse_for` seconds."""
        self._refuse_until = asyncio.get_running_loop().time() + refuse_for
        for ws in [*self.user, *self.market]:
            await ws.close(code=1001, message=b"dropped by fault injection")

    async def close_user(self, listen_key: str) -> None:
        for ws, key in list(self.user.items()):
            if key == listen_key:
                await ws.close(code=1000, message=b"listen key expired")

    async def close(self) -> None:
        for ws in [*self.user, *self.market]:
            await ws.close(code=1001, message=b"server shutdown")
