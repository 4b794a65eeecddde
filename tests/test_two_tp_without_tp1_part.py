"""A two-TP position whose TP1 lost its part (it came to no more than TP2's planned part:
a maker entry filled in part and gave up the rest, a stop filled in part, a reduction by
hand) follows the one-TP plan once that plan's first profit is due: the market partial,
the stop to breakeven, the trail (trader/management.py `first_target_gone`). Before, TP1
waited for a fill that could never come, and the stop stayed at -1 R however far the price
ran. The switch is saved with the position and a restart decides the same. A position
whose TP1 keeps a part keeps the two-TP plan exactly, and TP1 filled before the size grows
leaves the rest with TP2 and the stop."""

from dataclasses import replace
from decimal import Decimal

from tests.engine_world import SYMBOL, World, long_signal, make_world, restart
from tests.positions import leg_id
from tests.test_exit_plan import T1, apply, cancels, tick, two_tp_long
from tests.test_maker_engine import MAKER, fill_part, later, live_quotes, quoting_long
from trader.domain import OrderRole
from trader.events import Flatten, Policy, PositionSizeChanged
from trader.management import breakeven_price, partial_tp_trigger
from trader.position import ExitPlan, Leg, Position, PositionState
from trader.startup import boot

D = Decimal
TWO = {"TRADEBOT_EXIT_PLAN": "two", "TRADEBOT_TRAILING_DISTANCE": "0.5%"}


async def open_long(world: World) -> Position:
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    position = world.engine.positions[SYMBOL]
    assert position.exit_plan is ExitPlan.TWO and position.state is PositionState.PROTECTED
    return position


async def legs_on_exchange(world: World) -> dict[OrderRole, list]:
    legs: dict[OrderRole, list] = {}
    for order in await world.open_orders():
        legs.setdefault(order.role, []).append(order)
    return legs


def partials_sent(world: World, position: Position) -> list:
    return [i for i in world.store.intents_for(SYMBOL, position.key)
            if i.role is OrderRole.PARTIAL_TP]


async def settle(world: World, ticks: int = 3) -> None:
    for _ in range(ticks):
        await later(world, 2)


async def partly_entered(world: World, fraction: str) -> Position:
    """A maker entry of the two-TP plan fills `fraction` and gives up the rest."""
    position, quote = await quoting_long(world)
    assert position.exit_plan is ExitPlan.TWO
    fill_part(world, quote.client_id, world.paper.rules(SYMBOL).round_qty(
        position.quantity * D(fraction)))
    await later(world, 5)
    await later(world, 26)                 # the time is up: the rest is given up
    await settle(world)
    return world.engine.positions[SYMBOL]


def first_profit_price(position: Position) -> Decimal:
    """Just past the one-TP plan's partial trigger (0.35 % for BTCUSDT), below TP1."""
    return (position.entry_price * (1 + partial_tp_trigger(SYMBOL)) + 20).quantize(D("0.1"))


async def assert_one_tp_plan_protects_the_profit(world: World, before: Position) -> None:
    """From a record whose TP1 has no part: at the first profit the one-TP plan (the market
    partial, the stop to breakeven), at +1.5 R the trail; TP1 never placed again."""
    entry, risk = before.entry_price, before.entry_price - before.stop.trigger_price
    price = first_profit_price(before)
    await world.step(price, high=price + 10, low=price - 10)
    await world.step(price, high=price + 10, low=price - 10)
    after = world.engine.positions[SYMBOL]
    breakeven = breakeven_price(after, Policy().taker_fee, world.paper.rules(SYMBOL))
    legs = await legs_on_exchange(world)
    [stop], [target] = legs[OrderRole.STOP_LOSS], legs[OrderRole.TAKE_PROFIT]
    assert stop.trigger_price >= breakeven > entry, "the stop stayed at -1 R"
    [partial] = partials_sent(world, after)
    assert after.quantity == before.quantity - partial.quantity
    assert stop.quantity == target.quantity == after.quantity
    assert OrderRole.TAKE_PROFIT_1 not in legs
    assert after.exit_plan is ExitPlan.ONE and after.take_profit_1 is None
    assert after.partial_taken and after.breakeven_done
    assert any("TP1 has nothing to close" in text for text in world.alerts("PROTECTION"))

    high = entry + risk * D("1.5")
    for _ in range(2):
        await world.step(high, high=high + 10, low=high - 10)
    trailed = world.engine.positions[SYMBOL]
    assert trailed.trailing_active and trailed.stop.trigger_price > breakeven
    [stop] = (await legs_on_exchange(world))[OrderRole.STOP_LOSS]
    assert stop.trigger_price == trailed.stop.trigger_price


