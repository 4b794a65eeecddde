"""The first commands after start-up: `tradebot run` runs the commands queued while it booted
(and while it read the pinned state, up to 15 s) before its first tick, and answers
/balance and /status from its view at once. So the boot itself reads the balance: a /long
sent as soon as the agent says it started must enter, not answer "the balance was not read
from the exchange yet; try again in a minute", and /balance must show the wallet.

Found from outside: the real agent against the fake Binance and Telegram, /long confirmed
right after "boot reconciliation done". Here the same order of steps as trader/app.py's live
loop (boot, feed poll, commands, then the first tick), on the Binance adapter."""

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.chaos.market import Market
from tests.fakes.binance_harness import settings_for
from tests.fakes.binance_server import FakeBinance
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.commands import Command, CommandKind
from trader.control import Controller
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.market.live import ExchangeFeed
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"


@asynccontextmanager
async def booted(fake: FakeBinance, tmp_path) -> AsyncIterator[Controller]:  # type: ignore[no-untyped-def]
    """An agent as `tradebot run` has it after boot and its first feed poll, before its
    first tick."""
    settings = settings_for(fake, db_path=tmp_path / "t.db")
    exchange = BinanceExchange(settings, SystemClock(), streams=False)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, SystemClock(), Alerter(store))
    try:
        await boot(engine)
        feed = ExchangeFeed(exchange, engine.symbols, settings.interval)
        for candle in await feed.poll(engine.clock.now()):
            engine.on_candle(candle)
        yield Controller(engine)
    finally:
        await exchange.close()
        store.close()


async def run(controller: Controller, kind: CommandKind):  # type: ignore[no-untyped-def]
    command = Command(kind, f"tg:1:{kind.value}", datetime.now(UTC), symbol=SYMBOL,
                      source="telegram")
    if not kind.mutating:
        return await controller.execute(command)
    return await controller.run(command)      # what process() does with the queued command


async def test_balance_right_after_boot_shows_the_wallet(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            booted(fake, tmp_path) as controller:
        result = await run(controller, CommandKind.BALANCE)
        assert result.balance is not None, result.lines
        assert result.balance.wallet > 0


async def test_long_right_after_boot_enters_with_its_stop(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        market = Market(fake, random.Random(3), SYMBOL, history=timedelta(minutes=60))
        for _ in range(58):
            await market.push()                 # closed candles up to about now
        async with booted(fake, tmp_path) as controller:
            result = await run(controller, CommandKind.LONG)
            assert result.ok, result.lines
            position = controller.engine.positions[SYMBOL]
            assert position.state is PositionState.PROTECTED
            assert fake.sim.position(SYMBOL).quantity > 0
