"""A /long answered FILLED whose user-data stream events come late or never, on the wire: the
real python-binance client against the fake Binance, its user-data stream up. The fake holds
back the fill's ORDER_TRADE_UPDATE and ACCOUNT_UPDATE (`hold_order_updates(account_updates=
True)`), then sends them late or loses them. The agent keeps the position it bought, with its
stop and take-profit on Binance: no "closed (MANUAL)", nothing adopted (tests/
test_entry_fill_heard_late.py has the engine-level cases and the reasons).

Inside an IP ban the stream's picture older than the entry's fill closes nothing, while a
stop fill the stream tells afterwards still closes the position (STOP_LOSS) with no request.
"""

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, Agent, streaming_agent
from tests.test_stop_fill_during_ban import alerts, banned, ticks
from trader.commands import CommandKind
from trader.domain import CloseReason, OrderType


async def long_unheard(fake: FakeBinance, agent: Agent) -> None:
    """/long, its fill's stream events held back by the fake."""
    fake.hold_order_updates(account_updates=True)
    result = await agent.run(CommandKind.LONG)
    assert result.ok, result.lines
    assert fake.sim.position(SYMBOL).quantity > 0


def legs(fake: FakeBinance) -> list[tuple[str, str]]:
    return sorted((o.type.value, str(o.quantity)) for o in fake.sim.open_orders(SYMBOL)
                  if o.type.conditional)


@pytest.mark.parametrize("adopt", [True, False], ids=["adoption on", "adoption off"])
@pytest.mark.parametrize("lost", [False, True], ids=["late", "lost"])
async def test_a_long_filled_before_its_stream_events_is_held_with_its_legs(tmp_path, adopt,
                                                                            lost):
    async with streaming_agent(tmp_path, adopt_positions=adopt) as (fake, agent):
        engine = agent.engine
        await long_unheard(fake, agent)
        key = engine.positions[SYMBOL].key
        held = str(fake.sim.position(SYMBOL).quantity)
        planned = [(OrderType.STOP_MARKET.value, held),
                   (OrderType.TAKE_PROFIT_MARKET.value, held)]
        await ticks(engine, 3)
        assert alerts(engine, "CLOSE") == [] and legs(fake) == planned
        await fake.release_order_updates(lost=lost)
        await ticks(engine, 3)
        position = engine.positions.get(SYMBOL)
        assert position is not None and (position.key, position.adopted) == (key, False)
        assert str(position.quantity) == held
        assert legs(fake) == planned
        assert alerts(engine, "CLOSE") == [] and alerts(engine, "RECONCILE_MISMATCH") == []
        assert engine.store.closed_positions() == []


async def test_inside_a_ban_the_stream_picture_before_the_fill_closes_nothing(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_unheard(fake, agent)
        await fake.release_order_updates(lost=True)
        sent = await banned(agent, fake, 120)
        await ticks(engine, 3)
        assert SYMBOL in engine.positions
        assert alerts(engine, "CLOSE") == [] and engine.store.closed_positions() == []
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_inside_a_ban_a_stop_fill_after_the_unheard_entry_closes_at_once(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_unheard(fake, agent)
        await fake.release_order_updates(lost=True)
        position = engine.positions[SYMBOL]
        sent = await banned(agent, fake, 120)
        assert position.stop.trigger_price is not None
        await fake.move_price(SYMBOL, position.stop.trigger_price * 99 / 100)
        assert fake.sim.position(SYMBOL).quantity == 0
        await ticks(engine, 3)
        assert SYMBOL not in engine.positions
        [record] = engine.store.closed_positions()
        assert (record.key, record.close_reason) == (position.key, CloseReason.STOP_LOSS)
        [close] = alerts(engine, "CLOSE")
        assert "LONG closed (STOP_LOSS)" in close, close
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_a_long_closed_by_hand_on_the_wire_is_still_closed_manual(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_unheard(fake, agent)
        await fake.release_order_updates()
        await ticks(engine, 2)
        await fake.close_position_by_hand(SYMBOL)
        await ticks(engine, 3)
        [record] = engine.store.closed_positions()
        assert record.close_reason is CloseReason.MANUAL
        assert alerts(engine, "RECONCILE_MISMATCH") == []
