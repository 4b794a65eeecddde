"""The exit plan and the trailing stop on the real engine and the paper exchange: the
two-TP plan's legs on the exchange, TP1's fill moving the stop to breakeven for the rest
(new-first, no market order), TP2's fill closing with TAKE_PROFIT, the trail following the
best price through a pullback, and the best price surviving a restart."""

from decimal import Decimal

from bot.format import format_position
from tests.engine_world import SYMBOL, long_signal, make_world, restart
from trader.commands import CommandKind
from trader.domain import CloseReason, OrderRole, OrderStatus, OrderType
from trader.events import Policy
from trader.management import breakeven_price, trail_atr
from trader.position import ExitPlan, PositionState
from trader.startup import boot

TWO = {"TRADEBOT_EXIT_PLAN": "two"}


async def open_long(world, sl_pct: str = "0.01", tp_pct: str = "0.02"):
    await world.warm_up()
    world.strategy.next = long_signal(sl_pct, tp_pct)
    await world.step()
    return world.engine.positions[SYMBOL]


async def legs_on_exchange(world) -> dict[OrderRole, list]:
    legs: dict[OrderRole, list] = {}
    for order in await world.open_orders():
        legs.setdefault(order.role, []).append(order)
    return legs


def roles_sent(world, position) -> list[OrderRole]:
    return [intent.role for intent in world.store.intents_for(SYMBOL, position.key)]


async def test_the_two_tp_plan_puts_tp1_and_tp2_on_the_exchange_for_their_parts(tmp_path):
    """TP1 for half at 1 R (the stop's distance) from the entry, TP2 for the rest at the
    strategy's target, one stop for everything: all reduce-only, all on the exchange."""
    world = await make_world(tmp_path, **TWO)
    position = await open_long(world)
    assert position.exit_plan is ExitPlan.TWO and position.state is PositionState.PROTECTED
    legs = await legs_on_exchange(world)
    [stop], [first], [second] = (legs[OrderRole.STOP_LOSS], legs[OrderRole.TAKE_PROFIT_1],
                                 legs[OrderRole.TAKE_PROFIT])
    assert stop.quantity == position.quantity and stop.type is OrderType.STOP_MARKET
    assert first.type is second.type is OrderType.TAKE_PROFIT_MARKET
    assert first.reduce_only and second.reduce_only
    assert first.quantity == position.tp1_quantity == Decimal("0.113")    # 0.227 / 2, down
    assert first.quantity + second.quantity == position.quantity
    assert first.trigger_price == Decimal("101000.00")    # entry 100000 + 1 x the 1 % stop
    assert second.trigger_price == position.take_profit.trigger_price == Decimal("102000.00")
    assert first.client_id.endswith("-t11") and second.client_id.endswith("-tp1")


async def test_tp1_fill_moves_the_stop_to_breakeven_for_the_rest_and_tp2_stays(tmp_path):
    """TP1 fills on the exchange: in that same tick one new stop at breakeven (entry plus
    the round-trip fees, rounded up) for the remaining quantity goes out first, then the
    old stop is cancelled; TP2's order is untouched and no market order is sent."""
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="2%", **TWO)
    position = await open_long(world)
    old_stop, second = position.stop.order.client_id, position.take_profit.order.client_id
    first = position.take_profit_1.trigger_price

    await world.step(first + 10, high=first + 50)

    after = world.engine.positions[SYMBOL]
    rest = position.quantity - position.tp1_quantity
    assert after.quantity == rest and after.take_profit_1 is None and after.partial_taken
    rules = world.paper.rules(SYMBOL)
    breakeven = breakeven_price(after, Policy().taker_fee, rules)
    assert breakeven > after.entry_price
    legs = await legs_on_exchange(world)
    [stop] = legs[OrderRole.STOP_LOSS]
    assert (stop.trigger_price, stop.quantity) == (breakeven, rest)
    assert stop.client_id.endswith("-sl2"), "one replacement, straight to breakeven"
    assert [o.client_id for o in legs[OrderRole.TAKE_PROFIT]] == [second]
    assert OrderRole.TAKE_PROFIT_1 not in legs
    replaced = await world.paper.order_by_client_id(SYMBOL, old_stop)
    new = await world.paper.order_by_client_id(SYMBOL, stop.client_id)
    assert replaced.status is OrderStatus.CANCELED and new.updated_at <= replaced.updated_at
    assert roles_sent(world, position) == [OrderRole.ENTRY, OrderRole.STOP_LOSS,
                                           OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1,
                                           OrderRole.STOP_LOSS]
    assert any("TP1 filled" in text and "breakeven" in text for text in world.alerts("FILL"))
    assert not world.alerts("POSITION_REDUCED")


async def test_tp2_fill_after_tp1_closes_with_reason_take_profit(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="2%", **TWO)
    position = await open_long(world)
    first, second = position.take_profit_1.trigger_price, position.take_profit.trigger_price
    await world.step(first + 10, high=first + 50)
    await world.step(second + 10, high=second + 50)
    assert SYMBOL not in world.engine.positions
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.TAKE_PROFIT and closed.realized_pnl > 0
    assert await world.open_orders() == []


