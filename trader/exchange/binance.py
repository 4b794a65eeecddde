"""The Exchange protocol on Binance USD-M futures, through python-binance's AsyncClient.

Plain orders (MARKET, LIMIT) go to /fapi/v1/order keyed by `newClientOrderId`;
conditional ones (STOP_MARKET, TAKE_PROFIT_MARKET) to the Algo Order API
/fapi/v1/algoOrder keyed by `clientAlgoId` (python-binance would invent a random one:
we always pass ours). Every call sends exactly ONE request and lets the caller's retry
policy (trader/exchange/errors.py) decide what happens next. The one exception: a
-1021 (timestamp outside recvWindow) resyncs the server time offset and resends once.

Errors: a Binance error answer becomes `ExchangeError(code, msg, http_status,
retry_after)`. When the request may have reached the matching engine without us
knowing the result (timeout, dropped connection, aiohttp error, HTTP 5xx, -1007),
`place()` raises `UnknownOutcome`; then `probe()` asks for the order by client id.

Time: python-binance stamps signed requests with `time.time()` + `timestamp_offset`;
`sync_time()` measures that offset against GET /fapi/v1/time. Everything else (rate
limit windows, probe deadlines, backoff sleeps) uses the injected clock.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

import aiohttp
from binance import AsyncClient
from binance.exceptions import BinanceAPIException, BinanceRequestException
from loguru import logger

from trader.clock import Clock
from trader.config import Settings
from trader.domain import (
    Balance,
    BookTicker,
    Candle,
    ClientId,
    ExchangePosition,
    Fill,
    Order,
    OrderRequest,
    SymbolRules,
    to_ms,
)
from trader.exchange import binance_codec as codec
from trader.exchange.base import (
    AccountUpdate,
    ExchangeError,
    ExchangeEvent,
    OrderUpdate,
    UnknownOutcome,
)
from trader.exchange.binance_streams import BinanceStreams, StreamOptions
from trader.exchange.ratelimit import RateLimiter, RateLimits
from trader.logs import register_secret

PENDING: Final = "pending"
ProbeResult = Order | None | Literal["pending"]

TESTNET_STREAMS = "wss://fstream.binancefuture.com/"
MAINNET_STREAMS = "wss://fstream.binance.com/"
UNKNOWN_ORDER = (-2013, -2011)        # "Order does not exist." / "Unknown order sent."
INVALID_TIMESTAMP = -1021
MARGIN_TYPE_ALREADY_SET = -4046
MARGIN_TYPE_LOCKED_BY_POSITION = -4048
TIMESTAMP_TOLERANCE_MS = 1000         # Binance accepts a timestamp up to 1 s ahead of its clock
HEDGE_MODE_MESSAGE = ("account is in hedge mode; switch to one-way mode in Binance "
                      "(Preferences > Position Mode) - refusing to trade")
TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, BinanceRequestException)


class SetupRefused(Exception):
    """start() refuses to trade: hedge mode, or a symbol Binance doesn't list."""


