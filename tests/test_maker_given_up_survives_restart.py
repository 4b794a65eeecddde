"""A maker entry's "quoting is over" is kept on its record (Position.quoting_over): a
restart never takes an entry given up for a live one. Found by h-review14 (rv14 #2):
/shutdown (keep) stopped a maker entry 40 % filled; after /wake and a restart the new
process bought the other 60 % at market, long after the signal.
"""

from decimal import Decimal

from storage import codec
from tests.engine_world import SYMBOL, make_world
from tests.positions import make
from tests.test_maker_engine import (
    MAKER,
    entry_fills,
    fill_part,
    later,
    live_quotes,
    quoting_long,
    restarted,
)
from trader.commands import CommandKind
from trader.position import Position, PositionState


async def test_an_entry_stopped_by_shutdown_buys_nothing_after_wake_and_restart(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * Decimal("0.4"))
    fill_part(world, quote.client_id, part)
    result = await world.command(CommandKind.SHUTDOWN, flatten=False)
    assert await live_quotes(world) == [], result.lines
    await later(world, 2, price="99950")
    assert (await world.paper.position(SYMBOL)).quantity == part
    woke = await world.command(CommandKind.WAKE)
    assert woke.ok, woke.lines
    await later(world, 2, price="99950")
    assert (await world.paper.position(SYMBOL)).quantity == part   # same process: fine
    assert world.store.position(SYMBOL, position.key).quoting_over    # journaled

    again = await restarted(world)                  # a deploy / crash, same database
    assert not again.engine.guard_state.asleep
    for _ in range(4):
        await later(again, 12, price="99950")       # past the 30 s maker timeout
    held = (await again.paper.position(SYMBOL)).quantity
    assert held == part, f"the stopped entry bought {held - part} more at market after a restart"
    assert await live_quotes(again) == []
    record = again.engine.positions[SYMBOL]
    assert record.state is PositionState.PROTECTED and record.quantity == part
    assert not again.engine.entries.maker.may_add(record)    # the heat counts it as it is


async def test_an_entry_still_quoting_after_a_restart_keeps_quoting(tmp_path):
    """Negative: filled in part, within its timeout, awake, never given up: after a
    restart its quote is still worked, and at the timeout the rest is bought at market
    (TRADEBOT_MAKER_FALLBACK=market), as without the restart."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * Decimal("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 2)
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert not world.store.position(SYMBOL, position.key).quoting_over

    again = await restarted(world)
    assert again.engine.entries.maker.may_add(again.engine.positions[SYMBOL])
    await later(again, 2)
    assert [q.client_id for q in await live_quotes(again)] == [quote.client_id]
    for _ in range(3):
        await later(again, 12)                      # past the 30 s maker timeout
    assert (await again.paper.position(SYMBOL)).quantity == position.quantity
    assert len(entry_fills(again)) >= 2             # the part, then the market rest
    assert again.store.position(SYMBOL, position.key).quoting_over


def test_a_record_from_before_quoting_over_was_kept_loads_as_not_over():
    """Older records (no "quoting_over" key) load; their entry is asked as before."""
    data = codec.dump(make())
    data.pop("quoting_over")
    assert codec.load(Position, data).quoting_over is False
