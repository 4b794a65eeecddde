"""The Exchange protocol on Binance USD-M futures, through python-binance's AsyncClient.

`BinanceExchange` assembles the adapter's parts, and does the plain account and market
reads (position, balance, funding history, klines, book ticker, funding rate) itself:

    binance_rest.py      the one place requests are sent: the gate (circuit, pacing,
                         retries), errors -> ExchangeError / UnknownOutcome, server time
    binance_orders.py    place, query, cancel, probe, open orders, fills by client id
    binance_account.py   symbol rules, one-way mode, ISOLATED margin, leverage, listenKey
    binance_streams.py   the websockets (user data, klines, book tops, mark prices)

What is sent is binance_requests.py; answers and events are read by binance_codec.py,
binance_order_codec.py and binance_event_codec.py.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

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
    to_ms,
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
    UnknownOutcome,
)
from trader.exchange.binance_account import BinanceAccount
from trader.exchange.binance_fields import Fields, interval_delta, rows_of
from trader.exchange.binance_orders import BinanceOrders
from trader.exchange.binance_rest import BinanceRest
from trader.exchange.binance_streams import BinanceStreams, StreamOptions
from trader.exchange.gate import RetryPolicy
from trader.logs import register_secret
from trader.symbol_rules import SymbolRules

INCOME_WEIGHT = 30        # GET /fapi/v1/income, whatever the limit
INCOME_PAGE = 1000        # its maximum limit
# The price a fee in BNB is valued with is read at the close, which waits for it (the tick
# with it): one try this long at most, not the client's 10 s with the gate's retries (44 s
# on a hanging read). Not read: the fee is valued later (trader/close_readback.py).
PRICE_READ_SECONDS = 2.0
INCOME_PAGES = 10         # funding: ~21 rows a symbol a week; money moved: every kind, trades too


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
        # Symbols whose leverage may have changed unheard: an ACCOUNT_CONFIG_UPDATE sent
        # while the user-data stream was down is lost; read again at the next position read.
        self._leverage_unheard: set[str] = set()
        self.streams.on_reconnect.append(self._leverage_may_have_changed)
        # When each symbol's leverage was last read again (`_leverage_due`).
        self._leverage_read_at: dict[str, datetime] = {}

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
    def _leverage_may_have_changed(self) -> None:
        self._leverage_unheard = set(self._account.leverage)

    def _leverage_due(self, symbol: str) -> bool:
        """Whether the leverage of a symbol with an open position is read again: while the
        user-data stream is off or down, once every TRADEBOT_RECONCILE_SECONDS (nothing
        would tell a change by hand: its ACCOUNT_CONFIG_UPDATE goes to no socket). One
        symbolConfig read (weight 5) per open position and period while polling, none
        while the stream is live; a flat symbol's leverage is set again at its next entry
        (trader/entry_sender.py `_ensure_leverage`). One that start() could not read (a
        refused symbolConfig) is read on the same cadence: skipped, the position showed the
        configured leverage for good."""
        if self.streaming:
            return False
        now = self._clock.now()
        read_at = self._leverage_read_at.setdefault(symbol, now)
        return now - read_at >= timedelta(seconds=self._settings.reconcile_seconds)

    async def _read_leverage_again(self, symbol: str) -> None:
        """After a stream outage, or while polling (`_leverage_due`): the leverage a change by
        hand may have set meanwhile (on an open position too: Binance applies it to the
        position), from GET /fapi/v1/symbolConfig. A failed read after an outage is tried
        again at the next position read; while polling, at the next period."""
        self._leverage_read_at[symbol] = self._clock.now()
        known = self._account.leverage.get(symbol)
        try:
            leverage = await self._account.read_leverage(symbol)
        except UnknownOutcome as exc:
            logger.warning("leverage not read again symbol={} error={}", symbol, exc)
            return
        if leverage is None:
            return
        self._leverage_unheard.discard(symbol)
        if leverage != known:
            logger.warning("leverage changed unheard (user-data stream down or off) symbol={} "
                           "was={} now={}", symbol, known, leverage)

    async def position(self, symbol: str) -> ExchangePosition:
        if symbol in self._leverage_unheard:
            await self._read_leverage_again(symbol)
        rows = await self._rest.call("position", self.client.futures_position_information,
                                     weight=5, symbol=symbol)
        # 0: not known (never read, or its read failed): the record keeps its own
        held = codec.position_from_risk(rows, symbol, self._account.leverage.get(symbol, 0))
        if held.quantity != 0 and self._leverage_due(symbol):
            await self._read_leverage_again(symbol)
            held = replace(held, leverage=self._account.leverage.get(symbol, 0))
        return held

    async def balance(self) -> Balance:
        return codec.balance_from_account(
            await self._rest.call("account", self.client.futures_account, weight=5))

    async def klines(self, symbol: str, interval: str, start: datetime | None = None,
                     limit: int = 500) -> list[Candle]:
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start is not None:
            params["startTime"] = to_ms(start)
        weight = 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        asked_at = self._rest.server_now()   # Binance answers after: its rows closed by then
        rows = await self._rest.call("klines", self.client.futures_klines, weight=weight,
                                     **params)
        return codec.candles_from_rest(rows_of(rows, codec.KLINES), symbol,
                                       interval_delta(interval), asked_at)

    async def book_ticker(self, symbol: str) -> BookTicker:
        return codec.book_from_ticker(await self._rest.call(
            "book ticker", self.client.futures_orderbook_ticker, weight=2, symbol=symbol))

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
        """Binance's mark price of `symbol`: GET /fapi/v1/premiumIndex with the symbol,
        weight 1, its "markPrice" (https://developers.binance.com/docs/derivatives/
        usds-margined-futures/market-data/rest-api/Mark-Price: "Mark Price and Funding
        Rate", weight "1 with symbol, 10 without"). What our stops trigger on."""
        return codec.mark_from_premium_index(await self._premium_index(symbol))

    async def funding_rate(self, symbol: str) -> Decimal:
        raw = await self._premium_index(symbol)
        return Fields(raw, codec.PREMIUM_INDEX).number("lastFundingRate")

    async def asset_price(self, asset: str) -> Decimal:
        """The index price of <asset>USDT: BNB's price on the spot markets Binance's index
        follows, what a fee charged in BNB is worth (GET /fapi/v1/premiumIndex with a
        symbol, weight 1: https://developers.binance.com/docs/derivatives/
        usds-margined-futures/market-data/rest-api/Mark-Price). An asset with no such
        symbol (BNFCR) is refused by Binance (-1121 Invalid symbol): an ExchangeError.
        Sent once, for PRICE_READ_SECONDS at most: UnknownOutcome past it."""
        raw = await self._premium_index(f"{asset}USDT", timeout=PRICE_READ_SECONDS, once=True)
        return codec.asset_price_from_premium_index(raw)

    async def _premium_index(self, symbol: str, **options: Any) -> Any:
        """GET /fapi/v1/premiumIndex of one symbol (weight 1): the mark (`mark_price`), the
        funding rate (`funding_rate`) and the index price (`asset_price`) all come from it;
        `options` as `BinanceRest.call` takes them."""
        return await self._rest.call("premium index", self.client.futures_mark_price,
                                     symbol=symbol, **options)

    async def funding_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """The FUNDING_FEE rows of the income history from `since` to `until` (`_income`)."""
        return await self._income({"incomeType": codec.FUNDING_FEE},
                                  lambda rows: codec.income_rows(rows, codec.FUNDING_FEE),
                                  since, until)

    async def transfer_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """The USDT moved in or out (deposits, withdrawals, transfers between wallets and
        accounts: binance_codec.MOVE_TYPES) of the income history from `since` to `until`
        (`_income`). Read without incomeType, every kind in one request (weight 30 a page
        whatever the filter; one type per request would cost one request each), the other
        kinds' rows (trades' PnL and commission, funding) filtered out and paged past."""
        return await self._income({}, codec.money_moved_rows, since, until)

    async def _income(self, params: dict[str, Any],
                      wanted: Callable[[list[Any]], list[FundingIncome]],
                      since: datetime, until: datetime) -> list[FundingIncome]:
        """GET /fapi/v1/income with `params`, startTime `since` to endTime `until` (both
        included), the `wanted` rows of each page, oldest first; weight 30 a page of up to
        1000 rows, through the gate (its circuit, pacing and retries). A page that is full
        is followed by one from its latest row on, whatever that row's type (Binance
        answers "startTime + limit" when more rows match: the Binance Link page of the same
        endpoint); rows seen twice are counted once (by tran_id). Unreadable rows are
        logged and skipped (binance_codec); raises ExchangeError / UnknownOutcome like
        every read. https://developers.binance.com/docs/derivatives/usds-margined-futures/
        account/rest-api/Get-Income-History"""
        found: dict[str, FundingIncome] = {}
        start = since
        for _ in range(INCOME_PAGES):
            raw = await self._rest.call(
                "income history", self.client.futures_income_history, weight=INCOME_WEIGHT,
                startTime=to_ms(start), endTime=to_ms(until), limit=INCOME_PAGE, **params)
            rows = rows_of(raw, codec.INCOME)
            found |= {income.tran_id: income for income in wanted(rows)}
            latest = codec.latest_income_time(rows) if len(rows) >= INCOME_PAGE else None
            if latest is None or latest <= start:    # the last page, or no way past it
                break
            start = latest
        else:
            logger.warning("income history cut at {} pages params={} rows={} until={}",
                           INCOME_PAGES, params, len(found), start.isoformat())
        return sorted(found.values(), key=lambda income: (income.time, income.tran_id))

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
