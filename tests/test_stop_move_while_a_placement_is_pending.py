"""A stop move decided while the stop's last placement waits for its lost answer (a timeout:
probed by client id, never resent): when the probe finds that order, it is the OLD level. It
protects (it takes the place of the stop before it) and is replaced at once by the level
asked for meanwhile, new-first. It used to be taken as the plan (the rule for a placement
the executor re-rounded onto a new tick grid: the exchange's trigger is the plan), which
undid the move without a word. The leg now remembers the level each pending placement was
sent at (`Leg.pending_trigger`), so the two cases are told apart."""

from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.positions import OPENED, leg_id, make
from tests.test_move_stop_command import next_stop_answer_lost, stops, world_with_a_long
from trader.commands import CommandKind
from trader.domain import OrderRole, Side
from trader.events import CancelOrder, LegPlaced, LegSeen, PlaceLeg, Policy, StopMoveRequested
from trader.evolve import evolve
from trader.lifecycle import step
from trader.position import PositionState

D, SL = Decimal, OrderRole.STOP_LOSS


async def test_a_move_while_the_last_stop_placement_is_unanswered_is_not_undone(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    real_cancel, cancelled_with_another_live = world.paper.cancel, list[bool]()
    next_stop_answer_lost(world)

    async def cancel(symbol, client_id):  # type: ignore[no-untyped-def]
        others = [o for o in await stops(world) if o.client_id != client_id]
        cancelled_with_another_live.append(bool(others))
        return await real_cancel(symbol, client_id)
    world.paper.cancel = cancel
    rules = world.paper.rules(SYMBOL)
    first = rules.round_price((position.stop.trigger_price * 2 + position.entry_price) / 3,
                              up=False)
    await world.command(CommandKind.SL, symbol=SYMBOL, price=first)
    pending = world.engine.positions[SYMBOL]
    assert pending.stop.pending is not None          # probing, not resent
    second = rules.round_price((position.stop.trigger_price + position.entry_price * 2) / 3,
                               up=False)
    # What /sl hands the state machine (trader/control_stop.py), inside a unit of work as
    # the controller runs a command.
    engine = world.engine
    await engine.store.unit_of_work(engine.interpreter.apply(pending, StopMoveRequested(second)))
    for _ in range(3):
        await world.step()
    assert [o.trigger_price for o in await stops(world)] == [second]
    held = world.engine.positions[SYMBOL]
    assert held.stop.trigger_price == second and held.stop.order is not None
    assert held.stop.order.trigger_price == second and held.stop.pending is None
    assert cancelled_with_another_live and all(cancelled_with_another_live)


def pending_long(sent_at: str, plan: str):  # type: ignore[no-untyped-def]
    """A protected long whose stop (live at 49500) is being replaced: the placement sent
    at `sent_at` is unanswered, and the plan is now `plan`."""
    position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, D("0.010"), D("50000"),
                    "49500", "51000", live_legs=True)
    position, client_id = position.placing(evolve(position.stop, trigger_price=D(sent_at)))
    return position.with_leg(evolve(position.stop, trigger_price=D(plan))), client_id


def test_a_found_placement_at_the_old_level_protects_and_is_replaced_new_first() -> None:
    position, client_id = pending_long("49600", "49800")
    old = position.stop.order
    assert old is not None
    for found in (LegPlaced(SL, client_id, D("49600"), D("0.010")),
                  LegSeen(SL, client_id, D("49600"), D("0.010"))):
        result = step(position, found, OPENED, Policy())
        stop = result.position.stop
        assert stop.trigger_price == D("49800")            # the plan stays the move
        assert stop.order is not None and stop.order.client_id == client_id   # it protects
        placed = [a for a in result.actions if isinstance(a, PlaceLeg)]
        assert [(a.role, a.trigger_price) for a in placed] == [(SL, D("49800"))]
        cancels = [a.client_id for a in result.actions if isinstance(a, CancelOrder)]
        assert cancels == [old.client_id]       # the stop before it; the found one stays
        assert stop.pending == placed[0].client_id


def test_a_placement_re_rounded_by_the_exchange_is_still_the_plan() -> None:
    """Unmoved since it was sent: the exchange's trigger (a tick away, re-rounded onto a new
    grid after a filter rejection) is the plan, not replaced."""
    position, client_id = pending_long("49600", "49600")
    result = step(position, LegPlaced(SL, client_id, D("49599.5"), D("0.010")), OPENED, Policy())
    stop = result.position.stop
    assert stop.trigger_price == D("49599.5") and stop.pending is None
    assert not [a for a in result.actions if isinstance(a, PlaceLeg)]
    assert stop.order is not None and stop.order.client_id == client_id
    assert leg_id(SYMBOL, SL, 1) in [a.client_id for a in result.actions
                                     if isinstance(a, CancelOrder)]