async def test_a_stop_at_breakeven_after_tp1_closes_the_rest_as_breakeven_stop(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="2%", **TWO)
    position = await open_long(world)
    first = position.take_profit_1.trigger_price
    await world.step(first + 10, high=first + 50)
    stop = world.engine.positions[SYMBOL].stop.trigger_price
    await world.step(stop - 100, low=stop - 200)
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.BREAKEVEN_STOP
    assert closed.realized_pnl > 0          # TP1's profit, and the rest at breakeven


async def test_the_trail_follows_the_best_price_and_a_pullback_leaves_the_stop(tmp_path):
    """After TP1 the stop trails 0.5 % behind the best mark seen: a pullback does not move
    it back, a new high moves it up."""
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%", **TWO)
    position = await open_long(world)
    first = position.take_profit_1.trigger_price
    rules = world.paper.rules(SYMBOL)

    await world.step(first + 10, high=first + 50)                  # TP1 fills; best 101010
    trailed = world.engine.positions[SYMBOL]
    expected = rules.round_price(Decimal("101010.00") * Decimal("0.995"), up=False)
    assert trailed.best_price == Decimal("101010.00")
    assert trailed.stop.trigger_price == expected and trailed.trailing_active

    await world.step(Decimal("100800"))                           # a pullback
    pulled = world.engine.positions[SYMBOL]
    assert pulled.best_price == Decimal("101010.00")
    assert pulled.stop.trigger_price == expected
    [stop] = (await legs_on_exchange(world))[OrderRole.STOP_LOSS]
    assert stop.trigger_price == expected

    await world.step(Decimal("101500"))                           # a new high
    higher = world.engine.positions[SYMBOL]
    assert higher.best_price == Decimal("101500")
    assert higher.stop.trigger_price == rules.round_price(Decimal("101500") * Decimal("0.995"),
                                                          up=False)


async def test_an_atr_trailing_distance_trails_by_that_many_average_true_ranges(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="1.5atr", **TWO)
    position = await open_long(world)
    first = position.take_profit_1.trigger_price
    await world.step(first + 10, high=first + 50)
    trailed = world.engine.positions[SYMBOL]
    average_range = trail_atr(world.candles)
    assert average_range is not None and average_range > 0
    candidate = world.paper.rules(SYMBOL).round_price(
        trailed.best_price - Decimal("1.5") * average_range, up=False)
    breakeven = breakeven_price(trailed, Policy().taker_fee, world.paper.rules(SYMBOL))
    assert trailed.stop.trigger_price == max(candidate, breakeven)
    assert trailed.trailing_active == (candidate > breakeven)


async def test_the_best_price_survives_a_restart_and_the_trail_goes_on_from_it(tmp_path):
    """One-TP plan, trail 0.5 %: the best mark is saved with the position; after a restart
    a lower mark leaves the stop where it was, a higher one moves it from the saved best."""
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    position = await open_long(world, tp_pct="0.03")
    assert position.exit_plan is ExitPlan.ONE
    await world.step(Decimal("101200"))                    # +1.2 %: past the 0.6 % activation
    await world.step(Decimal("101000"))                    # pullback
    before = world.engine.positions[SYMBOL]
    assert before.best_price == Decimal("101200") and before.trailing_active
    stop = before.stop.trigger_price

    again = restart(world)
    await boot(again.engine)
    restored = again.engine.positions[SYMBOL]
    assert restored.best_price == Decimal("101200")
    await again.step(Decimal("100900"))
    assert again.engine.positions[SYMBOL].stop.trigger_price == stop
    assert again.engine.positions[SYMBOL].best_price == Decimal("101200")
    await again.step(Decimal("101400"))
    rules = world.paper.rules(SYMBOL)
    assert again.engine.positions[SYMBOL].stop.trigger_price == rules.round_price(
        Decimal("101400") * Decimal("0.995"), up=False)


async def test_status_shows_both_take_profits_until_tp1_fills(tmp_path):
    """/status on a phone: the SL, TP1 and TP2 with their distance from the mark and
    whether each is on the exchange; after TP1's fill only the target is left."""
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="2%", **TWO)
    position = await open_long(world)
    result = await world.command(CommandKind.STATUS)
    [view] = result.status.positions
    assert (view.first_target_trigger, view.first_target_attached) == (Decimal("101000"), True)
    assert (view.take_profit_trigger, view.take_profit_attached) == (Decimal("102000"), True)
    legs_line = format_position(view)[1]
    assert "TP1 101,000" in legs_line and "TP2 102,000" in legs_line
    assert legs_line.count("✅") == 3

    first = position.take_profit_1.trigger_price
    await world.step(first + 10, high=first + 50)
    [after] = (await world.command(CommandKind.STATUS)).status.positions
    assert after.first_target_trigger is None and after.take_profit_attached
    assert "TP1" not in format_position(after)[1]