# --- TP1 lost its part: the one-TP plan --------------------------------------------------

async def test_a_maker_entry_filled_below_tp2s_part_follows_the_one_tp_plan_restart_or_not(
        tmp_path):
    """40 % filled, the rest given up: TP1 has nothing to close. A restart before the price
    moves decides the same; one after the switch keeps the one-TP plan (saved)."""
    world = await make_world(tmp_path, **MAKER, **TWO, TRADEBOT_MAKER_FALLBACK="cancel")
    before = await partly_entered(world, "0.4")
    assert before.quantity < before.initial_quantity - before.tp1_quantity
    assert before.leg_quantity(OrderRole.TAKE_PROFIT_1) == 0
    assert before.state is PositionState.PROTECTED

    world = restart(world, **MAKER, **TWO, TRADEBOT_MAKER_FALLBACK="cancel")
    await boot(world.engine)
    await assert_one_tp_plan_protects_the_profit(world, before)

    kept = world.engine.positions[SYMBOL]
    again = restart(world, **MAKER, **TWO, TRADEBOT_MAKER_FALLBACK="cancel")
    await boot(again.engine)
    restored = again.engine.positions[SYMBOL]
    assert restored.exit_plan is ExitPlan.ONE and restored.take_profit_1 is None
    assert restored.stop.trigger_price == kept.stop.trigger_price
    await again.step(kept.best_price)
    assert OrderRole.TAKE_PROFIT_1 not in await legs_on_exchange(again)
    assert len(partials_sent(again, restored)) == 1


async def test_a_stop_filled_in_part_below_tp2s_part_follows_the_one_tp_plan(tmp_path):
    """3/5 of the stop fills (0.136 of 0.227; TP2's part is 0.114): TP1's order goes, and
    when the price comes back up the rest is managed as under the one-TP plan."""
    world = await make_world(tmp_path, **TWO)
    position = await open_long(world)
    world.fill_stop_in_part(position)
    await world.step()
    before = world.engine.positions[SYMBOL]
    assert before.quantity < position.initial_quantity - position.tp1_quantity
    assert OrderRole.TAKE_PROFIT_1 not in await legs_on_exchange(world)
    await assert_one_tp_plan_protects_the_profit(world, before)


async def test_a_hand_reduction_below_tp2s_part_follows_the_one_tp_plan(tmp_path):
    world = await make_world(tmp_path, **TWO)
    position = await open_long(world)
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now(),
                                                      quantity=D("0.120")))
    await world.step()
    before = world.engine.positions[SYMBOL]
    assert before.quantity == D("0.107") < position.initial_quantity - position.tp1_quantity
    assert OrderRole.TAKE_PROFIT_1 not in await legs_on_exchange(world)
    await assert_one_tp_plan_protects_the_profit(world, before)


# --- TP1 keeps a part: the two-TP plan, exactly as before -----------------------------------

async def assert_two_tp_plan_goes_on(world: World, before: Position) -> None:
    """At the one-TP plan's first profit nothing happens (no market partial, the stop
    where it was, TP1 and TP2 for their parts); TP1's fill then moves the stop."""
    price = first_profit_price(before)
    await world.step(price, high=price + 10, low=price - 10)
    await world.step(price, high=price + 10, low=price - 10)
    held = world.engine.positions[SYMBOL]
    assert held.exit_plan is ExitPlan.TWO and held.take_profit_1 is not None
    assert not held.partial_taken and not partials_sent(world, held)
    assert held.stop.trigger_price == before.stop.trigger_price
    legs = await legs_on_exchange(world)
    [first], [second] = legs[OrderRole.TAKE_PROFIT_1], legs[OrderRole.TAKE_PROFIT]
    assert first.quantity == held.leg_quantity(OrderRole.TAKE_PROFIT_1) > 0
    assert first.quantity + second.quantity == held.quantity
    assert not any("TP1 has nothing to close" in t for t in world.alerts("PROTECTION"))

    level = held.take_profit_1.trigger_price
    await world.step(level + 10, high=level + 50)
    after = world.engine.positions[SYMBOL]
    assert after.take_profit_1 is None and after.partial_taken
    assert after.exit_plan is ExitPlan.TWO and not partials_sent(world, after)
    assert after.stop.trigger_price > after.entry_price


async def test_a_two_tp_position_whose_tp1_keeps_a_part_keeps_the_two_tp_plan(tmp_path):
    world = await make_world(tmp_path, **TWO)
    await assert_two_tp_plan_goes_on(world, await open_long(world))


