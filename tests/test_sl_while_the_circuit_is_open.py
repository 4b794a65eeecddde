"""/sl while the request gate's circuit is open (a 429 with Retry-After on a read, before
the command came): the answer said "sl failed: command sl: CircuitOpen: ..." (the
command's boundary, for an unexpected error) instead of what happened and what to do.
Found by the chaos run's stop moves (tests/chaos/stop_moves.py): a /sl during a read-429."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import Command, CommandKind
from trader.exchange.base import ExchangeError

SYMBOL = "BTCUSDT"


async def test_sl_while_the_circuit_is_open_says_so_not_an_unexpected_error(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            position = agent.engine.positions[SYMBOL]
            asked = (position.stop.trigger_price + position.entry_price) / 2
            # Binance's 429 with Retry-After on a read opens the circuit for 20 s.
            fake.inject_fault("GET /fapi/v3/positionRisk", -1003, 429, retry_after=20)
            with pytest.raises(ExchangeError):
                await agent.engine.exchange.position(SYMBOL)
            result = await agent.controller.run(Command(
                CommandKind.SL, "tg:1:99", datetime.now(UTC), symbol=SYMBOL, price=asked,
                source="telegram"))
            text = format_result(CommandKind.SL, result)
            assert "CircuitOpen" not in text and "failed: command" not in text, text
            assert not result.ok, text
            assert "not sent (API circuit open for" in text, text
            assert "Binance limits this IP: wait" in text and "send /sl again" in text, text
            # nothing moved: the stop is where it was
            assert agent.engine.positions[SYMBOL].stop.trigger_price == position.stop.trigger_price
