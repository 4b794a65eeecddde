"""A position opened by hand on a symbol where the agent traded before: the journal still
holds the old trade's entry fill, and the pickup took it for "the agent's own" under the
old trade's key. It got the old record, CLOSED, with its side (a hand LONG became "the
agent's own SHORT 0.1"), was finalized at once as closed MANUAL, which rewrote the old
trade's exit and PnL and counted a loss, and the hand position stayed on the exchange,
unprotected (adoption on) or still open after a '✅ Close: done' (/close with adoption off).
Found by manual play: /short, /close, then a hand BUY 0.1 and /close."""

from datetime import UTC, datetime
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import Agent, market_up_to_now
from tests.test_first_command_after_boot import booted as agent
from trader.commands import Command, CommandKind, CommandResult
from trader.domain import OrderType, Side

SYMBOL = "BTCUSDT"


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
