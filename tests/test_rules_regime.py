"""The volatility regime reaches open positions: EXTREME widens the stop x1.5 and the
target x1.2, LOW tightens them (x0.8 / x0.9), new-first through the legs; a stop moved by
breakeven or trailing is never loosened; the regime gauge is set every tick."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.positions import leg_id, make
from trader.domain import OrderRole, OrderType, Side
from trader.events import CancelOrder, PlaceLeg, Policy, Tick
from trader.lifecycle import step
from trader.management import FirstTarget, stop_crossed, with_exit_plan
from trader.position import ExitPlan, Leg, LegOrder, PositionState
from trader.regime_adjust import anchor, first_target_for, follow, levels_for, with_first_target
from trader.strategy.regime import Regime
from trader.symbol_rules import SymbolRules

D = Decimal
RULES = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("5"))
MARK = D("50000")


def long_position(**changes):
    """A protected long at 50,000 planned in NORMAL: stop 49,000 (2 %), target 52,000 (4 %)."""
    position = make(entry="50000", stop="49000", tp="52000")
    return replace(position, regime=anchor(Regime.NORMAL, D("49000"), D("52000")), **changes)


def short_position(**changes):
    position = make(side=Side.SELL, entry="50000", stop="51000", tp="48000")
    return replace(position, regime=anchor(Regime.NORMAL, D("51000"), D("48000")), **changes)


def test_extreme_widens_an_open_long_stop_x1_5_and_target_x1_2() -> None:
    moved = follow(long_position(), Regime.EXTREME, MARK, RULES)
    assert moved.stop.trigger_price == D("48500")           # 1000 x 1.5 below the entry
    assert moved.take_profit.trigger_price == D("52400")    # 2000 x 1.2 above it
    assert moved.regime.applied == "EXTREME" and moved.regime.planned == "NORMAL"


def test_extreme_widens_an_open_short_the_other_way() -> None:
    moved = follow(short_position(), Regime.EXTREME, MARK, RULES)
    assert (moved.stop.trigger_price, moved.take_profit.trigger_price) == (D("51500"), D("47600"))


def test_low_tightens_the_legs_and_normal_restores_the_plan_exactly() -> None:
    low = follow(long_position(), Regime.LOW, MARK, RULES)
    assert (low.stop.trigger_price, low.take_profit.trigger_price) == (D("49200"), D("51800"))
    back = follow(follow(low, Regime.EXTREME, MARK, RULES), Regime.NORMAL, MARK, RULES)
    assert (back.stop.trigger_price, back.take_profit.trigger_price) == (D("49000"), D("52000"))


def test_a_position_planned_in_high_volatility_widens_relative_to_its_plan() -> None:
    """Planned in HIGH (stop x1.3): EXTREME is x1.5 / x1.3 of its planned distance."""
    position = replace(make(entry="50000", stop="48700", tp="52300"),
                       regime=anchor(Regime.HIGH, D("48700"), D("52300")))
    moved = follow(position, Regime.EXTREME, MARK, RULES)
    assert moved.stop.trigger_price == D("48500")           # 1300 / 1.3 x 1.5
    assert moved.take_profit.trigger_price == D("52400")    # 2300 / 1.15 x 1.2


def test_new_levels_are_rounded_once_away_from_the_entry() -> None:
    position = replace(make(entry="50000.3", stop="49123.4", tp="51234.5"),
                       regime=anchor(Regime.NORMAL, D("49123.4"), D("51234.5")))
    moved = follow(position, Regime.EXTREME, D("50000"), RULES)
    # 50000.3 - 876.9 x 1.5 = 48684.95 -> down; 50000.3 + 1234.2 x 1.2 = 51481.34 -> up
    assert (moved.stop.trigger_price, moved.take_profit.trigger_price) == (D("48684.9"),
                                                                           D("51481.4"))


def test_a_stop_moved_to_breakeven_is_never_loosened_by_the_widening() -> None:
    at_breakeven = long_position(breakeven_done=True, partial_taken=True)
    at_breakeven = at_breakeven.with_leg(replace(at_breakeven.stop, trigger_price=D("50050")))
    moved = follow(at_breakeven, Regime.EXTREME, D("50400"), RULES)
    assert moved.stop.trigger_price == D("50050")
    assert moved.take_profit.trigger_price == D("52400")    # the target still follows


def test_a_trailed_stop_is_never_loosened_but_a_tighter_rule_level_is_taken() -> None:
    trailed = long_position(trailing_active=True)
    trailed = trailed.with_leg(replace(trailed.stop, trigger_price=D("49100")))
    assert follow(trailed, Regime.EXTREME, MARK, RULES).stop.trigger_price == D("49100")
    assert follow(trailed, Regime.LOW, MARK, RULES).stop.trigger_price == D("49200")


def test_a_target_moved_by_hand_stays() -> None:
    by_hand = long_position()
    by_hand = by_hand.with_leg(replace(by_hand.take_profit, trigger_price=D("53000")))
    assert follow(by_hand, Regime.EXTREME, MARK, RULES).take_profit.trigger_price == D("53000")


def test_a_tightened_level_the_mark_already_passed_is_not_taken() -> None:
    """LOW would put the stop at 49,200 and the target at 51,800: with the mark at 49,150
    the stop would fire at once (-2021), with the mark at 51,900 the target would."""
    assert follow(long_position(), Regime.LOW, D("49150"), RULES).stop.trigger_price == D("49000")
    assert follow(long_position(), Regime.LOW, D("51900"),
                  RULES).take_profit.trigger_price == D("52000")


def test_an_unanchored_position_is_anchored_at_its_current_legs_without_moving() -> None:
    adopted = make(entry="50000", stop="49500", tp="50750", adopted=True)
    anchored = follow(adopted, Regime.HIGH, MARK, RULES)
    assert anchored.regime == anchor(Regime.HIGH, D("49500"), D("50750"))
    assert anchored.legs == adopted.legs


def test_a_leg_whose_placement_is_unanswered_waits_for_it() -> None:
    waiting = long_position()
    waiting = waiting.with_leg(replace(waiting.take_profit, pending="tb-BTCUSDT-k1-tp2"))
    assert follow(waiting, Regime.EXTREME, MARK, RULES) is waiting
    answered = waiting.with_leg(replace(waiting.take_profit, pending=None))
    assert follow(answered, Regime.EXTREME, MARK, RULES).stop.trigger_price == D("48500")


def test_the_same_or_an_unknown_regime_changes_nothing() -> None:
    position = long_position()
    assert follow(position, Regime.NORMAL, MARK, RULES) is position
    assert follow(position, None, MARK, RULES) is position


@given(side=st.sampled_from([Side.BUY, Side.SELL]),
       stop_ticks=st.integers(1, 20_000), target_ticks=st.integers(1, 40_000),
       planned=st.sampled_from(list(Regime)), regimes=st.lists(st.sampled_from(list(Regime)),
                                                                max_size=6),
       first_share=st.one_of(st.none(), st.integers(1, 99)))
def test_legs_stay_on_the_grid_on_their_side_and_return_to_the_plan(
        side, stop_ticks, target_ticks, planned, regimes, first_share) -> None:
    """Also with TP1 (`first_share` % of the target's distance): it stays on the grid,
    beyond the entry, never beyond the target, and returns to its plan."""
    entry = D("50000")
    stop = entry - side.sign * stop_ticks * RULES.tick_size
    target = entry + side.sign * target_ticks * RULES.tick_size
    first_ticks = max(1, target_ticks * (first_share or 0) // 100)
    first = entry + side.sign * first_ticks * RULES.tick_size \
        if first_share is not None and first_ticks < target_ticks else None
    position = replace(make(side=side, entry=entry, stop=stop, tp=target),
                       regime=anchor(planned, stop, target, first))
    if first is not None:
        position = replace(position, exit_plan=ExitPlan.TWO, tp1_quantity=D("0.05"),
                           take_profit_1=Leg(OrderRole.TAKE_PROFIT_1, first))
    for regime in regimes:
        position = follow(position, regime, entry, RULES)
        for price in (leg.trigger_price for leg in position.legs):
            assert price > 0 and price % RULES.tick_size == 0
        assert (entry - position.stop.trigger_price) * side.sign > 0
        assert (position.take_profit.trigger_price - entry) * side.sign > 0
        expected = levels_for(side, entry, position.regime, regime, RULES)
        assert (position.stop.trigger_price, position.take_profit.trigger_price) == expected
        if first is not None:
            level = position.take_profit_1.trigger_price
            assert 0 < (level - entry) * side.sign <= (position.take_profit.trigger_price
                                                       - entry) * side.sign
            assert level == first_target_for(side, entry, position.regime, regime, RULES)
    back = follow(position, planned, entry, RULES)
    assert (back.stop.trigger_price, back.take_profit.trigger_price) == (stop, target)
    if first is not None:
        assert back.take_profit_1.trigger_price == first


def test_the_state_machine_moves_the_stop_new_first_on_a_tick_with_the_new_regime() -> None:
    position = long_position()
    old = position.stop.order.client_id
    result = step(position, Tick(position.opened_at + timedelta(minutes=1), MARK, RULES,
                                 Regime.EXTREME), position.opened_at, Policy())
    placements = [a for a in result.actions if type(a).__name__ == "PlaceLeg"]
    assert sorted((a.role.name, a.trigger_price) for a in placements) == [
        ("STOP_LOSS", D("48500")), ("TAKE_PROFIT", D("52400"))]
    assert not any(type(a).__name__ == "CancelOrder" for a in result.actions), \
        "the old orders stay until the new ones are live"
    assert result.position.stop.order.client_id == old


async def calm_long(tmp_path) -> World:
    """The engine on the paper exchange with a long opened in a calm market (NORMAL): its
    stop 2 % and its target 4 % from the entry."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    return world


async def violent_candle(world: World, entry: Decimal) -> None:
    """One candle with wicks of +-1.5 % around `entry`, touching neither leg of a calm
    long: a few of them turn the regime HIGH, then EXTREME."""
    await world.step(entry, high=entry * D("1.015"), low=entry * D("0.985"), open_=entry)


async def test_extreme_volatility_widens_an_open_position_on_the_exchange(tmp_path) -> None:
    """Real engine on the paper exchange: a long opened in a calm market; violent candles
    turn the regime EXTREME; the stop and target on the exchange move to 1.5 x and 1.2 x
    their distances, new orders before old cancelled."""
    world = await calm_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    entry = position.entry_price
    stop_distance = entry - position.stop.trigger_price
    target_distance = position.take_profit.trigger_price - entry
    assert world.engine.counters.get(SYMBOL, "regime_state") == "NORMAL"
    for _ in range(6):
        before = world.engine.positions[SYMBOL].stop.order.client_id
        await violent_candle(world, entry)
        if world.engine.counters.get(SYMBOL, "regime_state") == "EXTREME":
            break
    assert world.engine.counters.get(SYMBOL, "regime_state") == "EXTREME"
    held = world.engine.positions[SYMBOL]
    assert held.stop.trigger_price == RULES.round_price(entry - stop_distance * D("1.5"), up=False)
    assert held.take_profit.trigger_price == RULES.round_price(entry + target_distance * D("1.2"),
                                                              up=True)
    orders = {o.type: o for o in await world.open_orders()}
    assert set(orders) == {OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET}
    assert orders[OrderType.STOP_MARKET].trigger_price == held.stop.trigger_price
    assert orders[OrderType.TAKE_PROFIT_MARKET].trigger_price == held.take_profit.trigger_price
    assert orders[OrderType.STOP_MARKET].quantity == held.quantity
    replaced = await world.paper.order_by_client_id(SYMBOL, before)
    current = await world.paper.order_by_client_id(SYMBOL, held.stop.order.client_id)
    assert replaced.status.name == "CANCELED" and current.updated_at <= replaced.updated_at
    assert not stop_crossed(Side.BUY, held.stop.trigger_price, entry)


async def test_the_regime_gauge_is_set_every_tick_for_a_flat_symbol_even_asleep(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    assert world.engine.counters.get(SYMBOL, "regime_state") == "NORMAL"
    world.engine.counters.set(SYMBOL, "regime_state", "")
    world.engine.guards.set(replace(world.engine.guard_state, asleep=True))
    await world.step()
    assert world.engine.counters.get(SYMBOL, "regime_state") == "NORMAL"


async def test_extreme_volatility_moves_tp1_with_tp2_on_the_exchange(tmp_path) -> None:
    """Two-TP plan (TP1 for half at 1 R = 2 %, TP2 at 4 %): when the regime turns EXTREME
    TP1's distance from the entry scales x1.2 like TP2's, new order before the old one is
    cancelled, its part unchanged; the three legs on the exchange are the record's."""
    world = await make_world(tmp_path, TRADEBOT_EXIT_PLAN="two")
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    position = world.engine.positions[SYMBOL]
    assert position.take_profit_1 is not None
    entry = position.entry_price
    first_distance = position.take_profit_1.trigger_price - entry
    target_distance = position.take_profit.trigger_price - entry
    for _ in range(6):
        old_first = world.engine.positions[SYMBOL].take_profit_1.order.client_id
        await world.step(entry, high=entry * D("1.015"), low=entry * D("0.985"), open_=entry)
        if world.engine.counters.get(SYMBOL, "regime_state") == "EXTREME":
            break
    assert world.engine.counters.get(SYMBOL, "regime_state") == "EXTREME"
    held = world.engine.positions[SYMBOL]
    assert held.take_profit.trigger_price == RULES.round_price(
        entry + target_distance * D("1.2"), up=True)
    assert held.take_profit_1.trigger_price == RULES.round_price(
        entry + first_distance * D("1.2"), up=True)
    assert entry < held.take_profit_1.trigger_price < held.take_profit.trigger_price
    legs = {}
    for order in await world.open_orders():
        legs.setdefault(order.role, []).append(order)
    [first] = legs[OrderRole.TAKE_PROFIT_1]
    [second] = legs[OrderRole.TAKE_PROFIT]
    assert (first.trigger_price, first.quantity) == (held.take_profit_1.trigger_price,
                                                     position.tp1_quantity)
    assert second.trigger_price == held.take_profit.trigger_price
    assert first.quantity + second.quantity == held.quantity
    assert first.client_id == held.take_profit_1.order.client_id != old_first
    replaced = await world.paper.order_by_client_id(SYMBOL, old_first)
    assert replaced.status.name == "CANCELED" and first.updated_at <= replaced.updated_at


# --- two-TP plan: TP1 follows the regime like the final target, until it fills ------------

def two_tp_long(**changes):
    """`long_position` under the two-TP plan: TP1 for half at 51,000 (1 R), TP2 at 52,000."""
    position = long_position()
    first = Leg(OrderRole.TAKE_PROFIT_1, D("51000"),
                LegOrder(leg_id(SYMBOL, OrderRole.TAKE_PROFIT_1), D("51000"), D("0.05")))
    return replace(position, exit_plan=ExitPlan.TWO, tp1_quantity=D("0.05"),
                   take_profit_1=first, seq={**position.seq, OrderRole.TAKE_PROFIT_1.value: 1},
                   regime=anchor(Regime.NORMAL, D("49000"), D("52000"), D("51000")),
                   **changes)


def test_extreme_moves_tp1_x1_2_with_the_final_target() -> None:
    moved = follow(two_tp_long(), Regime.EXTREME, MARK, RULES)
    assert (moved.stop.trigger_price, moved.take_profit_1.trigger_price,
            moved.take_profit.trigger_price) == (D("48500"), D("51200"), D("52400"))
    low = follow(moved, Regime.LOW, MARK, RULES)
    assert low.take_profit_1.trigger_price == D("50900")          # 1000 x 0.9
    back = follow(low, Regime.NORMAL, MARK, RULES)
    assert back.legs == two_tp_long().legs


def test_a_short_tp1_moves_down_and_is_rounded_away_from_the_entry() -> None:
    position = short_position()
    first = Leg(OrderRole.TAKE_PROFIT_1, D("49333.3"))
    position = replace(position, exit_plan=ExitPlan.TWO, tp1_quantity=D("0.05"),
                       take_profit_1=first,
                       regime=anchor(Regime.NORMAL, D("51000"), D("48000"), D("49333.3")))
    moved = follow(position, Regime.EXTREME, MARK, RULES)
    assert moved.take_profit_1.trigger_price == D("49199.9")      # 666.7 x 1.2 = 800.04
    assert moved.take_profit.trigger_price == D("47600")


def test_a_filled_tp1_is_not_brought_back_and_the_rest_still_follows() -> None:
    after_tp1 = replace(two_tp_long(), take_profit_1=None, partial_taken=True,
                        quantity=D("0.05"))
    moved = follow(after_tp1, Regime.EXTREME, MARK, RULES)
    assert moved.take_profit_1 is None and moved.legs[1:] == (moved.take_profit,)
    assert moved.take_profit.trigger_price == D("52400")


def test_the_one_tp_plan_has_no_tp1_to_move() -> None:
    one = long_position()
    assert one.regime.take_profit_1 is None
    moved = follow(one, Regime.EXTREME, MARK, RULES)
    assert moved.take_profit_1 is None and len(moved.legs) == 2
    assert (moved.stop.trigger_price, moved.take_profit.trigger_price) == (D("48500"),
                                                                           D("52400"))


def test_tp1_anchored_before_it_was_remembered_stays_where_it_is() -> None:
    """A record whose anchor predates TP1 in it (no `take_profit_1`): TP1 is not guessed."""
    older = replace(two_tp_long(), regime=anchor(Regime.NORMAL, D("49000"), D("52000")))
    moved = follow(older, Regime.EXTREME, MARK, RULES)
    assert moved.take_profit_1 == older.take_profit_1
    assert moved.take_profit.trigger_price == D("52400")


def test_tp1_the_mark_already_reached_or_moved_by_hand_stays() -> None:
    """LOW would bring TP1 to 50,900: with the mark at 50,950 it would fire at once."""
    assert follow(two_tp_long(), Regime.LOW, D("50950"),
                  RULES).take_profit_1.trigger_price == D("51000")
    by_hand = two_tp_long()
    by_hand = by_hand.with_leg(replace(by_hand.take_profit_1, trigger_price=D("51100")))
    assert follow(by_hand, Regime.EXTREME, MARK, RULES).take_profit_1.trigger_price == D("51100")


def test_tp1_never_moves_past_the_final_target() -> None:
    """TP2 moved by hand to 51,100 stays there; TP1 widened to 51,200 would lie beyond it:
    it goes no further than the target (both close there)."""
    position = two_tp_long()
    position = position.with_leg(replace(position.take_profit, trigger_price=D("51100")))
    moved = follow(position, Regime.EXTREME, MARK, RULES)
    assert moved.take_profit_1.trigger_price == D("51100")
    assert moved.take_profit.trigger_price == D("51100")


def test_tp1_rounded_onto_the_final_target_shares_its_tick_and_returns_to_the_plan() -> None:
    """TP1 19 ticks and TP2 20 ticks from the entry: x0.9 rounds both up to 18 ticks."""
    position = replace(make(entry="50000", stop="49998", tp="50002"), exit_plan=ExitPlan.TWO,
                       tp1_quantity=D("0.05"), take_profit_1=Leg(OrderRole.TAKE_PROFIT_1,
                                                                 D("50001.9")),
                       regime=anchor(Regime.NORMAL, D("49998"), D("50002"), D("50001.9")))
    low = follow(position, Regime.LOW, D("50000"), RULES)
    assert low.take_profit_1.trigger_price == low.take_profit.trigger_price == D("50001.8")
    back = follow(low, Regime.NORMAL, D("50000"), RULES)
    assert back.take_profit_1.trigger_price == D("50001.9")
    assert back.take_profit.trigger_price == D("50002")


def test_an_unanswered_tp1_placement_holds_every_leg() -> None:
    waiting = two_tp_long()
    waiting = waiting.with_leg(replace(waiting.take_profit_1, pending="tb-BTCUSDT-k1-t12"))
    assert follow(waiting, Regime.EXTREME, MARK, RULES) is waiting


def test_an_unanchored_two_tp_position_is_anchored_with_its_tp1() -> None:
    position = replace(two_tp_long(), regime=None)
    assert follow(position, Regime.HIGH, MARK, RULES).regime == anchor(
        Regime.HIGH, D("49000"), D("52000"), D("51000"))


def test_the_entry_plan_anchors_tp1_where_the_exit_plan_put_it() -> None:
    planned = replace(make(state=PositionState.ENTERING, entry="50000", stop="49000",
                           tp="52000"), regime=anchor(Regime.NORMAL, D("49000"), D("52000")))
    two = with_first_target(with_exit_plan(planned, FirstTarget(), RULES))
    assert two.regime == anchor(Regime.NORMAL, D("49000"), D("52000"), D("51000"))
    one = with_first_target(with_exit_plan(planned, None, RULES))
    assert one.regime.take_profit_1 is None


def test_the_state_machine_replaces_tp1_new_first_on_a_regime_change() -> None:
    position = two_tp_long()
    result = step(position, Tick(position.opened_at + timedelta(minutes=1), MARK, RULES,
                                 Regime.EXTREME), position.opened_at, Policy())
    placements = {a.role: a for a in result.actions if isinstance(a, PlaceLeg)}
    first = placements[OrderRole.TAKE_PROFIT_1]
    assert (first.trigger_price, first.quantity) == (D("51200"), D("0.05"))
    assert first.client_id.endswith("-t12")
    assert placements[OrderRole.TAKE_PROFIT].quantity == D("0.05")
    assert not any(isinstance(a, CancelOrder) for a in result.actions)
    assert result.position.take_profit_1.order.client_id == position.take_profit_1.order.client_id
