"""/close met by a 429 (or 418) with Retry-After: nothing is sent inside the window, and the
reply says what will happen. The position stays CLOSING: the engine sends nothing while the
circuit is open and closes it on the first tick after the window, by itself. So the reply
must not say the close failed and ask for another /close: it says the exchange's wait, when
it ends, and that the close is then sent again.

Found from outside: `tradebot run` against the fake Binance, /close confirmed while
POST /fapi/v1/order answered 429 Retry-After 5: "Close: failed ... send /close BTCUSDT
again", then a CLOSE alert 5 s later with no command sent."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_flatten_exit_code import agent
from trader.commands import Command, CommandKind
from trader.control import Controller
from trader.domain import Side
from trader.position import PositionState

SYMBOL = "BTCUSDT"


@asynccontextmanager
async def agent_with_a_position(fake: FakeBinance, tmp_path: Path) -> AsyncIterator[Controller]:
    """An agent booted on an account holding a LONG (adopted and protected at boot)."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    async with agent(fake, tmp_path) as controller:
        assert controller.engine.positions[SYMBOL].state is PositionState.PROTECTED
        yield controller


@pytest.mark.parametrize("http_status", [429, 418])
async def test_close_inside_retry_after_says_when_it_is_sent_again_and_then_closes(
        tmp_path, http_status):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            agent_with_a_position(fake, tmp_path) as controller:
        engine = controller.engine
        fake.inject_fault("POST /fapi/v1/order", code=-1003, http_status=http_status,
                          retry_after=2)
        result = await controller.run(Command(CommandKind.CLOSE, "tg:1:2", datetime.now(UTC),
                                              symbol=SYMBOL, source="telegram"))
        text = "\n".join(result.lines)
        assert f"HTTP {http_status}" in text, text                 # why
        assert str(429 if http_status == 418 else 418) not in text, text   # not the other
        assert "sent again at" in text and "UTC" in text, text      # what happens, and when
        assert "send /close" not in text, text                      # nothing to do for you
        reply = format_result(CommandKind.CLOSE, result)
        assert not reply.startswith("✅"), reply
        assert "failed" not in reply.splitlines()[0], reply          # it is not: it waits
        assert reply.startswith("⏳ <b>Close: waiting</b>"), reply

        async def ticked_until_closed() -> bool:
            await engine.tick()
            return SYMBOL not in engine.positions
        assert await eventually_async(ticked_until_closed, 10.0)
        assert fake.sim.position(SYMBOL).quantity == 0
        assert not fake.retry_after_watch.violations


async def eventually_async(condition, bound: float) -> bool:  # type: ignore[no-untyped-def]
    """`await condition()` until it holds (a tick each time), at most `bound` seconds."""
    deadline = asyncio.get_running_loop().time() + bound
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False

