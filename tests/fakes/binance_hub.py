"""The fake Binance server's websockets: user-data sockets (/ws/<listenKey>) and combined
market streams (/<route>/stream?streams=a/b), with the failure modes the adapter must
survive: dropped sockets, refused reconnects, frozen (half-open) connections that neither
send nor answer pings, and sockets of an expired listenKey that stay open, answer pings and
receive nothing more.

Market streams are routed as Binance documents (.../websocket-market-streams/
Important-WebSocket-Change-Notice, "Endpoint & Stream Mapping"): book tops and depth on
/public, every other market stream on /market. A socket gets only the streams of its
route, silently, as Binance does; one on the old unrouted /stream gets only /public data
("A connection with no routed path only receives /public data", developers.binance.com/
docs/products/caas/market-data-streams)."""

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


class StreamHub:
    """Open sockets by listen key / stream name; broadcasts and fault controls."""

    def __init__(self) -> None:
        self.user: dict[web.WebSocketResponse, str] = {}
        self.market: dict[web.WebSocketResponse, MarketSubscription] = {}
        self.book_updates = 0                  # the bookTicker update id ("u")
        self.frozen = False
        self.connections_opened = 0
        self.expired_keys: set[str] = set()   # their sockets stay open and get nothing
        self._refuse_until = 0.0

    @property
    def refusing(self) -> bool:
        return asyncio.get_running_loop().time() < self._refuse_until

    async def serve_user(self, request: web.Request, listen_key: str) -> web.StreamResponse:
        return await self._serve(request, self.user, listen_key)

    async def serve_market(self, request: web.Request, route: str,
                           streams: set[str]) -> web.StreamResponse:
        return await self._serve(request, self.market,
                                 MarketSubscription(route, frozenset(streams)))

    async def _serve(self, request: web.Request, registry: dict[web.WebSocketResponse, Any],
                     subscription: Any) -> web.StreamResponse:
        if self.refusing or self.frozen:
            return web.Response(status=503, text="streams unavailable (fault injected)")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self.connections_opened += 1
        registry[ws] = subscription
        try:
            async for message in ws:
                if message.type is WSMsgType.PING and not self.frozen:
                    await ws.pong(message.data)
        finally:
            registry.pop(ws, None)
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
                    await self._send(ws, text)

    async def send_market(self, stream: str, payload: Json) -> None:
        await self.send_market_text(stream, json.dumps(payload))

    async def send_market_text(self, stream: str, text: str) -> None:
        """A raw text frame to the market sockets that subscribed `stream` on its route."""
        for ws, subscription in list(self.market.items()):
            if subscription.delivers(stream):
                await self._send(ws, text)

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
