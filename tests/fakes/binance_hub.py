"""The fake Binance server's websockets: user-data sockets (/ws/<listenKey>) and combined
market streams (/stream?streams=a/b), with the failure modes the adapter must survive:
dropped sockets, refused reconnects, frozen (half-open) connections that neither send
nor answer pings, and sockets of an expired listenKey that stay open, answer pings and
receive nothing more."""

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web
from loguru import logger

Json = dict[str, Any]


class StreamHub:
    """Open sockets by listen key / stream name; broadcasts and fault controls."""

    def __init__(self) -> None:
        self.user: dict[web.WebSocketResponse, str] = {}
        self.market: dict[web.WebSocketResponse, set[str]] = {}
        self.frozen = False
        self.connections_opened = 0
        self.expired_keys: set[str] = set()   # their sockets stay open and get nothing
        self._refuse_until = 0.0

    @property
    def refusing(self) -> bool:
        return asyncio.get_running_loop().time() < self._refuse_until

    async def serve_user(self, request: web.Request, listen_key: str) -> web.StreamResponse:
        return await self._serve(request, self.user, listen_key)

    async def serve_market(self, request: web.Request, streams: set[str]) -> web.StreamResponse:
        return await self._serve(request, self.market, streams)

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
        for ws, streams in list(self.market.items()):
            if stream in streams:
                await self._send(ws, text)

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
