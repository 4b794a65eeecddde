"""The agent's live loop on the fake Binance server, through the real python-binance client,
and a quiet market around it: the harness of rest_budget.py and protection_timing.py.

    async with FakeBinance(prices=PRICES) as fake:
        market = QuietMarket(fake, ["BTCUSDT", "ETHUSDT"])
        await market.seed_history()
        async with market.running(), LiveAgent(fake, folder, ["BTCUSDT", "ETHUSDT"],
                                               streams=True) as agent:
            agent.start_loop()             # trader.agent_loops' live loop, as a task
            ...                            # agent.engine, fake.request_log

`LiveAgent` wires what `tradebot run` wires (trader.app: exchange start, database, engine,
controller, `trader.startup.boot`, then `trader.agent_loops.live_loop`: feed.poll +
controller.process + engine.tick + periodic reconcile, waiting with `engine.wait_next`),
without Telegram (alerts stay in the database's outbox). `streams=False` is the adapter
with its streams switched off: every read is polled over REST.

`QuietMarket` plays Binance's market side for the fake: `<symbol>@markPrice@1s` and
`<symbol>@bookTicker` once a second, and each closed 1m candle (kline stream and REST
klines) at its minute boundary. Prices stay inside a narrow band (+-0.05 %), so the
default strategy never sees a breakout (no entries) and no stop or target triggers: the
figures measure the agent's steady state.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from common import ROOT  # noqa: F401 - puts the repository root on sys.path

from tests.fakes.binance_server import DEFAULT_PRICES, FakeBinance
from trader.agent_loops import live_loop
from trader.agent_services import AgentServices
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.config import Settings, load_settings
from trader.control import Controller
from trader.domain import Candle, Order, OrderType
from trader.engine import Engine
from trader.engine_setup import start_exchange
from trader.exchange.binance import BinanceExchange
from trader.startup import boot
from trader.strategy.base import load_strategy
from trader.trade_store import TradeStore

MINUTE = timedelta(minutes=1)
BAND = Decimal("0.0005")          # the market stays within +-0.05 % of its start price
SWING = Decimal("0.0002")         # candles open/close +-0.02 %: never above the band's high


def default_of(field: str) -> Any:
    """A setting's documented default (trader/config.py), whatever the shell exports."""
    return Settings.model_fields[field].default


def prices_for(symbols: list[str]) -> dict[str, Decimal]:
    return {s: DEFAULT_PRICES.get(s, Decimal("25")) for s in symbols}


def agent_settings(fake: FakeBinance, folder: Path, symbols: list[str],
                   **overrides: Any) -> Settings:
    """Settings pointing at the fake; the loop and protection knobs at their defaults unless
    overridden (passed explicitly so an exported TRADEBOT_* cannot change a figure)."""
    values: dict[str, Any] = {
        "exchange": "binance", "binance_api_key": fake.api_key,
        "binance_api_secret": fake.api_secret, "binance_futures_url": fake.url,
        "binance_futures_ws_url": fake.ws_url, "symbols": ",".join(symbols),
        "db_path": folder / "tradebot.db", "telegram_bot_token": None,
        **{name: default_of(name) for name in (
            "tick_seconds", "reconcile_seconds", "sentinel_debounce_seconds",
            "sentinel_debounce_cycles", "interval", "strategy")},
        **overrides}
    return load_settings(_env_file=None, **values)


