"""/close of a position opened outside the agent that no tick has adopted yet (the next one
would, within a tick period): the answer was "✅ Close: done · exchange position not tracked
yet; the next tick adopts it", and the position stayed open. The close is what was asked:
the position is adopted there and then, and closed. /shutdown with "flatten" goes the same
way (an untracked position must not survive a flatten).

Found from outside: `tradebot run` against the fake Binance, a position opened in "the
app", /close confirmed before the next tick."""

from decimal import Decimal

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, booted
from trader.commands import ALL_SYMBOLS, CommandKind
from trader.domain import Side


async def test_close_of_a_position_no_tick_adopted_yet_closes_it(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            booted(fake, tmp_path) as agent:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        assert SYMBOL not in agent.engine.positions           # no tick since
        result = await agent.run(CommandKind.CLOSE)
        assert result.ok, result.lines
        assert fake.sim.position(SYMBOL).quantity == 0, result.lines
        assert not fake.sim.open_orders(SYMBOL)
        assert format_result(CommandKind.CLOSE, result).startswith("✅")


async def test_flatten_closes_a_position_no_tick_adopted_yet(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            booted(fake, tmp_path) as agent:
        await fake.open_position_by_hand(SYMBOL, Side.SELL, Decimal("0.1"))
        result = await agent.run(CommandKind.CLOSE, symbol=ALL_SYMBOLS)
        assert result.ok and fake.sim.position(SYMBOL).quantity == 0, result.lines
