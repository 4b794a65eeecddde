"""Engine-level contracts on the paper exchange: entry -> confirm -> both legs verified,
terminal detection first, cancel -> verify -> act, idempotent intents, no flips."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, long_signal, make_world, short_signal
from trader.domain import (
    CloseReason,
    IntentStatus,
    OrderRole,
    OrderType,
    Side,
)
from trader.entry import EntryLimits, entering_position
from trader.events import CloseRequested, EntryFilled
from trader.exchange.errors import Outcome
from trader.intents import entry_intent
from trader.position import PositionState
from trader.risk import EntryPlan


async def open_long(world, sl_pct: str = "0.01", tp_pct: str = "0.02"):
    await world.warm_up()
    world.strategy.next = long_signal(sl_pct, tp_pct)
    await world.step()
    return world.engine.positions[SYMBOL]


async def test_entry_is_confirmed_then_both_legs_attached_and_verified(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)

    assert position.state is PositionState.PROTECTED
    exchange_position = await world.paper.position(SYMBOL)
    assert exchange_position.quantity == position.quantity > 0
    orders = {o.type: o for o in await world.open_orders()}
    assert set(orders) == {OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET}
    for order in orders.values():
        assert order.side is Side.SELL and order.reduce_only
        assert order.quantity == position.quantity
    assert orders[OrderType.STOP_MARKET].trigger_price == position.stop.trigger_price < position.entry_price
    assert orders[OrderType.TAKE_PROFIT_MARKET].trigger_price == position.take_profit.trigger_price \
        > position.entry_price
    intents = world.store.intents_for(SYMBOL, position.key)
    assert [i.role for i in intents] == [OrderRole.ENTRY, OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT]


async def test_stop_loss_fill_finalizes_before_any_other_order_is_sent(tmp_path):
    """Terminal detection first: once the stop filled, no other order is sent that tick."""
    world = await make_world(tmp_path)
    position = await open_long(world)
    sent_before = world.sent

    await world.step(position.stop.trigger_price - 50, low=position.stop.trigger_price - 200)

    assert world.sent == sent_before
    assert SYMBOL not in world.engine.positions
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.STOP_LOSS and closed.realized_pnl < 0
    assert await world.open_orders() == []          # the take-profit sibling was cancelled
    assert any("STOP_LOSS" in text for text in world.alerts("CLOSE"))
    assert world.engine.guard_state.cooldowns[SYMBOL] > world.clock.now()


async def test_take_profit_fill_closes_with_reason_and_cancels_the_stop(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world, tp_pct="0.006")
    take = position.take_profit.trigger_price
    await world.step(take + 10, high=take + 100)
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.TAKE_PROFIT and closed.realized_pnl > 0
    assert await world.open_orders() == []


async def test_stop_filled_before_a_move_finalizes_and_sends_no_new_order(tmp_path):
    """Cancel -> verify -> act: a fill that raced the replacement wins; no new stop."""
    world = await make_world(tmp_path)
    position = await open_long(world)
    # The market runs through the stop, but the engine has not observed it yet.
    stop = position.stop.trigger_price
    candle = world.candle(stop - 50, low=stop - 100)
    world.paper.feed_candle(candle)
    world.candles.append(candle)
    sent_before = world.sent
    await world.engine.tick()
    assert world.sent == sent_before
    assert SYMBOL not in world.engine.positions
    assert world.store.closed_positions()[-1].close_reason is CloseReason.STOP_LOSS
    assert await world.open_orders() == []


async def test_replaced_stop_is_confirmed_before_the_old_one_is_cancelled(tmp_path):
    """New-first: the stop moved up is placed and live before the old one is cancelled."""
    world = await make_world(tmp_path)
    position = await open_long(world)
    old = position.stop.order.client_id
    from dataclasses import replace as change
    moved = position.with_leg(change(position.stop, trigger_price=position.stop.trigger_price + 100))
    world.engine.interpreter.positions[SYMBOL] = moved
    await world.step()
    tracked = world.engine.positions[SYMBOL]
    assert tracked.stop.order.client_id != old and tracked.stop.order.client_id.endswith("sl2")
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert [o.client_id for o in stops] == [tracked.stop.order.client_id]
    old_order = await world.paper.order_by_client_id(SYMBOL, old)
    new_order = await world.paper.order_by_client_id(SYMBOL, tracked.stop.order.client_id)
    assert old_order.status.name == "CANCELED"
    assert new_order.updated_at <= old_order.updated_at   # new placed before old cancelled


async def test_duplicated_intent_sends_exactly_one_order(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    position, client_id = entering(world).next_client_id(OrderRole.ENTRY)
    intent = entry_intent(position, client_id, world.clock.now())
    first = await world.engine.executor.submit(intent)
    second = await world.engine.executor.submit(intent)
    assert first.ok and second.outcome is Outcome.NOOP
    assert world.sent == 1
    fills = await world.paper.fills(SYMBOL, world.clock.now() - timedelta(days=1))
    assert len(fills) == 1


def entering(world, quantity: str = "0.010", stop: str = "99000", take: str = "101000"):
    plan = EntryPlan(Decimal(quantity), Decimal(stop), Decimal(take), Decimal(0), Decimal(0),
                     Decimal(0), Decimal(0), Decimal(0))
    limits = EntryLimits(5, Decimal("0.06"), Decimal("0.5"), timedelta(minutes=40),
                         timedelta(minutes=5))
    from trader.domain import Signal
    signal = Signal(Side.BUY, 0.8, Decimal("0.02"), Decimal("0.01"))
    return entering_position(SYMBOL, signal, plan, world.last_close, world.clock.now(),
                             world.clock.now(), limits)


async def test_partial_entry_fill_sizes_exits_to_the_filled_quantity(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    position, client_id = entering(world, quantity="0.050").next_client_id(OrderRole.ENTRY)
    world.engine.interpreter.adopt(position)
    # Only 0.020 of the 0.050 entry filled (the rest expired on the exchange).
    await world.engine.executor.submit(replace(entry_intent(position, client_id,
                                                            world.clock.now()),
                                               quantity=Decimal("0.020")))
    await world.step()
    tracked = world.engine.positions[SYMBOL]
    assert tracked.quantity == Decimal("0.020")
    legs = [o for o in await world.open_orders() if o.reduce_only]
    assert sorted(o.quantity for o in legs) == [Decimal("0.020"), Decimal("0.020")]


async def test_an_entry_filled_in_two_parts_ends_with_one_stop_and_one_target_for_the_whole(
        tmp_path):
    """0.004 then 0.006: new 0.010 legs placed first, the 0.004 legs cancelled after."""
    world = await make_world(tmp_path)
    await world.warm_up()
    position, client_id = entering(world, quantity="0.010").next_client_id(OrderRole.ENTRY)
    world.engine.interpreter.adopt(position)
    await world.engine.executor.submit(replace(entry_intent(position, client_id,
                                                            world.clock.now()),
                                               quantity=Decimal("0.004")))
    await world.step()
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.006"),
                                                     world.clock.now()))
    await world.step()
    await world.step()
    legs = [o for o in await world.open_orders() if o.reduce_only]
    assert sorted((o.type.value, o.quantity) for o in legs) == [
        ("STOP_MARKET", Decimal("0.010")), ("TAKE_PROFIT_MARKET", Decimal("0.010"))]
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED


async def test_opposite_signal_closes_the_position_and_never_flips_it(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    world.strategy.next = short_signal()
    await world.step()
    exchange_position = await world.paper.position(SYMBOL)
    assert exchange_position.quantity == 0
    assert world.store.closed_positions()[-1].close_reason is CloseReason.SIGNAL_CLOSE
    sells = [i for i in world.store.unresolved_intents()]
    assert sells == []


async def test_cooldown_after_a_close_blocks_reentry_on_the_symbol(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_COOLDOWN_MINUTES=30)
    position = await open_long(world)
    stop = position.stop.trigger_price
    await world.step(stop - 50, low=stop - 200)
    world.strategy.next = long_signal()
    await world.step()
    assert SYMBOL not in world.engine.positions
    assert world.strategy.next is not None   # the strategy was not even asked


async def test_time_in_trade_exit_flattens_with_post_market_verify(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES=20)
    await open_long(world, sl_pct="0.02", tp_pct="0.04")
    for _ in range(5):
        await world.step()
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert world.store.closed_positions()[-1].close_reason is CloseReason.TIME_EXIT
    assert await world.open_orders() == []


async def test_a_hand_cancelled_stop_is_replaced_in_the_same_tick(tmp_path):
    """The exchange says CANCELED for our client id: no debounce, the stop is back at once."""
    world = await make_world(tmp_path)
    position = await open_long(world, sl_pct="0.02", tp_pct="0.04")
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    await world.step()
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1 and stops[0].client_id.endswith("sl2")
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED


async def test_a_stop_absent_without_a_final_status_is_replaced_only_after_the_debounce(
        tmp_path):
    """Ambiguous absence (not listed, the exchange knows nothing of it yet): probe, then wait
    for the debounce (time AND cycles) before a second stop is risked."""
    world = await make_world(tmp_path)
    position = await open_long(world, sl_pct="0.02", tp_pct="0.04")
    world.hide_order(position.stop.order.client_id)     # polling: only the REST snapshot tells
    sent_before = world.sent
    await world.step()          # cycle 1 (5 min of candle time, but only one cycle)
    await world.step()          # cycle 2
    assert world.sent == sent_before
    await world.step()          # cycle 3: time and cycles both reached -> repair
    assert world.alerts("SL_MISSING")
    assert world.engine.positions[SYMBOL].stop.order.client_id.endswith("sl2")


async def test_stop_level_already_passed_closes_at_market_instead_of_staying_naked(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    position, client_id = entering(world, stop=str(world.last_close + 500)).next_client_id(
        OrderRole.ENTRY)
    world.engine.interpreter.adopt(position)
    result = await world.engine.executor.submit(entry_intent(position, client_id,
                                                             world.clock.now()))
    # A stop above the mark for a long would trigger at once: -2021, twice.
    await world.engine.interpreter.apply(position, EntryFilled(result.order.filled_qty,
                                                               result.order.avg_price))
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert world.alerts("POSITION_UNPROTECTED")
    assert world.store.closed_positions()[-1].close_reason is CloseReason.STOP_LOSS


async def test_write_ahead_intent_exists_before_the_order_reaches_the_exchange(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    for intent in world.store.intents_for(SYMBOL, position.key):
        order = await world.paper.order_by_client_id(SYMBOL, intent.client_id)
        assert order is not None
        assert intent.created_at <= order.updated_at
        assert intent.status in (IntentStatus.FILLED, IntentStatus.ACKED)


class TimeframeDisagreement:
    """Long on the trading timeframe, short on the 5x one: a conflict, so no entry."""
    name, warmup = "disagree", 5

    def signal(self, closed):
        from trader.domain import Signal
        higher = closed[-1].interval > timedelta(minutes=5)
        if not higher and len(closed) < 30:
            return None          # signal only once the higher timeframe has its warm-up
        return Signal(Side.SELL if higher else Side.BUY, 0.7, Decimal("0.02"), Decimal("0.01"))


async def test_conflicting_timeframes_mean_no_entry(tmp_path):
    world = await make_world(tmp_path)
    world.engine.entries.strategy = TimeframeDisagreement()
    await world.warm_up(40)
    assert SYMBOL not in world.engine.positions
    assert world.sent == 0
    world.engine.entries.strategy = TimeframeAgreement()
    await world.step()
    assert SYMBOL in world.engine.positions, "the same setup enters when timeframes agree"


class TimeframeAgreement(TimeframeDisagreement):
    def signal(self, closed):
        from trader.domain import Signal
        return Signal(Side.BUY, 0.7, Decimal("0.02"), Decimal("0.01"))


async def test_an_entry_whose_intent_cannot_be_journaled_is_never_sent(tmp_path):
    """Write-ahead: no record, no order (entries need the journal; protection does not)."""
    import pytest

    from storage import SaveStateFailure
    world = await make_world(tmp_path)
    await world.warm_up()
    position, client_id = entering(world).next_client_id(OrderRole.ENTRY)
    world.store.db.execute("PRAGMA query_only = ON")
    with pytest.raises(SaveStateFailure):
        await world.engine.executor.submit(entry_intent(position, client_id, world.clock.now()))
    assert world.sent == 0
    assert await world.paper.fills(SYMBOL, world.clock.now() - timedelta(days=1)) == []


async def test_a_restart_never_changes_the_leverage_of_an_open_position(tmp_path):
    """Leverage is set at entry, while flat; settings changed later apply to the next one."""
    from tests.engine_world import restart
    world = await make_world(tmp_path, TRADEBOT_LEVERAGE=5)
    await open_long(world)
    assert world.paper.sim.leverage(SYMBOL) == 5
    restarted = restart(world, TRADEBOT_LEVERAGE=10)
    await world.paper.start([SYMBOL], 10)
    from trader.startup import boot
    await boot(restarted.engine)
    await restarted.step()
    assert world.paper.sim.leverage(SYMBOL) == 5
    assert restarted.engine.positions[SYMBOL].leverage == 5


async def test_an_operator_close_goes_through_the_state_machine_once(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    notes: list[str] = []
    await world.engine.interpreter.apply(position, CloseRequested(CloseReason.COMMAND), notes)
    assert SYMBOL not in world.engine.positions
    assert any("market close" in note for note in notes)
    assert world.store.closed_positions()[-1].close_reason is CloseReason.COMMAND


async def test_legs_left_by_a_closed_position_are_cancelled_as_routine_not_a_warning(tmp_path):
    """The stop and take-profit a closed position leaves (a market close whose leg expiries
    the tracker has not seen yet) are cleaned up after every close: INFO, not WARNING (a
    WARNING in /logs on every close hides the ones that matter)."""
    from loguru import logger
    world = await make_world(tmp_path)
    await open_long(world)
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])),
                      level="INFO")
    try:
        swept = await world.engine.sweep_orphans(SYMBOL, None)   # as once the record is closed
    finally:
        logger.remove(sink)
    assert len(swept) == 2
    assert [level for level, text in lines if "leftover order" in text] == ["INFO", "INFO"]
