"""/sl met by the exchange's 429 Retry-After: the agent places the new stop by itself when
the wait ends (the old one stays meanwhile), as a /close held back by the circuit does;
the answer's header read '⚠️ Stop-loss: failed' (the /close's reads '⏳ Close: waiting'
since 72e613d). Found by manual play: a /sl during an injected 429 with Retry-After 20."""

from datetime import UTC, datetime
from decimal import Decimal

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import Command, CommandKind

SYMBOL = "BTCUSDT"


async def test_sl_held_back_by_a_retry_after_reads_waiting_not_failed(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            position = agent.engine.positions[SYMBOL]
            asked = (position.stop.trigger_price + position.entry_price) / 2
            fake.inject_fault("POST /fapi/v1/algoOrder", -1003, 429, retry_after=20)
            result = await agent.controller.run(Command(
                CommandKind.SL, "tg:1:99", datetime.now(UTC), symbol=SYMBOL, price=asked,
                source="telegram"))
            text = format_result(CommandKind.SL, result)
            assert not result.ok and result.waiting, text
            assert text.startswith("⏳") and "failed" not in text.splitlines()[0], text
            assert "the old one stays until it is" in text, text