async def test_a_hand_reduction_that_leaves_tp1_a_part_keeps_the_two_tp_plan(tmp_path):
    world = await make_world(tmp_path, **TWO)
    await open_long(world)
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now(),
                                                      quantity=D("0.050")))
    await world.step()
    before = world.engine.positions[SYMBOL]
    assert before.leg_quantity(OrderRole.TAKE_PROFIT_1) == D("0.063")
    await assert_two_tp_plan_goes_on(world, before)


async def test_a_maker_entry_whose_first_fill_is_below_tp2s_part_and_then_fills_keeps_two_tps(
        tmp_path):
    """30 % first (TP1 has no part for a while), the rest at market at the timeout: TP1
    gets its part back and the plan stays two-TP."""
    world = await make_world(tmp_path, **MAKER, **TWO)
    before = await partly_entered(world, "0.3")
    assert before.quantity == before.initial_quantity and before.exit_plan is ExitPlan.TWO
    await assert_two_tp_plan_goes_on(world, before)


# --- TP1 filled, then the size grows ----------------------------------------------------------

async def test_after_tp1_the_rest_of_the_entry_is_given_up_and_tp2_and_the_stop_cover_it(
        tmp_path):
    """80 % filled, TP1 fills (its part): the rest of the entry is given up (a maker entry
    buys no more once a first profit is taken: trader/maker_entry.py), no TP1 again and no
    market partial; the stop (at breakeven or trailing) and TP2 cover what is held. (Before
    that rule the re-quote bought the rest here, on a stop planned for the part that
    profited.)"""
    world = await make_world(tmp_path, **MAKER, **TWO)
    position, quote = await quoting_long(world)
    fill_part(world, quote.client_id, world.paper.rules(SYMBOL).round_qty(
        position.quantity * D("0.8")))
    await later(world, 5)
    await settle(world)
    entered = world.engine.positions[SYMBOL]
    first = entered.take_profit_1.trigger_price
    await later(world, 2, price=str(first + 10))            # TP1 fills
    await settle(world)
    after_tp1 = world.engine.positions[SYMBOL]
    assert after_tp1.take_profit_1 is None and after_tp1.partial_taken
    assert await live_quotes(world) == []
    await later(world, 40)                                  # past the maker timeout
    await settle(world)
    held = world.engine.positions[SYMBOL]
    assert held.quantity == after_tp1.quantity          # nothing bought once TP1 was taken
    assert held.exit_plan is ExitPlan.TWO and held.take_profit_1 is None
    assert not partials_sent(world, held)
    legs = await legs_on_exchange(world)
    assert OrderRole.TAKE_PROFIT_1 not in legs
    [stop], [target] = legs[OrderRole.STOP_LOSS], legs[OrderRole.TAKE_PROFIT]
    assert stop.quantity == target.quantity == held.quantity
    assert stop.trigger_price == held.stop.trigger_price > entered.entry_price
    assert held.state is PositionState.PROTECTED


# --- pure: TP1's own fill not heard yet is never taken for a lost part ---------------------

def flattens(result) -> list[Flatten]:
    return [a for a in result.actions if isinstance(a, Flatten)]


def test_a_partless_tp1_whose_order_is_live_or_unanswered_is_not_switched() -> None:
    """The position shrank to TP2's part while TP1's order still looks live (its own fill
    reported late) or its placement is unanswered: no switch, no market partial at the
    first profit (TP1's fill would be a second profit taken); TP1's order is cancelled and
    its read-back says what happened. With nothing of TP1 left on the exchange, the switch,
    at the first profit only."""
    shrunk, _ = apply(two_tp_long(), PositionSizeChanged(D("0.050"), D("50000")))
    assert shrunk.leg_quantity(T1) == 0
    mark = "50300"                                       # +0.6 %: past the partial trigger
    unanswered = replace(shrunk, take_profit_1=Leg(T1, D("50500"),
                                                   pending=leg_id(SYMBOL, T1, 2)))
    waiting = tick(unanswered, mark)
    assert not flattens(waiting) and waiting.position.exit_plan is ExitPlan.TWO
    ticked = tick(shrunk, mark)
    assert [c.role for c in cancels(ticked)] == [T1] and not flattens(ticked)
    assert ticked.position.exit_plan is ExitPlan.TWO and not ticked.position.partial_taken

    gone = ticked.position                                # TP1 cancelled: nothing left of it
    early = tick(gone, "50100", seconds=62)               # +0.2 %: no rule of either plan due
    assert not flattens(early) and early.position.exit_plan is ExitPlan.TWO
    switched = tick(gone, mark, seconds=62)
    [partial] = flattens(switched)
    assert partial.quantity == D("0.025") and switched.position.exit_plan is ExitPlan.ONE
    assert switched.position.take_profit_1 is None and switched.position.partial_taken
    assert switched.position.regime is None or switched.position.regime.take_profit_1 is None
