"""The Exchange protocol on Binance USD-M futures, through python-binance's AsyncClient.

Plain orders (MARKET, LIMIT) go to /fapi/v1/order keyed by `newClientOrderId`;
conditional ones (STOP_MARKET, TAKE_PROFIT_MARKET) to the Algo Order API
/fapi/v1/algoOrder keyed by `clientAlgoId` (python-binance would invent a random one:
we always pass ours). Every request goes through one gate (trader/exchange/gate.py): the
rate-limit circuit (429/418 -> nothing is sent until Retry-After has passed), client-side
pacing from the usage headers, a clock resync and one resend after -1021, and capped
backoff on transient errors for requests that cannot create an order. Placement retries
that depend on the order's role (-2021, -1106, filter rejections) are the executor's.

Errors: a Binance error answer becomes `ExchangeError(code, msg, http_status,
retry_after)`. When the request may have reached the matching engine without us
knowing the result (timeout, dropped connection, aiohttp error, HTTP 5xx, -1007),
`place()` raises `UnknownOutcome`; then `probe()` asks for the order by client id.

Symbol rules (tick size, step size, minimum notional, trading status) are loaded at start
and re-read by `refresh_rules()` (the engine calls it hourly, after a stream reconnect and
after a filter rejection).

Time: python-binance stamps signed requests with `time.time()` + `timestamp_offset`;
`sync_time()` measures that offset against GET /fapi/v1/time. Everything else (rate
limit windows, probe deadlines, backoff sleeps) uses the injected clock.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

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
    describe_rules_change,
    to_ms,
)
from trader.exchange import binance_codec as codec
from trader.exchange import binance_requests
from trader.exchange.base import (
    AccountUpdate,
    CircuitState,
    ExchangeError,
    ExchangeEvent,
    MalformedResponse,
    OrderUpdate,
    Quote,
    UnknownOutcome,
)
from trader.exchange.binance_fields import Fields
from trader.exchange.binance_streams import BinanceStreams, StreamOptions
from trader.exchange.errors import Outcome, classify
from trader.exchange.gate import RequestGate, RetryPolicy
from trader.exchange.ratelimit import RateLimiter, RateLimits
from trader.logs import register_secret

PENDING: Final = "pending"
ProbeResult = Order | None | Literal["pending"]
T = TypeVar("T")

TESTNET_STREAMS = "wss://fstream.binancefuture.com/"
MAINNET_STREAMS = "wss://fstream.binance.com/"
TIMESTAMP_TOLERANCE_MS = 1000         # Binance accepts a timestamp up to 1 s ahead of its clock
HEDGE_MODE_MESSAGE = ("account is in hedge mode; switch to one-way mode in Binance "
                      "(Preferences > Position Mode) - refusing to trade")
TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, BinanceRequestException)


class SetupRefused(Exception):
    """start() refuses to trade: hedge mode, or a symbol Binance doesn't list.
    `variable` names the configuration the operator has to change."""

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


class BinanceExchange:
    """Binance USD-M futures (testnet unless BINANCE_TESTNET=false).

        exchange = BinanceExchange(load_settings(), SystemClock())
        await exchange.start(["BTCUSDT"], leverage=5)
        order = await exchange.place(intent.request())
    """

    name = "binance"

    def __init__(self, settings: Settings, clock: Clock, *,
                 stream_options: StreamOptions | None = None, streams: bool = True,
                 request_timeout: float = 10.0, rate_headroom: float = 0.9,
                 retry_policy: RetryPolicy | None = None) -> None:
        self._settings, self._clock = settings, clock
        self._stream_options = stream_options or StreamOptions()
        self._streams_enabled = streams
        self._request_timeout = request_timeout
        self._client: AsyncClient | None = None
        self._rules: dict[str, SymbolRules] = {}
        self._leverage: dict[str, int] = {}
        self._limiter = RateLimiter(headroom=rate_headroom)
        self._offset_ms = 0
        self.gate = RequestGate(clock, self._limiter, resync=self.sync_time,
                                server_now=self.server_now, policy=retry_policy)
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
        """Sync time, load the symbol rules, refuse hedge mode, set ISOLATED, and the leverage
        of the symbols that are flat (an open position keeps the leverage it was opened with:
        a restart with other settings never changes it)."""
        if self._client is None:
            self._client = self._make_client()
        await self.sync_time()
        info = await self._call("exchange info", self.client.futures_exchange_info)
        try:
            self._rules = codec.rules_from_exchange_info(info, symbols)
        except KeyError as exc:
            raise SetupRefused(exc.args[0], "TRADEBOT_SYMBOLS") from exc
        self._limiter.set_limits(RateLimits.from_exchange_info(info.get("rateLimits", [])))
        mode = await self._call("position mode", self.client.futures_get_position_mode)
        if codec.flag(mode.get("dualSidePosition")):
            logger.error("refusing to trade: {}", HEDGE_MODE_MESSAGE)
            raise SetupRefused(HEDGE_MODE_MESSAGE, "BINANCE_API_KEY (the account's position mode)")
        held = {symbol for symbol in symbols if (await self.position(symbol)).quantity != 0}
        for symbol in symbols:
            await self._set_isolated(symbol)
            if symbol in held:
                logger.info("leverage left as it is: a position is open symbol={}", symbol)
            else:
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
            outcome = classify(exc, sending=False).outcome
            if outcome is Outcome.NOOP:          # already ISOLATED
                return
            if outcome is not Outcome.SKIPPED:   # anything but "a position is open"
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

    async def refresh_rules(self) -> list[str]:
        """Re-read exchangeInfo; returns one line per symbol whose rules changed."""
        info = await self._call("exchange info", self.client.futures_exchange_info)
        fresh = codec.rules_from_exchange_info(info, list(self._rules))
        changes = [f"{symbol}: {describe_rules_change(self._rules[symbol], rules)}"
                   for symbol, rules in fresh.items() if rules != self._rules[symbol]]
        self._rules = fresh
        for line in changes:
            logger.warning("binance symbol rules changed {}", line)
        return changes

    def circuit(self) -> CircuitState:
        return self.gate.circuit()

    def on_stream_reconnect(self, callback: Callable[[], None]) -> None:
        self.streams.on_reconnect.append(callback)

    # --- the one place requests are sent ------------------------------------------------
    def server_now(self) -> datetime:
        return self._clock.now() + timedelta(milliseconds=self._offset_ms)

    async def sync_time(self) -> None:
        """Measure the server clock offset python-binance adds to request timestamps."""
        before = time.time()
        raw = await self._call("server time", self.client.futures_time)
        local_ms = int((before + time.time()) / 2 * 1000)
        server_ms = Fields(raw, "GET /fapi/v1/time").number("serverTime")
        self._offset_ms = int(server_ms) - local_ms
        self.client.timestamp_offset = self._offset_ms
        logger.info("binance time synced offset_ms={}", self._offset_ms)

    async def _call(self, action: str, method: Callable[..., Awaitable[Any]], *,
                    sending: bool = False, orders: int = 0, weight: int = 1,
                    **params: Any) -> Any:
        """One request through the gate (circuit, pacing, retries; trader/exchange/gate.py),
        its failure translated into ExchangeError / UnknownOutcome."""
        async def one_request() -> Any:
            try:
                result = await method(**dict(params))
            except BinanceAPIException as exc:
                self._observe(exc.response)
                raise self._translate(exc, sending) from exc
            except TRANSPORT_ERRORS as exc:
                logger.warning("binance {} outcome unknown error={!r}", action, exc)
                raise UnknownOutcome(f"{action}: {exc!r}") from exc
            self._observe(self.client.response)
            return result
        return await self.gate.send(action, one_request, weight=weight, orders=orders,
                                    idempotent=not sending)

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
            self._limiter.observe(headers, self.server_now())

    # --- orders ------------------------------------------------------------------------
    async def place(self, request: OrderRequest) -> Order:
        """Send one order; the order as Binance answered it.

        Raises ExchangeError for a refusal, UnknownOutcome when the request may have reached
        the matching engine without a readable answer (timeout, 5xx, or an answer that
        cannot be read: the order may exist, so the executor probes by client id).
        """
        context = f"symbol={request.symbol} client_id={request.client_id} role={request.role}"
        algo = request.type.conditional
        endpoint = codec.NEW_ALGO if algo else codec.NEW_ORDER
        try:
            if algo:
                raw = await self._call(f"place algo order {context}",
                                       self.client.futures_create_algo_order, sending=True,
                                       orders=1, **binance_requests.algo_params(request))
            else:
                raw = await self._call(f"place order {context}",
                                       self.client.futures_create_order, sending=True,
                                       orders=1, **binance_requests.order_params(request))
        except ExchangeError as exc:
            logger.warning("binance place rejected {} code={} msg={}", context, exc.code,
                           exc.message)
            raise
        try:
            order = codec.order_from_algo(raw, endpoint) if algo \
                else codec.order_from_plain(raw, endpoint)
        except MalformedResponse as exc:
            logger.error("binance place answer unreadable {}: the order may exist, probing "
                         "error={}", context, exc)
            raise UnknownOutcome(f"{context}: {exc.message}") from exc
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
        """Cancel by client id (one DELETE); the order's state when the answer carries it.

        None when Binance knows no such live order (-2011/-2013), and when it acknowledged
        the cancel without the order's state: DELETE /fapi/v1/algoOrder answers only
        {algoId, clientAlgoId, code, msg} (.../trade/rest-api/Cancel-Algo-Order). Either way
        the caller reads the order back (Executor.cancel_and_verify does). DELETE
        /fapi/v1/order answers the whole order (.../trade/rest-api/Cancel-Order); should
        that answer be unreadable, the cancel still stands and None is returned.
        """
        order = await self._one_order("cancel", symbol, client_id)
        logger.info("binance cancel symbol={} client_id={} result={}", symbol, client_id,
                    order.status if order else "no order state in the answer")
        return order

    async def _one_order(self, verb: str, symbol: str, client_id: str) -> Order | None:
        """GET or DELETE one order on the API its client id names; None if Binance has none."""
        for algo in self._uses_algo_api(client_id):
            try:
                raw = await self._call(f"{verb} order symbol={symbol} client_id={client_id} "
                                       f"algo={algo}", self._order_method(verb, algo),
                                       **self._order_key(symbol, client_id, algo))
                order = self._read_order(verb, algo, raw)
            except ExchangeError as exc:
                if _unknown_order(exc):
                    continue
                raise
            if order is not None:
                self._remember(order, raw)
            return order
        return None

    def _order_method(self, verb: str, algo: bool) -> Callable[..., Awaitable[Any]]:
        client = self.client
        if algo:
            return client.futures_get_algo_order if verb == "query" \
                else client.futures_cancel_algo_order
        return client.futures_get_order if verb == "query" else client.futures_cancel_order

    @staticmethod
    def _order_key(symbol: str, client_id: str, algo: bool) -> dict[str, str]:
        return {"clientAlgoId": client_id} if algo else {"symbol": symbol,
                                                          "origClientOrderId": client_id}

    @staticmethod
    def _read_order(verb: str, algo: bool, raw: Any) -> Order | None:
        """The order an answer carries; None for a cancel answered without a readable order
        (an acknowledgement: the cancel stands, the caller reads the order back)."""
        if verb == "query":
            return codec.order_from_algo(raw) if algo else codec.order_from_plain(raw)
        try:
            return codec.algo_cancel_result(raw) if algo \
                else codec.order_from_plain(raw, codec.CANCEL_ORDER)
        except MalformedResponse as exc:
            logger.warning("binance cancel accepted but its answer is unreadable error={}", exc)
            return None

    async def open_orders(self, symbol: str) -> list[Order]:
        """All live orders on the symbol, plain and conditional; orders of types this agent
        never places are OrderType.OTHER. A row that cannot be read is logged and left
        out: the sentinel then sees that leg missing and re-protects (never "protected"
        on an order we could not read)."""
        plain = await self._call("open orders", self.client.futures_get_open_orders,
                                 symbol=symbol)
        algos = await self._call("open algo orders", self.client.futures_get_open_algo_orders,
                                 symbol=symbol)
        orders = self._read_rows(plain, codec.OPEN_ORDERS,
                                 lambda raw: codec.order_from_plain(raw, codec.OPEN_ORDERS))
        orders += self._read_rows(algos, codec.OPEN_ALGO_ORDERS,
                                  lambda raw: codec.order_from_algo(raw, codec.OPEN_ALGO_ORDERS))
        return [order for order in orders if order.status.live]

    @staticmethod
    def _read_rows(rows: Any, where: str, read: Callable[[Any], T]) -> list[T]:
        """Each readable row of an array answer; unreadable rows are logged and skipped."""
        values = []
        for raw in codec.rows_of(rows, where):
            try:
                values.append(read(raw))
            except MalformedResponse as exc:
                logger.warning("binance {} row left out: {}", where, exc)
        return values

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
        """Our trades since `since` (GET /fapi/v1/userTrades). Its rows carry orderId but no
        client id: each fill gets the client id learnt for its orderId; an order not seen
        yet is asked for once (GET /fapi/v1/order?orderId=), which is how the client id of
        an order Binance placed itself ("autoclose-...", "adl_autoclose") reaches the engine
        without the user-data stream. "" when Binance has no such order."""
        rows = await self._call("user trades", self.client.futures_account_trades, weight=5,
                                symbol=symbol, startTime=to_ms(since), limit=1000)
        fills = self._read_rows(rows, codec.USER_TRADES,
                                lambda raw: codec.fill_from_trade(raw, ""))
        for order_id in sorted({fill.order_id for fill in fills} - {"", "0"}
                               - self._client_ids.keys()):
            await self._learn_client_id(symbol, order_id)
        return [replace(fill, client_id=self._client_ids.get(fill.order_id, ""))
                for fill in fills]

    async def _learn_client_id(self, symbol: str, order_id: str) -> None:
        try:
            raw = await self._call(f"query order symbol={symbol} order_id={order_id}",
                                   self.client.futures_get_order, symbol=symbol,
                                   orderId=order_id)
            client_id = codec.order_from_plain(raw).client_id
        except ExchangeError as exc:     # MalformedResponse too: the fill stays anonymous
            if not _unknown_order(exc) and not isinstance(exc, MalformedResponse):
                raise
            logger.warning("binance fill of an order we cannot name symbol={} order_id={} "
                           "error={}", symbol, order_id, exc)
            client_id = ""
        self._client_ids[order_id] = client_id

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

    def quote(self, symbol: str, max_age: timedelta) -> Quote | None:
        """The latest book top (<symbol>@bookTicker) and mark price (<symbol>@markPrice@1s)
        from the market streams, None if either is older than `max_age` (streams down, or
        not started: streams=False); then `book_ticker()` / `position()` read REST."""
        return self.streams.quotes.quote(symbol, max_age)

    async def funding_rate(self, symbol: str) -> Decimal:
        raw = await self._call("premium index", self.client.futures_mark_price, symbol=symbol)
        return Fields(raw, "GET /fapi/v1/premiumIndex").number("lastFundingRate")

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """POST /fapi/v1/leverage; the leverage Binance answers is the one remembered (it may
        cap what was asked for a large notional)."""
        raw = await self._call("leverage", self.client.futures_change_leverage, symbol=symbol,
                               leverage=leverage)
        fields = Fields(raw, "POST /fapi/v1/leverage")
        answered = int(fields.number("leverage")) if fields.present("leverage") else leverage
        if answered != leverage:
            logger.warning("binance leverage differs from the request symbol={} asked={} set={}",
                           symbol, leverage, answered)
        self._leverage[symbol] = answered

    # --- listen key (used by the user-data stream) ----------------------------------------
    async def create_listen_key(self) -> str:
        return str(await self._call("create listen key",
                                    self.client.futures_stream_get_listen_key))

    async def keep_alive_listen_key(self, listen_key: str) -> str | None:
        """PUT listenKey; the key Binance says it extended (None if the answer names none).
        A key other than ours means ours expired and the stream must reconnect."""
        answer = await self._call("keep alive listen key", self.client.futures_stream_keepalive,
                                  listenKey=listen_key)
        key = answer.get("listenKey") if isinstance(answer, dict) else None
        return str(key) if key else None

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


def _unknown_order(error: ExchangeError) -> bool:
    """-2011 / -2013: Binance knows no such order (already gone, or never placed)."""
    return classify(error, sending=False).outcome is Outcome.NOOP