class BinanceExchange:
    """Binance USD-M futures (testnet unless BINANCE_TESTNET=false).

        exchange = BinanceExchange(load_settings(), SystemClock())
        await exchange.start(["BTCUSDT"], leverage=5)
        order = await exchange.place(intent.request())
    """

    name = "binance"

    def __init__(self, settings: Settings, clock: Clock, *,
                 stream_options: StreamOptions | None = None, streams: bool = True,
                 request_timeout: float = 10.0, rate_headroom: float = 0.9) -> None:
        self._settings, self._clock = settings, clock
        self._stream_options = stream_options or StreamOptions()
        self._streams_enabled = streams
        self._request_timeout = request_timeout
        self._client: AsyncClient | None = None
        self._rules: dict[str, SymbolRules] = {}
        self._leverage: dict[str, int] = {}
        self._limiter = RateLimiter(headroom=rate_headroom)
        self._offset_ms = 0
        self._client_ids: dict[str, str] = {}   # orderId -> client id (userTrades omit it)
        self.streams = BinanceStreams(self.stream_base_url, self, clock,
                                      self._stream_options)

    # --- lifecycle -------------------------------------------------------------------
    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError("BinanceExchange.start() has not run yet")
        return self._client

    def _make_client(self) -> AsyncClient:
        key, secret = self._settings.binance_api_key, self._settings.binance_api_secret
        api_key = key.get_secret_value() if key else None
        api_secret = secret.get_secret_value() if secret else None
        register_secret(api_key)
        register_secret(api_secret)
        client = AsyncClient(api_key, api_secret, testnet=self._settings.binance_testnet)
        client.REQUEST_TIMEOUT = self._request_timeout
        client.REQUEST_RECVWINDOW = self._settings.recv_window_ms
        root = self._settings.binance_futures_url
        if root:
            # _create_futures_api_uri appends "/v1|v2|v3/<path>" to these.
            client.FUTURES_URL = client.FUTURES_TESTNET_URL = f"{root.rstrip('/')}/fapi"
        return client

    @property
    def stream_base_url(self) -> str:
        if self._settings.binance_futures_ws_url:
            return self._settings.binance_futures_ws_url
        return TESTNET_STREAMS if self._settings.binance_testnet else MAINNET_STREAMS

    async def start(self, symbols: list[str], leverage: int) -> None:
        """Sync time, load the symbol rules, refuse hedge mode, set ISOLATED + leverage."""
        if self._client is None:
            self._client = self._make_client()
        await self.sync_time()
        info = await self._call("exchange info", self.client.futures_exchange_info)
        try:
            self._rules = codec.rules_from_exchange_info(info, symbols)
        except KeyError as exc:
            raise SetupRefused(exc.args[0]) from exc
        self._limiter.set_limits(RateLimits.from_exchange_info(info.get("rateLimits", [])))
        mode = await self._call("position mode", self.client.futures_get_position_mode)
        if codec.flag(mode.get("dualSidePosition")):
            logger.error("refusing to trade: {}", HEDGE_MODE_MESSAGE)
            raise SetupRefused(HEDGE_MODE_MESSAGE)
        for symbol in symbols:
            await self._set_isolated(symbol)
            await self.set_leverage(symbol, leverage)
        logger.info("binance ready symbols={} leverage={} testnet={} offset_ms={}",
                    ",".join(symbols), leverage, self._settings.binance_testnet, self._offset_ms)
        if self._streams_enabled:
            self.streams.start(symbols, self._settings.interval)

    async def _set_isolated(self, symbol: str) -> None:
        try:
            await self._call("margin type", self.client.futures_change_margin_type,
                             symbol=symbol, marginType="ISOLATED")
        except ExchangeError as exc:
            if exc.code == MARGIN_TYPE_ALREADY_SET:
                return
            if exc.code != MARGIN_TYPE_LOCKED_BY_POSITION:
                raise
            logger.warning("margin type stays as is: a position is open symbol={} error={}",
                           symbol, exc)

    async def close(self) -> None:
        await self.streams.stop()
        if self._client is not None:
            await self._client.close_connection()
            self._client = None

    def rules(self, symbol: str) -> SymbolRules:
        return self._rules[symbol]

    # --- the one place requests are sent ------------------------------------------------
    def server_now(self) -> datetime:
        return self._clock.now() + timedelta(milliseconds=self._offset_ms)

    async def sync_time(self) -> None:
        """Measure the server clock offset python-binance adds to request timestamps."""
        before = time.time()
        raw = await self._call("server time", self.client.futures_time)
        local_ms = int((before + time.time()) / 2 * 1000)
        self._offset_ms = int(raw["serverTime"]) - local_ms
        self.client.timestamp_offset = self._offset_ms
        logger.info("binance time synced offset_ms={}", self._offset_ms)

    async def _call(self, action: str, method: Callable[..., Awaitable[Any]], *,
                    sending: bool = False, orders: int = 0, weight: int = 1,
                    **params: Any) -> Any:
        """Send one request (one more only after -1021 + resync); translate failures."""
        for attempt in (1, 2):
            await self._pace(action, weight, orders)
            try:
                result = await method(**dict(params))
            except BinanceAPIException as exc:
                self._observe(exc.response)
                error = self._translate(exc, sending)
                if isinstance(error, ExchangeError) and error.code == INVALID_TIMESTAMP \
                        and attempt == 1:
                    logger.warning("binance -1021 on {}: resyncing time, sending once more",
                                   action)
                    await self.sync_time()
                    continue
                raise error from exc
            except TRANSPORT_ERRORS as exc:
                logger.warning("binance {} outcome unknown error={!r}", action, exc)
                raise UnknownOutcome(f"{action}: {exc!r}") from exc
            self._observe(self.client.response)
            return result
        raise AssertionError("unreachable")

    @staticmethod
    def _translate(exc: BinanceAPIException, sending: bool) -> Exception:
        headers = getattr(exc.response, "headers", {})
        error = codec.error_from_answer(int(exc.status_code), exc.code, exc.message,
                                        headers.get("Retry-After"), sending=sending)
        if isinstance(error, UnknownOutcome):
            logger.warning("binance send outcome unknown http={} code={} msg={}",
                           error.http_status, error.code, error)
        return error

    async def _pace(self, action: str, weight: int, orders: int) -> None:
        wait = self._limiter.delay(self.server_now(), weight=weight, orders=orders)
        if wait > 0:
            logger.warning("binance rate limit near, holding {:.2f}s before {} usage={}",
                           wait, action, self._limiter.usage())
            await self._clock.sleep(wait)

    def _observe(self, response: Any) -> None:
        headers = getattr(response, "headers", None)
        if headers is not None:
            self._limiter.observe(headers, self.server_now())

    # --- orders ------------------------------------------------------------------------
    async def place(self, request: OrderRequest) -> Order:
        rules = self.rules(request.symbol)
        context = f"symbol={request.symbol} client_id={request.client_id} role={request.role}"
        try:
            if request.type.conditional:
                raw = await self._call(f"place algo order {context}",
                                       self.client.futures_create_algo_order, sending=True,
                                       orders=1, **codec.algo_params(request, rules))
                order = codec.order_from_algo(raw)
            else:
                raw = await self._call(f"place order {context}",
                                       self.client.futures_create_order, sending=True,
                                       orders=1, **codec.order_params(request, rules))
                order = codec.order_from_plain(raw)
        except ExchangeError as exc:
            logger.warning("binance place rejected {} code={} msg={}", context, exc.code,
                           exc.message)
            raise
        if order is None:
            raise ExchangeError(0, f"unreadable order answer for {request.client_id}: {raw}")
        self._remember(order, raw)
        logger.info("binance placed {} status={} filled={}", context, order.status,
                    order.filled_qty)
        return order

    def _remember(self, order: Order, raw: dict[str, Any]) -> None:
        if raw.get("orderId"):
            self._client_ids[str(raw["orderId"])] = order.client_id
        if raw.get("actualOrderId"):
            self._client_ids[str(raw["actualOrderId"])] = order.client_id

    @staticmethod
    def _uses_algo_api(client_id: str) -> list[bool]:
        """Which APIs to ask, in order: our ids name their role; others try plain first."""
        parsed = ClientId.parse(client_id)
        if parsed is None:
            return [False, True]
        return [parsed.role.protective]

    async def order_by_client_id(self, symbol: str, client_id: str) -> Order | None:
        return await self._one_order("query", symbol, client_id)

    async def cancel(self, symbol: str, client_id: str) -> Order | None:
        """Cancel by client id; None when Binance knows no such live order (-2011/-2013)."""
        order = await self._one_order("cancel", symbol, client_id)
        logger.info("binance cancel symbol={} client_id={} result={}", symbol, client_id,
                    order.status if order else "no live order")
        return order

    async def _one_order(self, verb: str, symbol: str, client_id: str) -> Order | None:
        """GET or DELETE one order on the API its client id names; None if Binance has none."""
        client = self.client
        for algo in self._uses_algo_api(client_id):
            if algo:
                method = client.futures_get_algo_order if verb == "query" \
                    else client.futures_cancel_algo_order
                params = {"clientAlgoId": client_id}
            else:
                method = client.futures_get_order if verb == "query" \
                    else client.futures_cancel_order
                params = {"symbol": symbol, "origClientOrderId": client_id}
            try:
                raw = await self._call(f"{verb} order symbol={symbol} client_id={client_id} "
                                       f"algo={algo}", method, **params)
            except ExchangeError as exc:
                if exc.code in UNKNOWN_ORDER:
                    continue
                raise
            order = codec.order_from_algo(raw) if algo else codec.order_from_plain(raw)
            if order is not None:
                self._remember(order, raw)
            return order
        return None

    async def open_orders(self, symbol: str) -> list[Order]:
        plain = await self._call("open orders", self.client.futures_get_open_orders,
                                 symbol=symbol)
        algos = await self._call("open algo orders", self.client.futures_get_open_algo_orders,
                                 symbol=symbol)
        orders = [codec.order_from_plain(raw) for raw in plain]
        orders += [codec.order_from_algo(raw) for raw in algos
                   if raw.get("algoStatus") in codec.LIVE_ALGO_STATUSES]
        unknown = sum(order is None for order in orders)
        if unknown:
            logger.info("binance open orders: skipped {} of types we never use symbol={}",
                        unknown, symbol)
        return [order for order in orders if order is not None and order.status.live]

    async def probe(self, symbol: str, client_id: str, signed_at: datetime) -> ProbeResult:
        """After an UnknownOutcome: the order, or PENDING while it may still appear, or None.

        "Not found" is final only once recvWindow + clock skew has passed since the
        request was signed: until then Binance could still accept it.
        """
        order = await self.order_by_client_id(symbol, client_id)
        if order is not None:
            return order
        skew_ms = abs(self._offset_ms) + TIMESTAMP_TOLERANCE_MS
        deadline = signed_at + timedelta(milliseconds=self._settings.recv_window_ms + skew_ms)
        if self._clock.now() < deadline:
            return PENDING
        return None

    # --- account and market reads --------------------------------------------------------
    async def position(self, symbol: str) -> ExchangePosition:
        rows = await self._call("position", self.client.futures_position_information,
                                weight=5, symbol=symbol)
        return codec.position_from_risk(rows, symbol, self._leverage.get(symbol, 1))

    async def balance(self) -> Balance:
        return codec.balance_from_account(
            await self._call("account", self.client.futures_account, weight=5))

    async def fills(self, symbol: str, since: datetime) -> list[Fill]:
        rows = await self._call("user trades", self.client.futures_account_trades, weight=5,
                                symbol=symbol, startTime=to_ms(since), limit=1000)
        return [codec.fill_from_trade(row, self._client_ids.get(str(row.get("orderId")), ""))
                for row in rows]

    async def klines(self, symbol: str, interval: str, start: datetime | None = None,
                     limit: int = 500) -> list[Candle]:
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start is not None:
            params["startTime"] = to_ms(start)
        weight = 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        rows = await self._call("klines", self.client.futures_klines, weight=weight, **params)
        step, now = codec.interval_delta(interval), self.server_now()
        return [codec.candle_from_rest(row, symbol, step, now) for row in rows]

    async def book_ticker(self, symbol: str) -> BookTicker:
        return codec.book_from_ticker(await self._call(
            "book ticker", self.client.futures_orderbook_ticker, weight=2, symbol=symbol))

    async def funding_rate(self, symbol: str) -> Decimal:
        raw = await self._call("premium index", self.client.futures_mark_price, symbol=symbol)
        return codec.dec(raw["lastFundingRate"])

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        await self._call("leverage", self.client.futures_change_leverage, symbol=symbol,
                         leverage=leverage)
        self._leverage[symbol] = leverage

    # --- listen key (used by the user-data stream) ----------------------------------------
    async def create_listen_key(self) -> str:
        return str(await self._call("create listen key",
                                    self.client.futures_stream_get_listen_key))

    async def keep_alive_listen_key(self, listen_key: str) -> None:
        await self._call("keep alive listen key", self.client.futures_stream_keepalive,
                         listenKey=listen_key)

    # --- push side (binance_streams.py) -----------------------------------------------------
    def drain_events(self) -> list[ExchangeEvent]:
        return [self._complete(event) for event in self.streams.events.drain()]

    def _complete(self, event: ExchangeEvent) -> ExchangeEvent:
        """Learn order ids for fills(); give ACCOUNT_UPDATE positions the leverage we set."""
        if isinstance(event, OrderUpdate):
            if not event.order.exchange_id.startswith(codec.ALGO_ID_PREFIX):
                self._client_ids[event.order.exchange_id] = event.order.client_id
            return event
        if not isinstance(event, AccountUpdate):
            return event
        positions = [replace(p, leverage=self._leverage.get(p.symbol, p.leverage))
                     for p in event.positions]
        return replace(event, positions=positions)

    async def wait_for_event(self, timeout: float) -> bool:
        return await self.streams.events.wait(timeout)

    @property
    def streaming(self) -> bool:
        return self.streams.user_live

    def drain_candles(self) -> list[Candle]:
        """Closed candles from the kline stream since the last call, oldest first."""
        return self.streams.candles.drain()

    async def next_candle(self, timeout: float) -> Candle | None:
        """The next closed candle from the kline stream, or None after `timeout` seconds."""
        return await self.streams.candles.next(timeout)

    def rate_usage(self) -> dict[str, int]:
        return self._limiter.usage()
