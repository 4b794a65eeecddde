"""What the reconciliation says of an intent it settles (trader/startup.py
`resolve_intents`, at boot and every TRADEBOT_RECONCILE_SECONDS): an order acknowledged
earlier and since ended (a stop cancelled by hand in the app) is not "an order whose answer
was lost", as the log and the STARTUP alert called it (found by a reviewer)."""

from pathlib import Path

from tests.engine_world import SYMBOL, World, long_signal, make_world
from trader.domain import IntentStatus
from trader.startup import resolve_intents


async def a_protected_long(tmp_path: Path) -> tuple[World, str]:
    """The engine on the paper exchange with a LONG and its stop; the stop's client id."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop = world.engine.positions[SYMBOL].stop.order
    assert stop is not None
    return world, stop.client_id


async def test_an_acknowledged_order_ended_by_hand_is_not_called_an_answer_lost(tmp_path):
    world, stop_id = await a_protected_long(tmp_path)
    assert world.store.intent(stop_id).status is IntentStatus.ACKED
    world.paper.sim.cancel_by_hand(SYMBOL, stop_id, world.clock.now())   # not published yet
    lines = await resolve_intents(world.engine)
    (line,) = [line for line in lines if stop_id in line]
    assert "answer was lost" not in line and "acknowledged" in line, line


async def test_an_order_sent_without_an_answer_is_still_called_so(tmp_path):
    """The negative: a SENT intent (its answer lost) keeps its words."""
    world, stop_id = await a_protected_long(tmp_path)
    sent = world.store.intent(stop_id).with_status(IntentStatus.SENT)
    world.store.save_intent(sent, world.clock.now())
    world.paper.sim.cancel_by_hand(SYMBOL, stop_id, world.clock.now())
    lines = await resolve_intents(world.engine)
    (line,) = [line for line in lines if stop_id in line]
    assert "answer was lost" in line, line
