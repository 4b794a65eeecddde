"""A LONG reversed by hand with one SELL larger than it (one-way mode: the account goes
SHORT the difference): the LONG's trade is recorded with the size it held and the part of
the hand fill's fee that closed it; the rest opened the SHORT the agent adopts.

Found by review5 (exp_flip_by_hand.py): /trades read "BTCUSDT LONG 1 · ... -42.71 USDT" and
CLOSE "fees 37.13" for a LONG 0.507 reversed with a SELL 1.0 (Binance reports one trade of
1.0 with one commission: userTrades / ORDER_TRADE_UPDATE "n").
"""

import asyncio
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, Agent, streaming_agent
from tests.test_stop_fill_during_ban import long_open
from trader.commands import CommandKind
from trader.domain import Side


async def assert_the_long_keeps_its_share(agent: Agent, fake: FakeBinance, held: Decimal,
                                          sold: Decimal) -> None:
    """/trades holds one trade: the LONG of `held`, charged the entry's fee and its `held`
    share of the hand SELL of `sold` that reversed it (not the whole fill's)."""
    [trade] = (await agent.run(CommandKind.TRADES)).trades
    fills = fake.sim.fills(SYMBOL)
    entry_fee, hand_fee = fills[0].fee, fills[-1].fee
    own_fees = entry_fee + hand_fee * held / sold
    gross = (trade.exit_price - trade.entry_price) * held
    assert trade.quantity == held, f"/trades shows LONG {trade.quantity}, it held {held}"
    assert abs(trade.net - (gross - own_fees)) < Decimal("0.1"), (
        f"net {trade.net}: expected about {gross - own_fees} (fees {own_fees}); charged "
        f"the fee of the whole {sold} sold ({hand_fee}), not its {held} of it")


async def test_a_long_reversed_by_hand_is_recorded_with_its_own_size_and_fees(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        held = engine.positions[SYMBOL].quantity
        await fake.open_position_by_hand(SYMBOL, Side.SELL, Decimal("1.0"))
        assert fake.sim.position(SYMBOL).quantity == held - Decimal("1.0") < 0
        for _ in range(6):
            await engine.tick()
            await asyncio.sleep(0.2)
        await assert_the_long_keeps_its_share(agent, fake, held, Decimal("1.0"))
        adopted = engine.positions[SYMBOL]
        assert (adopted.side, adopted.quantity) == (Side.SELL, Decimal("1.0") - held)


async def test_a_long_closed_by_hand_in_full_is_charged_the_whole_hand_fill(tmp_path):
    """The cap applies to a reversal only: a hand SELL of exactly what was held is all the
    LONG's (its whole size and fee), as before."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        held = engine.positions[SYMBOL].quantity
        await fake.close_position_by_hand(SYMBOL)
        for _ in range(6):
            await engine.tick()
            await asyncio.sleep(0.2)
        [trade] = (await agent.run(CommandKind.TRADES)).trades
        fills = fake.sim.fills(SYMBOL)
        assert fills[-1].quantity == held
        fees = fills[0].fee + fills[-1].fee
        gross = (trade.exit_price - trade.entry_price) * held
        assert trade.quantity == held
        assert abs(trade.net - (gross - fees)) < Decimal("0.01")
        assert SYMBOL not in engine.positions
