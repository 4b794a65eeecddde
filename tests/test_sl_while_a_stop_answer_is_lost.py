"""/sl while the stop's previous placement waits for a lost answer (a timeout; the agent
probes it by client id, never resends): when the probe found that order, the leg took the
order's trigger as its plan (the rule for a placement re-rounded onto a new tick grid), so
the operator's new level was dropped without a word: the stop stayed where it was and
nothing placed the new one, though the /sl answer said 'the agent keeps placing it'.
Such a /sl is now refused, saying why and to send it again once the answer is known."""


from tests.engine_world import SYMBOL
from tests.test_move_stop_command import stops, world_with_a_long
from trader.commands import CommandKind
from trader.domain import OrderType
from trader.exchange.base import UnknownOutcome


async def test_sl_while_the_last_stop_placement_is_unanswered_is_refused_not_lost(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    real_place, lost = world.paper.place, [0]

    async def answer_lost(request):  # type: ignore[no-untyped-def]
        order = await real_place(request)
        if request.type is OrderType.STOP_MARKET and not lost[0]:
            lost[0] = 1
            raise UnknownOutcome("timeout", http_status=504)
        return order
    world.paper.place = answer_lost
    first = (position.stop.trigger_price * 2 + position.entry_price) / 3
    await world.command(CommandKind.SL, symbol=SYMBOL, price=first)
    assert world.engine.positions[SYMBOL].stop.pending is not None   # probing, not resent
    second = (position.stop.trigger_price + position.entry_price * 2) / 3
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=second)
    assert not result.ok
    assert "send it again" in result.lines[0], result.lines
    for _ in range(3):
        await world.step()
    level = world.paper.rules(SYMBOL).round_price(first, up=False)
    assert [o.trigger_price for o in await stops(world)] == [level]
    assert world.engine.positions[SYMBOL].stop.trigger_price == level
