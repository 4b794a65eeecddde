"""/sl met by the exchange's 429 Retry-After: the agent places the new stop by itself when
the wait ends (the old one stays meanwhile), as a /close held back by the circuit does;
the answer's header read '⚠️ Stop-loss: failed' (the /close's reads '⏳ Close: waiting'
since 72e613d). Found by manual play: a /sl during an injected 429 with Retry-After 20.

/sl while the circuit is already open (a 429 with Retry-After on a read, before the command
came): the answer said "sl failed: command sl: CircuitOpen: ..." (the command's boundary, for
an unexpected error) instead of what happened and what to do. Every command now answers the
exchange's trouble in words (trader/exchange_trouble.py). Found by the chaos run's stop moves
(tests/chaos/stop_moves.py)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import Command, CommandKind, CommandResult
from trader.exchange.base import ExchangeError

SYMBOL = "BTCUSDT"


@dataclass
class LongWithStop:
    fake: FakeBinance
    agent: Any
    asked: Decimal          # a level between the stop and the entry

    async def sl(self) -> tuple[CommandResult, str]:
        result = await self.agent.controller.run(Command(
            CommandKind.SL, "tg:1:99", datetime.now(UTC), symbol=SYMBOL, price=self.asked,
            source="telegram"))
        return result, format_result(CommandKind.SL, result)


@asynccontextmanager
async def a_long(tmp_path: Path) -> AsyncIterator[LongWithStop]:
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            position = agent.engine.positions[SYMBOL]
            yield LongWithStop(fake, agent,
                               (position.stop.trigger_price + position.entry_price) / 2)


async def test_sl_held_back_by_a_retry_after_reads_waiting_not_failed(tmp_path):
    async with a_long(tmp_path) as world:
        world.fake.inject_fault("POST /fapi/v1/algoOrder", -1003, 429, retry_after=20)
        result, text = await world.sl()
        assert not result.ok and result.waiting, text
        assert text.startswith("⏳") and "failed" not in text.splitlines()[0], text
        assert "the old one stays until it is" in text, text


async def test_sl_while_the_circuit_is_open_says_so_not_an_unexpected_error(tmp_path):
    async with a_long(tmp_path) as world:
        position = world.agent.engine.positions[SYMBOL]
        # Binance's 429 with Retry-After on a read opens the circuit for 20 s.
        world.fake.inject_fault("GET /fapi/v3/positionRisk", -1003, 429, retry_after=20)
        with pytest.raises(ExchangeError):
            await world.agent.engine.exchange.position(SYMBOL)
        result, text = await world.sl()
        assert "CircuitOpen" not in text and "failed: command" not in text, text
        assert not result.ok, text
        assert "not sent (API circuit open for" in text, text
        assert "Binance limits this IP: wait" in text and "send /sl again" in text, text
        # nothing moved: the stop is where it was
        assert world.agent.engine.positions[SYMBOL].stop.trigger_price \
            == position.stop.trigger_price
