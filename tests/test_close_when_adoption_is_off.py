"""/close of a position opened by hand while TRADEBOT_ADOPT_POSITIONS is off: the answer
was "✅ Close: done · exchange position not managed by the agent ... close it in the Binance
app", and the position stayed open (a silent failure under a green tick). The README sends
the operator to /close for exactly this position (Troubleshooting, INVARIANT_NO_STOP: "for
a position the agent does not track (TRADEBOT_ADOPT_POSITIONS=false), place a stop or
/close it") and says /close closes at market: so an explicit /close closes it, whatever the
setting (the setting is about the agent taking positions over by itself)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted
from trader.commands import ALL_SYMBOLS, Command, CommandKind, CommandResult
from trader.control import Controller
from trader.domain import Side

SYMBOL = "BTCUSDT"


@asynccontextmanager
async def agent_not_adopting(fake: FakeBinance, tmp_path: Path) -> AsyncIterator[Controller]:
    async with booted(fake, tmp_path, adopt_positions=False) as agent:
        yield agent.controller


async def close(controller: Controller, symbol: str, message_id: int = 2) -> CommandResult:
    return await controller.run(Command(CommandKind.CLOSE, f"tg:1:{message_id}",
                                        datetime.now(UTC), symbol=symbol, source="telegram"))


async def test_close_of_a_position_the_agent_does_not_manage_closes_it(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        async with agent_not_adopting(fake, tmp_path) as controller:
            await controller.engine.tick()                   # left alone: the setting
            assert SYMBOL not in controller.engine.positions
            result = await close(controller, SYMBOL)
            text = format_result(CommandKind.CLOSE, result)
            assert fake.sim.position(SYMBOL).quantity == 0, text
            assert result.ok and text.startswith("✅"), text
            assert "closed at" in text, text
            assert not fake.sim.open_orders(SYMBOL), text


async def test_close_all_closes_a_position_the_agent_does_not_manage(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.SELL, Decimal("0.1"))
        async with agent_not_adopting(fake, tmp_path) as controller:
            result = await close(controller, ALL_SYMBOLS)
            assert result.ok and fake.sim.position(SYMBOL).quantity == 0, result.lines
