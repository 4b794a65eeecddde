"""A restart on the same database while a stop move waits for a lost answer: /sl sent sl2
(its answer lost: pending, probed, never resent), then a second move to another level, then
the agent restarts. The leg's pending placement and the level it was sent at
(`Leg.pending_trigger`) are read back from the database, so the boot finds sl2 at the FIRST
level, keeps the plan (the second) and ends with one stop there, the others cancelled.
Held when written (round 9's chaos helper): a guard for the restart path of da27a2b."""

from tests.engine_world import SYMBOL, restart
from tests.test_move_stop_command import stops, world_with_a_long
from trader.commands import CommandKind
from trader.domain import OrderType
from trader.events import StopMoveRequested
from trader.exchange.base import UnknownOutcome
from trader.startup import boot


async def test_a_restart_keeps_a_move_made_while_a_stop_placement_was_unanswered(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    real_place, lost = world.paper.place, [0]

    async def answer_lost(request):  # type: ignore[no-untyped-def]
        order = await real_place(request)
        if request.type is OrderType.STOP_MARKET and not lost[0]:
            lost[0] = 1
            raise UnknownOutcome("timeout", http_status=504)
        return order
    world.paper.place = answer_lost   # type: ignore[method-assign]
    rules = world.paper.rules(SYMBOL)
    old, entry = position.stop.trigger_price, position.entry_price
    first = rules.round_price((old * 2 + entry) / 3, up=False)
    second = rules.round_price((old + entry * 2) / 3, up=False)
    await world.command(CommandKind.SL, symbol=SYMBOL, price=first)
    pending = world.engine.positions[SYMBOL]
    assert pending.stop.pending is not None and pending.stop.pending_trigger == first
    engine = world.engine     # what /sl hands the state machine, in a unit of work
    await engine.store.unit_of_work(engine.interpreter.apply(pending, StopMoveRequested(second)))
    world.paper.place = real_place    # type: ignore[method-assign]

    again = restart(world)
    await boot(again.engine)
    for _ in range(3):
        await again.step()
    assert [o.trigger_price for o in await stops(again)] == [second]
    stop = again.engine.positions[SYMBOL].stop
    assert stop.trigger_price == second and stop.order is not None
    assert stop.order.trigger_price == second and stop.pending is None
