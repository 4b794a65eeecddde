"""The one place Binance USD-M REST requests are sent: python-binance's AsyncClient behind
one gate (trader/exchange/gate.py).

The gate holds the rate-limit circuit (429/418 -> nothing is sent until Retry-After has
passed), client-side pacing from the usage headers, a clock resync and one resend after
-1021, and capped backoff on transient errors for requests that cannot create an order.
Placement retries that depend on the order's role (-2021, -1106, filter rejections) are
the executor's.

Errors: a Binance error answer becomes `ExchangeError(code, msg, http_status,
retry_after)`. When the request may have reached the matching engine without us
knowing the result (timeout, dropped connection, aiohttp error, HTTP 5xx, -1007),
a sending call raises `UnknownOutcome`; then the adapter's `probe()` asks for the order
by client id. So does any other exception raised from inside python-binance's sending
request (an answer it could not read): once the request is called, it may have left.

Time: python-binance stamps signed requests with `time.time()` + `timestamp_offset`;
`sync_time()` measures that offset against GET /fapi/v1/time. Everything else (rate
limit windows, probe deadlines, backoff sleeps) uses the injected clock.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from binance import AsyncClient
from binance.exceptions import BinanceAPIException, BinanceRequestException
from loguru import logger

from trader.clock import Clock
from trader.exchange import binance_codec as codec
from trader.exchange.base import UnknownOutcome
from trader.exchange.binance_fields import Fields
from trader.exchange.gate import RequestGate, RetryPolicy
from trader.exchange.ratelimit import RateLimiter

TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, BinanceRequestException)


class BinanceRest:
    """python-binance's AsyncClient behind the request gate, and the server clock offset.

        rest = BinanceRest(clock)
        rest.connect(AsyncClient(key, secret, testnet=True))
        info = await rest.call("exchange info", rest.client.futures_exchange_info)
    """

    def __init__(self, clock: Clock, *, rate_headroom: float = 0.9,
                 retry_policy: RetryPolicy | None = None) -> None:
        self._clock = clock
        self._client: AsyncClient | None = None
        self.limiter = RateLimiter(headroom=rate_headroom)
        self.offset_ms = 0
        self.gate = RequestGate(clock, self.limiter, resync=self.sync_time,
                                server_now=self.server_now, policy=retry_policy)

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError("BinanceExchange.start() has not run yet")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self, client: AsyncClient) -> None:
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close_connection()
            self._client = None

    def server_now(self) -> datetime:
        return self._clock.now() + timedelta(milliseconds=self.offset_ms)

    async def sync_time(self) -> None:
        """Measure the server clock offset python-binance adds to request timestamps."""
        before = time.time()
        raw = await self.call("server time", self.client.futures_time)
        local_ms = int((before + time.time()) / 2 * 1000)
        server_ms = Fields(raw, "GET /fapi/v1/time").number("serverTime")
        self.offset_ms = int(server_ms) - local_ms
        self.client.timestamp_offset = self.offset_ms
        logger.info("binance time synced offset_ms={}", self.offset_ms)

    async def call(self, action: str, method: Callable[..., Awaitable[Any]], *,
                   sending: bool = False, orders: int = 0, weight: int = 1,
                   timeout: float | None = None, once: bool = False, **params: Any) -> Any:
        """One request through the gate (circuit, pacing, retries; trader/exchange/gate.py),
        its failure translated into ExchangeError / UnknownOutcome. `timeout` (seconds):
        shorter than the client's for this request (run out: UnknownOutcome, as the
        client's own timeout); `once`: not retried (RequestGate.send)."""
        async def one_request() -> Any:
            try:
                async with asyncio.timeout(timeout):
                    result = await method(**dict(params))
            except BinanceAPIException as exc:
                self._observe(exc.response)
                raise self._translate(exc, sending) from exc
            except TRANSPORT_ERRORS as exc:
                logger.warning("binance {} outcome unknown error={!r}", action, exc)
                raise UnknownOutcome(f"{action}: {exc!r}") from exc
            except Exception as exc:
                if not sending:
                    raise       # a read's: the caller's boundary logs it, nothing is placed
                # Raised from inside the request, so it may have left: an answer the client
                # could not read (a 5xx page not in UTF-8: aiohttp's UnicodeDecodeError; a
                # 5xx JSON body that is not an object: an AttributeError in python-binance's
                # BinanceAPIException). Taken for a bug of ours before the send, an order
                # that may still land would be settled as never placed and sent again.
                logger.error("binance {} answer unreadable, outcome unknown error={!r}",
                             action, exc)
                raise UnknownOutcome(f"{action}: unreadable answer {exc!r}") from exc
            self._observe(self.client.response)
            return result
        return await self.gate.send(action, one_request, weight=weight, orders=orders,
                                    idempotent=not sending, once=once)

    @staticmethod
    def _translate(exc: BinanceAPIException, sending: bool) -> Exception:
        headers = getattr(exc.response, "headers", {})
        error = codec.error_from_answer(int(exc.status_code), exc.code, exc.message,
                                        headers.get("Retry-After"), sending=sending)
        if isinstance(error, UnknownOutcome):
            logger.warning("binance send outcome unknown http={} code={} msg={}",
                           error.http_status, error.code, error)
        return error

    def _observe(self, response: Any) -> None:
        headers = getattr(response, "headers", None)
        if headers is not None:
            self.limiter.observe(headers, self.server_now())
