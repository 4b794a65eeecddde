"""Test helpers around the fake Binance server: settings pointing at it, a started
BinanceExchange, a booted engine on it, order requests for each role, the open orders of a
type, and a loguru capture."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from typing import Any

from loguru import logger

from tests.fakes.binance_server import FakeBinance
from trader.alerter import Alerter
from trader.clock import Clock, SystemClock
from trader.config import Settings, load_settings
from trader.domain import ClientId, OrderRequest, OrderRole, OrderType, Side
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
POSITION_KEY = "lzx81c0"


def settings_for(fake: FakeBinance, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "exchange": "binance", "binance_api_key": fake.api_key,
        "binance_api_secret": fake.api_secret, "binance_futures_url": fake.url,
        "binance_futures_ws_url": fake.ws_url, "symbols": SYMBOL,
        "telegram_bot_token": None, **overrides}
    return load_settings(_env_file=None, **values)


@asynccontextmanager
async def started_exchange(fake: FakeBinance, clock: Clock | None = None,
                           symbols: tuple[str, ...] = (SYMBOL,), leverage: int = 5,
                           settings: Settings | None = None,
                           **kwargs: Any) -> AsyncIterator[BinanceExchange]:
    kwargs.setdefault("streams", False)
    exchange = BinanceExchange(settings or settings_for(fake), clock or SystemClock(),
                               **kwargs)
    try:
        await exchange.start(list(symbols), leverage)
        yield exchange
    finally:
        await exchange.close()


@asynccontextmanager
async def booted_engine(settings: Settings, **exchange_options: Any) -> AsyncIterator[Engine]:
    """The real engine on a BinanceExchange (`exchange_options`: streams, stream_options,
    retry_policy, ...) and a database at `settings.db_path`, booted; closed afterwards."""
    exchange_options.setdefault("streams", False)
    exchange = BinanceExchange(settings, SystemClock(), **exchange_options)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, SystemClock(), Alerter(store))
    try:
        await boot(engine)
        yield engine
    finally:
        await exchange.close()
        store.close()


def client_id(role: OrderRole, seq: int = 1, symbol: str = SYMBOL) -> str:
    return str(ClientId(symbol, POSITION_KEY, role, seq))


def market(side: Side, quantity: str, role: OrderRole = OrderRole.ENTRY, seq: int = 1,
           reduce_only: bool = False, symbol: str = SYMBOL) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, Decimal(quantity),
                        client_id(role, seq, symbol), role, reduce_only=reduce_only)


def limit(side: Side, quantity: str, price: str, seq: int = 1) -> OrderRequest:
    return OrderRequest(SYMBOL, side, OrderType.LIMIT, Decimal(quantity),
                        client_id(OrderRole.ENTRY, seq), OrderRole.ENTRY, price=Decimal(price))


def stop_loss(side: Side, stop: str, quantity: str = "0", seq: int = 1,
              close_position: bool = True) -> OrderRequest:
    return OrderRequest(SYMBOL, side, OrderType.STOP_MARKET, Decimal(quantity),
                        client_id(OrderRole.STOP_LOSS, seq), OrderRole.STOP_LOSS,
                        trigger_price=Decimal(stop), close_position=close_position,
                        reduce_only=not close_position)


def take_profit(side: Side, stop: str, quantity: str, seq: int = 1) -> OrderRequest:
    return OrderRequest(SYMBOL, side, OrderType.TAKE_PROFIT_MARKET, Decimal(quantity),
                        client_id(OrderRole.TAKE_PROFIT, seq), OrderRole.TAKE_PROFIT,
                        trigger_price=Decimal(stop), reduce_only=True)


@contextmanager
def captured_logs(level: str = "INFO") -> Iterator[list[str]]:
    messages: list[str] = []
    handler = logger.add(lambda message: messages.append(message.record["message"]),
                         level=level)
    try:
        yield messages
    finally:
        logger.remove(handler)


def live_ids(fake: FakeBinance, order_type: OrderType, symbol: str = SYMBOL) -> list[str]:
    """Client ids of the fake's open orders of `order_type` on `symbol`, oldest first."""
    return [o.client_id for o in fake.sim.open_orders(symbol) if o.type is order_type]


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll `condition` every 10 ms until it holds or `timeout` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
