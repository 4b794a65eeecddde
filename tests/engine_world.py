"""A small world for engine-level tests: the real engine on the paper exchange, a file
database, a manual clock and candles we choose. The only stand-in is the strategy, which
is a plug-in interface by design (users bring their own): `OnDemandStrategy` emits the
signal a test asks for on the next closed candle.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.commands import Command, CommandKind, CommandResult
from trader.config import Settings, load_settings
from trader.control import Controller
from trader.domain import Candle, Order, Side, Signal
from trader.engine import Engine
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.position import Position
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)


@dataclass
class OnDemandStrategy:
    """Emits `next` once, on the next closed candle it is asked about."""
    name: str = "on-demand"
    warmup: int = 25
    next: Signal | None = None
    asked: int = 0

    def signal(self, closed: Any) -> Signal | None:
        self.asked += 1
        signal, self.next = self.next, None
        return signal


def long_signal(sl_pct: str = "0.01", tp_pct: str = "0.02") -> Signal:
    return Signal(Side.BUY, 0.8, Decimal(tp_pct), Decimal(sl_pct), reason="test")


def short_signal(sl_pct: str = "0.01", tp_pct: str = "0.02") -> Signal:
    return Signal(Side.SELL, 0.8, Decimal(tp_pct), Decimal(sl_pct), reason="test")


def settings_for(db: Path, **env: Any) -> Settings:
    values = {"TRADEBOT_SYMBOLS": SYMBOL, "TRADEBOT_DB": str(db), "TRADEBOT_EXCHANGE": "paper",
              "TRADEBOT_SENTINEL_DEBOUNCE_SECONDS": "60", "TRADEBOT_SENTINEL_DEBOUNCE_CYCLES": "3",
              **{k: str(v) for k, v in env.items()}}
    return load_settings(_env_file=None, **values)


@dataclass
class World:
    db_path: Path
    settings: Settings
    clock: ManualClock
    store: TradeStore
    paper: PaperExchange
    engine: Engine
    strategy: OnDemandStrategy
    controller: Controller
    last_close: Decimal = Decimal("100000")
    candles: list[Candle] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.engine.executor.sent_count

    def candle(self, close: Decimal | str | int, high: Any = None, low: Any = None,
               open_: Any = None) -> Candle:
        close = Decimal(str(close))
        open_price = Decimal(str(open_)) if open_ is not None else self.last_close
        top = Decimal(str(high)) if high is not None else max(open_price, close) * Decimal("1.002")
        bottom = Decimal(str(low)) if low is not None else min(open_price, close) * Decimal("0.998")
        at = START + STEP * len(self.candles)
        return Candle(SYMBOL, at, STEP, open_price, top.quantize(Decimal("0.1")),
                      bottom.quantize(Decimal("0.1")), close, Decimal("10"))

    async def step(self, close: Any = None, **kwargs: Any) -> Candle:
        """One closed candle: the market moves (paper), then the engine ticks."""
        candle = self.candle(close if close is not None else self.last_close, **kwargs)
        self.candles.append(candle)
        self.clock.set(candle.close_time)
        self.paper.feed_candle(candle)
        self.engine.on_candle(candle)
        self.last_close = candle.close
        await self.engine.tick()
        # the unit of work's safety net (storage/unit_of_work.py) never fires in the engine
        assert not self.store.unit.warned, "another task touched the tick's transaction"
        return candle

    async def warm_up(self, count: int = 30) -> None:
        for _ in range(count):
            await self.step(self.last_close)

    async def open_orders(self) -> list[Order]:
        return await self.paper.open_orders(SYMBOL)

    def alerts(self, name: str) -> list[str]:
        return [a.text for a in self.store.recent_alerts(200) if a.name == name]

    def hide_order(self, client_id: str) -> Callable[[], None]:
        """The order stays on the exchange but the agent cannot see it: missing from the open
        orders, unknown to a query by client id, the stream down (only polling tells).
        Returns what shows it again (the stream stays down)."""
        listed, probe = self.paper.open_orders, self.paper.order_by_client_id

        async def without_it(symbol: str) -> list[Order]:
            return [o for o in await listed(symbol) if o.client_id != client_id]

        async def nothing_known(symbol: str, asked: str) -> Order | None:
            return None
        self.paper.open_orders = without_it             # type: ignore[method-assign]
        self.paper.order_by_client_id = nothing_known   # type: ignore[method-assign]
        self.paper.stream_live = False

        def show_again() -> None:
            self.paper.open_orders = listed             # type: ignore[method-assign]
            self.paper.order_by_client_id = probe       # type: ignore[method-assign]
        return show_again

    def fill_stop_in_part(self, position: Position) -> Decimal:
        """3/5 of the position's stop-loss fills on the exchange (published as events); the
        part filled."""
        part = (position.quantity * 3 / 5).quantize(Decimal("0.001"))
        self.paper.publish(self.paper.sim.fill_partly(SYMBOL, position.stop.order.client_id,
                                                      part, self.clock.now()))
        return part

    async def command(self, kind: CommandKind, command_id: str | None = None,
                      **fields: Any) -> CommandResult:
        """Send a command the way the bot does; the engine's loop runs it between ticks."""
        command = Command(kind, command_id or f"test:{kind}:{len(self.controller.results)}",
                          self.clock.now(), **fields)
        pending = asyncio.ensure_future(self.controller.execute(command))
        while not pending.done():
            await asyncio.sleep(0)
            await self.controller.process()
        return pending.result()


async def make_world(tmp_path: Path, *, fresh_db: bool = True, **env: Any) -> World:
    db_path = tmp_path / "tradebot.db"
    if fresh_db:
        for name in ("tradebot.db", "exchange.db"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp_path / name}{suffix}").unlink(missing_ok=True)
    settings = settings_for(db_path, **env)
    clock = ManualClock(START)
    store = TradeStore.open(db_path)
    # The paper exchange plays the remote exchange: its state lives in a file of its own,
    # so the agent's disk failing (tests of SAVE_STATE_FAILURE) does not take it down too.
    exchange_store = TradeStore.open(tmp_path / "exchange.db")
    paper = PaperExchange(exchange_store, clock,
                          SimConfig(balance=Decimal("10000"), seed=1, default_leverage=5))
    await paper.start([SYMBOL], settings.leverage)
    strategy = OnDemandStrategy()
    engine = Engine(settings, paper, store, clock, Alerter(store), strategy=strategy)
    return World(db_path, settings, clock, store, paper, engine, strategy, Controller(engine))


def restart(world: World, **env: Any) -> World:
    """A new process on the same database and the same exchange account (the paper
    exchange plays the remote exchange, so it survives the 'restart')."""
    settings = settings_for(world.db_path, **env) if env else world.settings
    store = TradeStore.open(world.db_path)
    strategy = OnDemandStrategy()
    engine = Engine(settings, world.paper, store, world.clock, Alerter(store), strategy=strategy)
    return World(world.db_path, settings, world.clock, store, world.paper, engine, strategy,
                 Controller(engine), world.last_close, world.candles)
