"""A liquidation during a 418 ban recorded before its closing fill was known is told as one
once its fills are read back. Before, the close read-back kept the reason recorded from the
stream alone: "CLOSE | LONG closed (MANUAL); exit price and PnL unknown" (INFO), after the
ban "(MANUAL) is now read: exit 49,278.1, PnL -30.56"; never LIQUIDATION, never the
CRITICAL EXCHANGE_CLOSE with the margin/leverage advice. Two ways in: the ACCOUNT_UPDATE
(position 0) heard before the autoclose order's ORDER_TRADE_UPDATE (two stream messages
race), or the host clock ahead of Binance's. From review6 (test_rv6_liquidation_unknown_
size). Negative: a close by hand completed by the read-back stays MANUAL."""

import asyncio
from decimal import Decimal

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, booted, market_up_to_now
from tests.test_stop_fill_during_ban import (
    STREAMS,
    alerts,
    banned,
    dropping_fills,
    long_open,
    ticks,
)
from trader.domain import LIQUIDATION_ADVICE, CloseReason
from trader.startup import reconcile


async def closed_during_a_ban_unheard(agent, fake, close) -> None:
    """`close` happens inside a 2 s ban while the stream's fill events are lost; then the
    ban ends and the agent reads the account again."""
    engine = agent.engine
    await banned(agent, fake, 2)
    drain = engine.exchange.drain_events
    engine.exchange.drain_events = dropping_fills(engine)
    await close()
    await ticks(engine, 3)
    engine.exchange.drain_events = drain
    assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
    await ticks(engine, 2)
    await reconcile(engine)
    await ticks(engine, 2)


async def test_a_liquidation_recorded_before_its_fill_is_heard_is_told_as_one(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            await long_open(agent)
            await closed_during_a_ban_unheard(agent, fake, lambda: fake.close_position_by_exchange(
                SYMBOL, "autoclose-1700000000000"))
            [record] = engine.store.closed_positions()
            assert record.close_reason is CloseReason.LIQUIDATION, record.close_reason
            assert record.exit_price is not None
            [told] = alerts(engine, "EXCHANGE_CLOSE")
            assert "BY THE EXCHANGE (LIQUIDATION)" in told and LIQUIDATION_ADVICE in told, told
            assert "recorded" in told and "(MANUAL)" in told, told


async def test_a_liquidation_during_a_ban_with_the_host_clock_ahead_is_told_as_one(tmp_path):
    """Every event heard, in order; the host clock 300 ms ahead of Binance's."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.set_clock_skew(-300)
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            await long_open(agent)
            await asyncio.sleep(1.5)
            await banned(agent, fake, 2)
            await fake.close_position_by_exchange(SYMBOL, "autoclose-1700000000000")
            await ticks(engine, 3)
            assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
            await ticks(engine, 2)
            await reconcile(engine)
            await ticks(engine, 2)
            [record] = engine.store.closed_positions()
            assert record.close_reason is CloseReason.LIQUIDATION, record.close_reason
            assert len(alerts(engine, "EXCHANGE_CLOSE")) == 1


async def test_a_close_by_hand_read_back_after_the_ban_stays_manual(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            await long_open(agent)
            await closed_during_a_ban_unheard(agent, fake,
                                              lambda: fake.close_position_by_hand(SYMBOL))
            [record] = engine.store.closed_positions()
            assert record.close_reason is CloseReason.MANUAL, record.close_reason
            assert record.exit_price is not None
            assert alerts(engine, "EXCHANGE_CLOSE") == []
            assert [t for t in alerts(engine, "CLOSE") if "(MANUAL) is now read" in t]
