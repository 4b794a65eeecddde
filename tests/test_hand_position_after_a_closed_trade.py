"""A position opened by hand on a symbol where the agent traded before: the journal still
holds the old trade's entry fill, and the pickup took it for "the agent's own" under the
old trade's key. It got the old record, CLOSED, with its side (a hand LONG became "the
agent's own SHORT 0.1"), was finalized at once as closed MANUAL, which rewrote the old
trade's exit and PnL and counted a loss, and the hand position stayed on the exchange,
unprotected (adoption on) or still open after a '✅ Close: done' (/close with adoption off).
Found by manual play: /short, /close, then a hand BUY 0.1 and /close."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fakes.binance_harness import settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import Agent, market_up_to_now
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.commands import Command, CommandKind, CommandResult
from trader.control import Controller
from trader.domain import OrderType, Side
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.market.live import ExchangeFeed
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"


@asynccontextmanager
async def agent(fake: FakeBinance, tmp_path: Path, **env: Any) -> AsyncIterator[Agent]:
    settings = settings_for(fake, db_path=tmp_path / "t.db", **env)
    exchange = BinanceExchange(settings, SystemClock(), streams=False)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, SystemClock(), Alerter(store))
    try:
        await boot(engine)
        booted = Agent(Controller(engine), ExchangeFeed(exchange, engine.symbols,
                                                        settings.interval))
        await booted.poll_feed()
        yield booted
    finally:
        await exchange.close()
        store.close()


async def close(booted: Agent, message_id: int) -> CommandResult:
    return await booted.controller.run(Command(CommandKind.CLOSE, f"tg:1:{message_id}",
                                               datetime.now(UTC), symbol=SYMBOL,
                                               source="telegram"))


async def a_short_opened_and_closed(booted: Agent) -> tuple[object, Decimal | None]:
    assert (await booted.run(CommandKind.SHORT)).ok
    assert (await close(booted, 90)).ok
    [trade] = booted.engine.store.closed_positions()
    return trade.close_reason, trade.exit_price


async def test_a_hand_long_after_a_closed_short_is_adopted_as_a_long_and_protected(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with agent(fake, tmp_path) as booted:
            before = await a_short_opened_and_closed(booted)
            await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
            await booted.engine.tick()
            position = booted.engine.positions.get(SYMBOL)
            assert position is not None and position.side is Side.BUY, position
            stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
            assert [o.side for o in stops] == [Side.SELL], stops
            [trade] = booted.engine.store.closed_positions()
            assert (trade.close_reason, trade.exit_price) == before


async def test_close_of_a_hand_long_after_a_closed_short_closes_it(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with agent(fake, tmp_path, adopt_positions=False) as booted:
            before = await a_short_opened_and_closed(booted)
            await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
            await booted.engine.tick()
            result = await close(booted, 91)
            assert fake.sim.position(SYMBOL).quantity == 0, result.lines
            assert result.ok, result.lines
            first = booted.engine.store.closed_positions()[0]
            assert (first.close_reason, first.exit_price) == before


async def test_an_untracked_position_left_alone_is_one_warning_not_one_per_tick(tmp_path):
    """/logs shows the last warnings: one 'left alone' line per tick (every 2 s) pushed
    everything else out of it. Once per position; the invariant monitor alerts."""
    from loguru import logger

    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
            await market_up_to_now(fake)
            async with agent(fake, tmp_path, adopt_positions=False) as booted:
                await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
                for _ in range(5):
                    await booted.engine.tick()
                await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
                await booted.engine.tick()
                await booted.engine.tick()
    finally:
        logger.remove(sink)
    alone = [m for m in warnings if "untracked position left alone" in m]
    assert alone == ["untracked position left alone symbol=BTCUSDT qty=0.1",
                     "untracked position left alone symbol=BTCUSDT qty=0.2"], warnings