class LiveAgent:
    """See the module docstring. `engine`, `controller`, `exchange` once entered. `wal`: the
    database journal; False (a rollback journal) as the live agent has it (trader/engine_setup.py
    build_engine), True to measure what WAL would save."""

    wal = False

    def __init__(self, fake: FakeBinance, folder: Path, symbols: list[str], *, streams: bool,
                 **settings: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = agent_settings(fake, folder, symbols, **settings)
        self.streams = streams
        self.stop_requested = asyncio.Event()
        self.loop_task: asyncio.Task[None] | None = None
        self.loop_started_at: float | None = None

    async def __aenter__(self) -> "LiveAgent":
        clock = SystemClock()
        self.exchange = BinanceExchange(self.settings, clock, streams=self.streams)
        self.store = TradeStore.open(self.settings.db_path, wal=self.wal)
        try:
            await start_exchange(self.exchange, self.settings)
            self.engine = Engine(self.settings, self.exchange, self.store, clock,
                                 Alerter(self.store), load_strategy(self.settings.strategy))
            self.controller = Controller(self.engine)
            await boot(self.engine)
        except BaseException:
            await self.exchange.close()
            self.store.close()
            raise
        return self

    def start_loop(self) -> None:
        """trader.agent_loops' live loop as a task (what `tradebot run` runs after boot)."""
        self.loop_started_at = time.perf_counter()
        services = AgentServices(self.settings, self.engine, replay=False)
        self.loop_task = asyncio.create_task(
            live_loop(self.engine, self.controller, services, self.stop_requested))

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_requested.set()
        if self.loop_task is not None:
            await self.loop_task
        await self.exchange.close()
        self.store.close()


class QuietMarket:
    """See the module docstring."""

    def __init__(self, fake: FakeBinance, symbols: list[str]) -> None:
        self.fake = fake
        self.symbols = symbols
        self.centre = {s: fake.sim.mark_price(s) for s in symbols}
        self.quotes = 0

    def _on_tick(self, symbol: str, price: Decimal) -> Decimal:
        tick = self.fake.sim.rules_for(symbol).tick_size
        return (price / tick).to_integral_value() * tick

    def candle(self, symbol: str, open_time: datetime) -> Candle:
        """The 1m candle of `open_time`: up on even minutes, down on odd ones, in the band."""
        centre = self.centre[symbol]
        up = int(open_time.timestamp() // 60) % 2 == 0
        low_end, high_end = centre * (1 - SWING), centre * (1 + SWING)
        open_, close = (low_end, high_end) if up else (high_end, low_end)
        return Candle(symbol, open_time, MINUTE, self._on_tick(symbol, open_),
                      self._on_tick(symbol, centre * (1 + BAND)),
                      self._on_tick(symbol, centre * (1 - BAND)),
                      self._on_tick(symbol, close), Decimal("10"))

    async def seed_history(self, count: int = 300) -> None:
        """`count` closed candles up to the last minute boundary (REST klines history)."""
        last_open = _minute_floor(self.fake.now()) - MINUTE
        for symbol in self.symbols:
            for back in range(count - 1, -1, -1):
                await self.fake.push_candle(self.candle(symbol, last_open - MINUTE * back))

    async def run(self, stop: asyncio.Event) -> None:
        """Quotes every second; each candle pushed as its minute closes."""
        next_candle_at = _minute_floor(self.fake.now()) + MINUTE
        while not stop.is_set():
            now = self.fake.now()
            if now >= next_candle_at:
                for symbol in self.symbols:
                    await self.fake.push_candle(self.candle(symbol, next_candle_at - MINUTE))
                next_candle_at += MINUTE
            for symbol in self.symbols:
                await self.fake.move_price(symbol, self._quote_price(symbol, now))
            self.quotes += 1
            wait = min(1.0, (next_candle_at - self.fake.now()).total_seconds())
            try:
                await asyncio.wait_for(stop.wait(), max(wait, 0.0))
            except TimeoutError:
                continue

    def _quote_price(self, symbol: str, now: datetime) -> Decimal:
        wiggle = SWING if now.second % 2 else -SWING
        return self._on_tick(symbol, self.centre[symbol] * (1 + wiggle))

    @asynccontextmanager
    async def running(self) -> AsyncIterator["QuietMarket"]:
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        try:
            yield self
        finally:
            stop.set()
            await task


def _minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0, tzinfo=moment.tzinfo or UTC)


def protective_orders(fake: FakeBinance, symbol: str) -> list[Order]:
    """The stop-loss and take-profit orders live on the fake's matching engine."""
    return [o for o in fake.sim.open_orders(symbol)
            if o.type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)]


async def wait_for(condition: Callable[[], bool], timeout: float, poll: float = 0.002,
                   what: str = "condition") -> float:
    """Seconds until `condition()` holds (checked every `poll` s); TimeoutError after
    `timeout` s, naming `what`."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(poll)
    return time.perf_counter() - started
