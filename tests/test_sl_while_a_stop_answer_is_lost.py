"""/sl while the stop's previous placement waits for a lost answer (a timeout; the agent
probes it by client id, never resends). Such a /sl used to be refused ('send it again'):
once the probe found that order, the leg took the order's trigger as its plan, so the new
level would have been dropped without a word. The leg now remembers the level each
pending placement was sent at (trader/protection.py `placed`), so the /sl is taken: the
order found is known for the old level and replaced, new-first, at the level asked for."""


from tests.engine_world import SYMBOL
from tests.test_move_stop_command import next_stop_answer_lost, stops, world_with_a_long
from trader.commands import CommandKind


async def test_sl_while_the_last_stop_placement_is_unanswered_lands_once_it_is_known(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    next_stop_answer_lost(world)
    first = (position.stop.trigger_price * 2 + position.entry_price) / 3
    await world.command(CommandKind.SL, symbol=SYMBOL, price=first)
    assert world.engine.positions[SYMBOL].stop.pending is not None   # probing, not resent
    second = (position.stop.trigger_price + position.entry_price * 2) / 3
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=second)
    assert not result.ok
    assert "not confirmed on the exchange yet; the agent keeps placing it" in result.lines[0]
    for _ in range(3):
        await world.step()
    level = world.paper.rules(SYMBOL).round_price(second, up=False)
    assert [o.trigger_price for o in await stops(world)] == [level]
    assert world.engine.positions[SYMBOL].stop.trigger_price == level


async def test_sl_back_to_the_live_level_while_a_move_is_unanswered_is_not_already_there(
        tmp_path):
    """The live stop is at the level asked for, but the unanswered placement is not: the
    plan goes back to the live level (not 'already at')."""
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    live = position.stop.trigger_price
    next_stop_answer_lost(world)
    await world.command(CommandKind.SL, symbol=SYMBOL,
                        price=(position.stop.trigger_price * 2 + position.entry_price) / 3)
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=live)
    assert "already" not in result.lines[0], result.lines
    for _ in range(3):
        await world.step()
    assert [o.trigger_price for o in await stops(world)] == [live]
    assert world.engine.positions[SYMBOL].stop.trigger_price == live
