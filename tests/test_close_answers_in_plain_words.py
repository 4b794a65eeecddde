"""/close answers in plain words what happened to its market order. It read "market close
0.507 -> skipped (-2022 REDUCE_ONLY_REJECT ...)" when the stop-loss filled first (the close
reached Binance after it: "ReduceOnly Order is rejected", nothing to reduce), and "market
close 0.507 -> unknown (0 request outcome unknown: place order symbol=... role=fl:
TimeoutError())" when the close's answer was lost (HTTP 503, "execution status is UNKNOWN":
https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).

Found from outside (review 3): the real agent against the fake Binance."""

import asyncio
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import CommandKind
from trader.domain import OrderType
from trader.exchange.websocket_stream import StreamOptions

SYMBOL = "BTCUSDT"
ORDER = "POST /fapi/v1/order"


async def test_a_close_after_the_stop_filled_says_the_stop_closed_it_first_and_at_what_price(
        tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            stop = next(o for o in fake.sim.open_orders(SYMBOL)
                        if o.type is OrderType.STOP_MARKET)
            fake.inject_fault(ORDER, delay=1.0, execute=False, only={"type": "MARKET"})
            closing = asyncio.ensure_future(agent.run(CommandKind.CLOSE))
            await asyncio.sleep(0.3)
            await fake.move_price(SYMBOL, stop.trigger_price - Decimal("10"))   # the stop fills
            result = await closing
            text = " | ".join(result.lines)
            assert result.ok, text
            assert "-> skipped" not in text, text
            assert f"{SYMBOL}: market close 0.507 not needed: the position was already closed " \
                "on Binance (Binance: -2022 REDUCE_ONLY_REJECT" in text, text
            assert f"{SYMBOL}: already closed by its stop-loss at 48,9" in text, text
            assert ", before the market close; PnL -" in text, text


async def test_a_close_whose_answer_was_lost_says_so_and_what_the_read_back_found(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            fake.inject_fault(ORDER, code=-1000, http_status=503, execute=True,
                              only={"type": "MARKET"})
            result = await agent.run(CommandKind.CLOSE)
            text = " | ".join(result.lines)
            assert "-> unknown" not in text and "outcome unknown" not in text, text
            assert f"{SYMBOL}: market close 0.507 sent; its answer was lost (Binance: execution " \
                "status unknown), so the position is read back" in text, text
            assert f"{SYMBOL}: the position read back is closed" in text, text
            assert f"{SYMBOL}: closed at " in text and fake.sim.position(SYMBOL).quantity == 0


async def test_a_plain_close_reads_as_before(tmp_path):
    """Negative: the close that filled says done, closed at its price, as before."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            result = await agent.run(CommandKind.CLOSE)
            assert result.ok
            assert result.lines[0] == f"{SYMBOL}: market close 0.507 -> done", result.lines
            assert result.lines[1].startswith(f"{SYMBOL}: closed at "), result.lines
            assert "before the market close" not in result.lines[1], result.lines
