"""A close's record counts every fill of the position whatever the host's clock says against
Binance's (the agent measures the offset: "binance time synced offset_ms=-300"), also
beyond the fixed 5 s slack (skews of +-8 s: the window widens by the measured offset). Before,
the fills were picked by time against `opened_at`, a host-clock time set before the entry
was sent: with the host clock ahead the entry fill was left out (its fee missing from the
CLOSE's fees and net PnL, /trades, /pnl), and inside a 418 ban the close recorded from the
stream read "exit price and PnL unknown". From review6 (test_rv6_clock_ahead_drops_entry_fill,
test_rv6_ban_close_clock_skew)."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_stop_fill_during_ban import alerts, banned, long_open, ticks
from trader.exchange.base import clock_offset


async def test_a_stop_close_counts_the_entry_fee_with_the_host_clock_ahead(tmp_path):
    # Binance's clock 0.3 s behind the host's
    async with streaming_agent(tmp_path, clock_skew_ms=-300) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        await asyncio.sleep(1.5)               # held a while
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine)
        [record] = engine.store.closed_positions()
        fills = fake.sim.fills(SYMBOL)
        [close] = alerts(engine, "CLOSE")
        assert record.fees == sum(f.fee for f in fills), (close, record.fees)
        assert record.realized_pnl - record.fees == sum(
            f.realized_pnl - f.fee for f in fills)


@pytest.mark.parametrize("skew_ms", [-8000, -1500, -300, 0, 1500, 8000])
async def test_a_stop_fill_during_a_ban_is_complete_whatever_the_clock_skew(tmp_path,
                                                                              skew_ms):
    async with streaming_agent(tmp_path, clock_skew_ms=skew_ms) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        await asyncio.sleep(0.5)
        await banned(agent, fake, 120)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine)
        [record] = engine.store.closed_positions()
        [close] = alerts(engine, "CLOSE")
        assert record.exit_price is not None and "unknown" not in close, close
        assert record.fees == sum(f.fee for f in fake.sim.fills(SYMBOL)), close


@pytest.mark.parametrize("skew_ms", [-8000, -1500, -300, 0, 1500, 8000])
async def test_a_stop_fill_without_a_ban_counts_the_entry_fee_whatever_the_clock_skew(
        tmp_path, skew_ms):
    """The close read over REST (userTrades from the position's read start)."""
    async with streaming_agent(tmp_path, clock_skew_ms=skew_ms) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine)
        [record] = engine.store.closed_positions()
        fills = fake.sim.fills(SYMBOL)
        assert record.fees == sum(f.fee for f in fills), (record.fees, [f.fee for f in fills])


@pytest.mark.parametrize("skew_ms", [-8000, 0, 8000])
async def test_a_close_by_hand_counts_its_fill_whatever_the_clock_skew(tmp_path, skew_ms):
    """Closed in the Binance app (a fill of no order of ours): its record counts the entry
    and the hand close. Before, with the host clock 8 s ahead of Binance's, the fills read
    started 5 s before the position opened (host clock) and left out the entry fill,
    stamped 8 s "earlier" by Binance (trader/position_fills.py `read_from`)."""
    async with streaming_agent(tmp_path, clock_skew_ms=skew_ms) as (fake, agent):
        engine = agent.engine
        measured = clock_offset(engine.exchange) / timedelta(milliseconds=1)
        assert abs(measured - skew_ms) < 1000, measured     # GET /fapi/v1/time at start
        await long_open(agent)
        await fake.close_position_by_hand(SYMBOL)
        await ticks(engine)
        [record] = engine.store.closed_positions()
        fills = fake.sim.fills(SYMBOL)
        [close] = alerts(engine, "CLOSE")
        assert record.exit_price is not None and "unknown" not in close, close
        assert record.fees == sum(f.fee for f in fills), close
