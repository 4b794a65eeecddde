"""An order the agent already replaced (an older client id of the same leg) that is still
live because its cancel failed is found again when the current order goes (cancelled by
hand, expired). It is ours, not a stop moved by hand: it protects at once (better than no
stop), but its OLD level must not become the plan again. It did (protection.seen adopted
it like a hand-placed stop: 'its trigger becomes the plan'), which silently undid the /sl
(or breakeven) move the replacement carried. Now it is replaced, new-first, at the plan."""

from decimal import Decimal

from tests.positions import OPENED, leg_id, make
from tests.test_move_stop_command import cancels_refused, stops, world_with_a_long
from trader.commands import CommandKind
from trader.domain import OrderRole, Side
from trader.events import CancelOrder, LegSeen, PlaceLeg, Policy
from trader.evolve import evolve
from trader.lifecycle import step
from trader.position import LegOrder, PositionState

D, SL, SYMBOL = Decimal, OrderRole.STOP_LOSS, "BTCUSDT"


async def test_a_replaced_stop_found_again_does_not_undo_the_move(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    old = position.stop.order
    cancels_fail = cancels_refused(world)
    rules = world.paper.rules(SYMBOL)
    moved = rules.round_price((position.stop.trigger_price + position.entry_price) / 2,
                              up=False)
    await world.command(CommandKind.SL, symbol=SYMBOL, price=moved)
    current = world.engine.positions[SYMBOL].stop.order
    assert current is not None and current.trigger_price == moved
    assert {o.client_id for o in await stops(world)} == {old.client_id, current.client_id}
    # The new stop is cancelled by hand; the old one is still live (its cancel failed).
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, current.client_id,
                                                       world.clock.now()))
    await world.step()
    assert world.engine.positions[SYMBOL].stop.trigger_price == moved, "the move was undone"
    cancels_fail[0] = False
    for _ in range(3):
        await world.step()
    assert [o.trigger_price for o in await stops(world)] == [moved]
    stop = world.engine.positions[SYMBOL].stop
    assert stop.trigger_price == moved and stop.order is not None
    assert stop.order.trigger_price == moved


def test_an_earlier_order_of_the_leg_seen_again_protects_but_the_plan_stays() -> None:
    """The leg lost its order (sl2 confirmed gone); sl1, replaced earlier, is seen live."""
    position = make(SYMBOL, Side.BUY, PositionState.ATTACHING, D("0.010"),
                    D("50000"), "49800", "51000", live_legs=True)
    position = evolve(position, seq={**position.seq, SL.value: 2})
    position = position.with_leg(evolve(position.stop, order=None))
    earlier = leg_id(SYMBOL, SL, 1)
    result = step(position, LegSeen(SL, earlier, D("49500"), D("0.010")), OPENED, Policy())
    stop = result.position.stop
    assert stop.trigger_price == D("49800")
    assert stop.order == LegOrder(earlier, D("49500"), D("0.010"))
    placed = [a for a in result.actions if isinstance(a, PlaceLeg)]
    assert [(a.role, a.trigger_price) for a in placed] == [(SL, D("49800"))]
    assert not [a for a in result.actions if isinstance(a, CancelOrder)]   # new-first


def test_the_latest_id_of_ours_found_by_a_restart_becomes_the_plan() -> None:
    """After a restart the leg is empty and sl1, the last stop the run before placed, is
    found: nothing replaced it, so its level is the plan (no second stop is placed)."""
    position = make(SYMBOL, Side.BUY, PositionState.ATTACHING, D("0.010"),
                    D("50000"), "49800", "51000", live_legs=True)
    position = evolve(position, seq={**position.seq, SL.value: 1})
    position = position.with_leg(evolve(position.stop, order=None))
    latest = leg_id(SYMBOL, SL, 1)
    result = step(position, LegSeen(SL, latest, D("49500"), D("0.010")), OPENED, Policy())
    assert result.position.stop.trigger_price == D("49500")
    assert result.position.stop.order == LegOrder(latest, D("49500"), D("0.010"))
    assert not [a for a in result.actions if isinstance(a, PlaceLeg)]


def test_a_stop_placed_by_hand_still_becomes_the_plan() -> None:
    position = make(SYMBOL, Side.BUY, PositionState.ATTACHING, D("0.010"), D("50000"),
                    "49800", "51000", live_legs=True)
    position = position.with_leg(evolve(position.stop, order=None))
    result = step(position, LegSeen(SL, "web_1", D("49500"), D("0.010")), OPENED, Policy())
    assert result.position.stop.trigger_price == D("49500")
    assert not [a for a in result.actions if isinstance(a, PlaceLeg)]
