"""/sl on a position opened by hand while TRADEBOT_ADOPT_POSITIONS is off: the phone asks
for confirmation (there is a position), then answered 'stop-loss not moved: no open
position', which is false: the LONG is there, without a stop (INVARIANT_NO_STOP says so).
The answer says why the agent does not move it and what to do. Found by manual play."""

from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import market_up_to_now
from tests.test_hand_position_after_a_closed_trade import agent
from trader.commands import Command, CommandKind
from trader.domain import Side

SYMBOL = "BTCUSDT"


async def test_sl_of_a_hand_position_says_it_is_not_managed_not_that_none_is_open(tmp_path):
    from datetime import UTC, datetime

    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with agent(fake, tmp_path, adopt_positions=False) as booted:
            await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
            await booted.engine.tick()
            result = await booted.controller.run(Command(
                CommandKind.SL, "tg:1:5", datetime.now(UTC), symbol=SYMBOL,
                price=Decimal("49000"), source="telegram"))
            text = "\n".join(result.lines)
            assert not result.ok
            assert "no open position" not in text, text
            assert "not managed by the agent" in text and "/close" in text, text
