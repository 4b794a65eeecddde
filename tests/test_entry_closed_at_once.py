"""A /long that filled and was closed before its answer: the stop-loss (or take-profit)
request reached Binance after the price passed its level, Binance answered -2021 "Order
would immediately trigger." (USD-M error codes), and the agent closed at market, as the
order would have. The reply said "the LONG entry was refused by the exchange (see /logs);
nothing is open" after a fill and a loss, the phone heard "retrying in 2 s" of a stop that
was never retried, and a profit taken rang as CRITICAL POSITION_UNPROTECTED.

Found from outside (review 3): the real agent against the fake Binance, the leg's request
held 1 s (the fake's simulator answers -2021 for real once the price passed the level)."""

import asyncio
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.alerts import Severity
from trader.commands import CommandKind, CommandResult
from trader.exchange.websocket_stream import StreamOptions

SYMBOL = "BTCUSDT"


async def long_with_a_late_leg(agent, fake: FakeBinance, leg_type: str,
                               price: Decimal) -> CommandResult:
    """/long whose `leg_type` request reaches Binance 1 s late, the price at `price` meanwhile."""
    fake.inject_fault("POST /fapi/v1/algoOrder", delay=1.0, execute=False,
                      only={"type": leg_type})
    running = asyncio.ensure_future(agent.run(CommandKind.LONG))
    await asyncio.sleep(0.4)
    await fake.move_price(SYMBOL, price)
    return await running


async def test_a_long_closed_at_once_by_a_stop_level_passed_says_it_filled_and_the_loss(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            engine = agent.engine
            result = await long_with_a_late_leg(agent, fake, "STOP_MARKET", Decimal("48700"))
            [line] = result.lines
            assert result.ok, line
            assert "nothing is open" not in line and "refused" not in line, line
            assert line.startswith(f"{SYMBOL}: the LONG 0.507 filled at 49,289.1 and was "
                                   "closed at once at market: the price was already past its "
                                   "stop-loss 48,908.6"), line
            assert "closed at 48,694.6; PnL -326.25 USDT net" in line, line
            assert fake.sim.position(SYMBOL).quantity == 0
            said = engine.store.recent_alerts(20)
            assert not [a.text for a in said if "retrying" in a.text]
            assert [a.name for a in said if a.severity == Severity.CRITICAL] \
                == ["POSITION_UNPROTECTED"]


async def test_a_long_closed_at_once_by_a_take_profit_passed_rings_no_critical(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            engine = agent.engine
            result = await long_with_a_late_leg(agent, fake, "TAKE_PROFIT_MARKET",
                                                Decimal("50400"))
            [line] = result.lines
            assert result.ok, line
            assert "past its take-profit 50,033.6" in line, line
            assert "PnL +535.12 USDT net" in line, line
            said = engine.store.recent_alerts(20)
            assert [a for a in said if a.severity == Severity.CRITICAL] == []
            assert not [a.text for a in said if "retrying" in a.text]


async def test_an_earlier_refusal_does_not_make_a_filled_entry_read_refused(tmp_path):
    """Negative: a refused /long still reads refused; the next /long, filled and closed at
    once, does not inherit its refusal."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            fake.inject_fault("POST /fapi/v1/order", code=-2019, http_status=400)
            refused = await agent.run(CommandKind.LONG)
            assert not refused.ok
            assert "refused by the exchange" in refused.lines[0] and "-2019" in refused.lines[0]
            result = await long_with_a_late_leg(agent, fake, "STOP_MARKET", Decimal("48700"))
            assert result.ok and "refused" not in result.lines[0], result.lines
            assert "filled at" in result.lines[0], result.lines
