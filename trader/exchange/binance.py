"""The Exchange protocol on Binance USD-M futures, through python-binance's AsyncClient.

`BinanceExchange` assembles the adapter's parts, and reads the position and the balance
itself:

    binance_rest.py      the one place requests are sent: the gate (circuit, pacing,
                         retries), errors -> ExchangeError / UnknownOutcome, server time
    binance_orders.py    place, query, cancel, probe, open orders, fills by client id
    binance_account.py   symbol rules, one-way mode, ISOLATED margin, leverage, listenKey
    binance_leverage_watch.py   a leverage changed by hand that no stream told, read again
    binance_market.py    klines, book ticker, mark price, funding rate, an asset's price
    binance_income.py    the income history: funding paid, money moved in or out
    binance_streams.py   the websockets (user data, klines, book tops, mark prices)

What is sent is binance_requests.py; answers and events are read by binance_codec.py,
binance_order_codec.py and binance_event_codec.py.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from binance import AsyncClient
from loguru import logger

from trader.clock import Clock
from trader.config import Settings
from trader.config_hosts import MAINNET_STREAMS, TESTNET_STREAMS
from trader.domain import (
    Balance,
    BookTicker,
    Candle,
    ExchangePosition,
    Fill,
    Order,
    OrderRequest,
)
from trader.exchange import binance_codec as codec
from trader.exchange.base import (
    AccountUpdate,
    CircuitState,
    ExchangeEvent,
    FundingIncome,
    LeverageChanged,
    MultiAssetsMode,
    OrderUpdate,
    Quote,
)
from trader.exchange.binance_account import BinanceAccount
from trader.exchange.binance_income import read_income
from trader.exchange.binance_leverage_watch import LeverageWatch
from trader.exchange.binance_market import BinanceMarket
from trader.exchange.binance_orders import BinanceOrders
from trader.exchange.binance_rest import BinanceRest
from trader.exchange.binance_streams import BinanceStreams, StreamOptions
from trader.exchange.gate import RetryPolicy
from trader.logs import register_secret
from trader.symbol_rules import SymbolRules


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
        self._rest = BinanceRest(clock, rate_headroom=rate_headroom, retry_policy=retry_policy)
        self.gate = self._rest.gate
        self.rest_answers = self.gate.answers   # is REST answering: trader/health.py
        self._orders = BinanceOrders(self._rest)
        self._account = BinanceAccount(self._rest)
        self.streams = BinanceStreams(self.stream_base_url, self, clock,
                                      self._stream_options)
        self._market = BinanceMarket(self._rest)
        self._leverage = LeverageWatch(self._account, self.streams, clock,
                                       timedelta(seconds=settings.reconcile_seconds))
        self.streams.on_reconnect.append(self._leverage.stream_reconnected)

    # --- lifecycle -------------------------------------------------------------------
    @property
    def client(self) -> AsyncClient:
        return self._rest.client

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
    def clock_offset_ms(self) -> int:
        """Binance's clock minus the host's, as last measured (GET /fapi/v1/time at start
        and after a -1021): trader/exchange/base.py `clock_offset`."""
        return self._rest.offset_ms

    @property
    def stream_base_url(self) -> str:
        if self._settings.binance_futures_ws_url:
            return self._settings.binance_futures_ws_url
        return TESTNET_STREAMS if self._settings.binance_testnet else MAINNET_STREAMS

    async def start(self, symbols: list[str], leverage: int) -> None:
        """Sync time, load the symbol rules, refuse hedge mode, set ISOLATED, and the leverage
        of the symbols that are flat (an open position keeps the leverage it was opened with:
        a restart with other settings never changes it). Raises SetupRefused
        (binance_account.py) for hedge mode or a symbol Binance doesn't list. Multi-Assets
        mode (ISOLATED refused, -4168) is no refusal: the margin types stay as they are and
        the engine, which reads the mode at boot, takes no entry while it lasts
        (trader/margin_watch.py): the positions open keep their protection.

        A symbol listed with a status other than TRADING (a delisted perpetual reads
        SETTLING) keeps its margin type and leverage as they are: it takes no entry (the
        engine alerts it, trader/housekeeping.py), and Binance's docs do not say whether
        it accepts those settings for it; a refusal would keep every symbol from starting."""
        if not self._rest.connected:
            self._rest.connect(self._make_client())
        await self._rest.sync_time()
        await self._account.load_rules(symbols)
        await self._account.refuse_hedge_mode()
        held = {symbol for symbol in symbols if (await self.position(symbol)).quantity != 0}
        await self._set_up_symbols(symbols, held, leverage)
        logger.info("binance ready symbols={} leverage={} testnet={} offset_ms={}",
                    ",".join(symbols), leverage, self._settings.binance_testnet,
                    self._rest.offset_ms)
        if self._streams_enabled:
            self.streams.start(symbols, self._settings.interval)

    async def _set_up_symbols(self, symbols: list[str], held: set[str], leverage: int) -> None:
        """ISOLATED and `leverage` on each of `symbols`; those in `held` (a position open)
        keep their leverage, read back. In Multi-Assets mode no margin type is asked for."""
        multi_assets = False
        for symbol in symbols:
            if symbol in held:        # its leverage stays: learn it (positionRisk v3 has none)
                await self._account.read_leverage(symbol)
            if not self.rules(symbol).tradable:
                logger.warning("symbol not trading: margin type and leverage left as they are "
                               "symbol={} status={}", symbol, self.rules(symbol).status)
                continue
            if not multi_assets:
                multi_assets = await self._isolated_at_start(symbol)
            if symbol in held:
                logger.info("leverage left as it is: a position is open symbol={} leverage={}",
                            symbol, self._account.leverage.get(symbol, "unknown"))
            else:
                await self.set_leverage(symbol, leverage)

    async def _isolated_at_start(self, symbol: str) -> bool:
        """ISOLATED on `symbol`; True when Binance refused it for Multi-Assets mode."""
        try:
            await self._account.set_isolated(symbol)
        except MultiAssetsMode:
            logger.error("account in Multi-Assets mode (cross margin only): margin types left "
                         "as they are, no entries until it is switched off symbol={}", symbol)
            return True
        return False

    async def close(self) -> None:
        await self.streams.stop()
        await self._rest.close()

    def rules(self, symbol: str) -> SymbolRules:
        return self._account.rules[symbol]

    async def refresh_rules(self) -> list[str]:
        """Re-read exchangeInfo; returns one line per symbol whose rules changed."""
        return await self._account.refresh_rules()

    async def ping(self) -> None:
        """One GET /fapi/v1/ping: does REST answer (during an outage: exchange_health.py)."""
        await self._account.ping()

    async def learn_rules(self, symbol: str) -> bool:
        return await self._account.learn_rules(symbol)

    def circuit(self) -> CircuitState:
        return self.gate.circuit()

    def on_circuit_open(self, callback: Callable[[CircuitState], None]) -> None:
        self.gate.on_open(callback)

    def restore_circuit(self, circuit: CircuitState) -> None:
        self.gate.restore(circuit)

    def doubt_stream(self) -> None:
        """One PUT of the listenKey now (binance_user_stream.py `UserDataStream.doubt`)."""
        if self.streams.user is not None:
            self.streams.user.doubt()

    def on_stream_reconnect(self, callback: Callable[[], None]) -> None:
        self.streams.on_reconnect.append(callback)

    def rate_usage(self) -> dict[str, int]:
        return self._rest.limiter.usage()

    # --- orders (binance_orders.py) ---------------------------------------------------
    async def place(self, request: OrderRequest) -> Order:
        """See BinanceOrders.place: ExchangeError for a refusal, UnknownOutcome when the
        order may exist without a readable answer."""
        return await self._orders.place(request)

    async def order_by_client_id(self, symbol: str, client_id: str) -> Order | None:
        return await self._orders.order_by_client_id(symbol, client_id)

    async def cancel(self, symbol: str, client_id: str) -> Order | None:
        """See BinanceOrders.cancel: None when Binance has no such live order or answered
        without the order's state (the caller reads it back)."""
        return await self._orders.cancel(symbol, client_id)

    async def open_orders(self, symbol: str) -> list[Order]:
        return await self._orders.open_orders(symbol)

    async def fills(self, symbol: str, since: datetime) -> list[Fill]:
        """Our trades since `since`, each under its order's client id (BinanceOrders.fills)."""
        return await self._orders.fills(symbol, since)

    # --- account and market reads --------------------------------------------------------
    async def position(self, symbol: str) -> ExchangePosition:
        """The position's row (GET /fapi/v3/positionRisk) with the leverage the symbol has;
        one whose leverage may have changed unheard is read again first
        (binance_leverage_watch.py)."""
        watch = self._leverage
        if symbol in watch.unheard:
            await watch.read_again(symbol)
        rows = await self._rest.call("position", self.client.futures_position_information,
                                     weight=5, symbol=symbol)
        # 0: not known (never read, or its read failed): the record keeps its own
        held = codec.position_from_risk(rows, symbol, self._account.leverage.get(symbol, 0))
        if held.quantity != 0 and watch.due(symbol):
            await watch.read_again(symbol)
            held = replace(held, leverage=self._account.leverage.get(symbol, 0))
        return held

    async def balance(self) -> Balance:
        return codec.balance_from_account(
            await self._rest.call("account", self.client.futures_account, weight=5))

    async def klines(self, symbol: str, interval: str, start: datetime | None = None,
                     limit: int = 500) -> list[Candle]:
        return await self._market.klines(symbol, interval, start, limit)

    async def book_ticker(self, symbol: str) -> BookTicker:
        return await self._market.book_ticker(symbol)

    def quote(self, symbol: str, max_age: timedelta) -> Quote | None:
        """The latest book top (<symbol>@bookTicker) and mark price (<symbol>@markPrice@1s)
        from the market streams, None if either is older than `max_age` (streams down, or
        not started: streams=False); then `book_ticker()` / `position()` read REST."""
        return self.streams.quotes.quote(symbol, max_age)

    def pushed_book(self, symbol: str, max_age: timedelta) -> BookTicker | None:
        """The book top <symbol>@bookTicker pushed within `max_age`, whatever the mark's age."""
        return self.streams.quotes.book(symbol, max_age)

    def pushed_mark(self, symbol: str, max_age: timedelta) -> Decimal | None:
        """The mark <symbol>@markPrice@1s pushed within `max_age`, whatever the book's age:
        the book-ticker stream may stay quiet for minutes while the mark moves."""
        pushed = self.streams.quotes.mark(symbol, max_age)
        return pushed.mark if pushed is not None else None

    def pushed_funding_rate(self, symbol: str, max_age: timedelta) -> Decimal | None:
        """The "r" of the mark pushed within `max_age` (None: none pushed, or "")."""
        pushed = self.streams.quotes.mark(symbol, max_age)
        return pushed.funding_rate if pushed is not None else None

    async def mark_price(self, symbol: str) -> Decimal:
        """Binance's mark price (binance_market.py `mark_price`): what our stops trigger on."""
        return await self._market.mark_price(symbol)

    async def funding_rate(self, symbol: str) -> Decimal:
        return await self._market.funding_rate(symbol)

    async def asset_price(self, asset: str) -> Decimal:
        """The index price of <asset>USDT, one try of PRICE_READ_SECONDS at most
        (binance_market.py `asset_price`)."""
        return await self._market.asset_price(asset)

    async def funding_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """The FUNDING_FEE rows of the income history from `since` to `until`
        (binance_income.py)."""
        return await read_income(self._rest, {"incomeType": codec.FUNDING_FEE},
                                 lambda rows: codec.income_rows(rows, codec.FUNDING_FEE),
                                 since, until)

    async def transfer_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """The USDT moved in or out (deposits, withdrawals, transfers between wallets and
        accounts: binance_codec.MOVE_TYPES) of the income history from `since` to `until`
        (binance_income.py). Read without incomeType, every kind in one request (weight 30 a
        page whatever the filter; one type per request would cost one request each), the
        other kinds' rows (trades' PnL and commission, funding) filtered out and paged past."""
        return await read_income(self._rest, {}, codec.money_moved_rows, since, until)

    # --- account settings (binance_account.py) ----------------------------------------
    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """POST /fapi/v1/leverage; remembers the leverage Binance answers."""
        await self._account.set_leverage(symbol, leverage)

    async def set_isolated_margin(self, symbol: str) -> None:
        """POST /fapi/v1/marginType ISOLATED (-4046 "no need to change": success);
        MultiAssetsMode for -4168 (binance_account.py `set_isolated`)."""
        await self._account.set_isolated(symbol)

    async def multi_assets_mode(self) -> bool:
        """GET /fapi/v1/multiAssetsMargin (weight 30)."""
        return await self._account.multi_assets_mode()

    async def create_listen_key(self) -> str:
        return await self._account.create_listen_key()

    async def keep_alive_listen_key(self, listen_key: str) -> str | None:
        """PUT listenKey; the key Binance says it extended (None if the answer names none)."""
        return await self._account.keep_alive_listen_key(listen_key)

    # --- push side (binance_streams.py) -----------------------------------------------------
    def drain_events(self) -> list[ExchangeEvent]:
        return [self._complete(event) for event in self.streams.events.drain()]

    def _complete(self, event: ExchangeEvent) -> ExchangeEvent:
        """Learn order ids for fills(); give ACCOUNT_UPDATE positions the leverage the
        symbol has (the one we set, or the one it was changed to since)."""
        if isinstance(event, OrderUpdate):
            if event.child_order_id:
                self._orders.remember_child(event.child_order_id, event.order.client_id)
            event = self._orders.children.as_algo_order(event)
            self._orders.remember_stream_order(event.order)
            return event
        if isinstance(event, LeverageChanged):
            self._account.leverage[event.symbol] = event.leverage
            return event
        if not isinstance(event, AccountUpdate):
            return event
        positions = [replace(p, leverage=self._account.leverage.get(p.symbol, p.leverage))
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
