"""A MARKET entry answered FILLED whose user-data stream events come late (or never, the
socket staying up) keeps its position, its stop and its take-profit.

Found by h-makerfb21 (makerfb-stream-lag-probe.py): the REST answer said FILLED, the FILL
alert went out with the stop and target placed, and the next tick's view, built from the
order tracker while the stream was trusted, still showed the symbol flat (no
ACCOUNT_UPDATE yet): "LONG closed (MANUAL); exit price and PnL unknown", the new stop and
take-profit cancelled, a cooldown, then CRITICAL RECONCILE_MISMATCH and an adoption with
the 1 % / 1.5 % legs once the late events came (with TRADEBOT_ADOPT_POSITIONS=false: left on
the exchange with no stop). Now the tracker knows its position is older than a fill of ours
a REST answer told (OrderTracker.position_behind) until an ACCOUNT_UPDATE from after that
fill or a REST read asked after the answer, and the view reads the position over REST
meanwhile (trader/exchange_view.py).

The contracts that stay: a stop's fill told by the stream closes the position as
STOP_LOSS at once, with no read (its ACCOUNT_UPDATE comes from after the entry's fill), and
a position closed by hand is closed MANUAL.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.test_maker_engine import later
from tests.test_move_stop_command import world_with_a_long
from tests.test_partial_take_not_sent import profit_mark
from trader.domain import ExchangePosition, Order, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.sim import SimEvent
from trader.order_tracker import OrderTracker

D = Decimal


async def entered_unheard(world: World) -> list[SimEvent]:
    """A long signal's MARKET entry, answered FILLED, whose stream events (the fill's
    ORDER_TRADE_UPDATE and ACCOUNT_UPDATE) are kept back: returned, to publish late."""
    late: list[SimEvent] = []
    reaches = world.paper.place

    async def place(request):  # type: ignore[no-untyped-def]
        if request.role is not OrderRole.ENTRY:
            return await reaches(request)
        order, events = world.paper.sim.place(request, world.clock.now())
        late.extend(events)
        return order

    world.paper.place = place               # type: ignore[method-assign]
    world.strategy.next = long_signal()
    await world.step()
    world.paper.place = reaches             # type: ignore[method-assign]
    assert late and SYMBOL in world.engine.positions
    return late


def filled_entry(client_id: str, at: datetime) -> Order:
    return Order(SYMBOL, client_id, Side.BUY, OrderType.MARKET, OrderStatus.FILLED, D("0.010"),
                 D("0.010"), D("100000"), updated_at=at)


def legs_on_the_exchange(world: World) -> list[tuple[str, Decimal]]:
    return sorted((o.type.value, o.quantity) for o in world.paper.sim.open_orders(SYMBOL)
                  if o.type.conditional)


def planned_legs(world: World) -> list[tuple[str, Decimal]]:
    held = world.paper.sim.position(SYMBOL).quantity
    return [(OrderType.STOP_MARKET.value, held), (OrderType.TAKE_PROFIT_MARKET.value, held)]


@pytest.mark.parametrize("adopt", [True, False], ids=["adoption on", "adoption off"])
@pytest.mark.parametrize("events", ["late", "lost"])
async def test_an_entry_filled_before_its_stream_events_is_kept(tmp_path, adopt, events):
    world = await make_world(tmp_path, TRADEBOT_ADOPT_POSITIONS=str(adopt).lower())
    await world.warm_up()
    late = await entered_unheard(world)
    key = world.engine.positions[SYMBOL].key
    snapshots = world.engine.view.rest_snapshots
    await later(world, 2)
    await later(world, 2)
    assert world.alerts("CLOSE") == [] and SYMBOL in world.engine.positions
    assert legs_on_the_exchange(world) == planned_legs(world)
    # the position read over REST once, then the tracker holds it
    assert world.engine.view.rest_snapshots == snapshots + 1
    if events == "late":
        world.paper.publish(late)
    await later(world, 2)
    await world.step()
    held = world.engine.positions.get(SYMBOL)
    assert held is not None and (held.key, held.adopted) == (key, False)
    assert held.quantity == world.paper.sim.position(SYMBOL).quantity > 0
    assert legs_on_the_exchange(world) == planned_legs(world)
    assert world.alerts("CLOSE") == []
    assert world.alerts("RECONCILE_MISMATCH") == []
    assert world.store.closed_positions() == []
    assert world.engine.view.rest_snapshots == snapshots + 1


async def test_a_stop_fill_told_by_the_stream_closes_at_once_with_no_read(tmp_path):
    """The entry's events lost, then its stop fills: the stop's ACCOUNT_UPDATE is from after
    the entry's fill, so the flat position it tells is taken as it comes."""
    world = await make_world(tmp_path)
    await world.warm_up()
    await entered_unheard(world)
    stop = world.engine.positions[SYMBOL].stop.trigger_price
    assert stop is not None
    snapshots = world.engine.view.rest_snapshots
    await later(world, 2, price=str(stop - 50))         # through the stop: it fills
    assert world.paper.sim.position(SYMBOL).quantity == 0
    assert SYMBOL not in world.engine.positions
    [closed] = world.store.closed_positions()
    assert closed.close_reason == "STOP_LOSS", world.alerts("CLOSE")
    assert world.engine.view.rest_snapshots == snapshots
    assert world.alerts("RECONCILE_MISMATCH") == []


async def test_a_position_closed_by_hand_before_its_entry_was_heard_is_closed_manual(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    await entered_unheard(world)
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    await later(world, 2)
    assert SYMBOL not in world.engine.positions
    [closed] = world.store.closed_positions()
    assert closed.close_reason == "MANUAL"
    assert legs_on_the_exchange(world) == []
    assert world.alerts("RECONCILE_MISMATCH") == []


async def test_a_position_closed_by_hand_after_the_read_is_closed_manual(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    await entered_unheard(world)
    await later(world, 2)                       # read over REST: the long is held
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    snapshots = world.engine.view.rest_snapshots
    await later(world, 2)
    [closed] = world.store.closed_positions()
    assert closed.close_reason == "MANUAL"
    assert world.engine.view.rest_snapshots == snapshots     # the stream's word, no read


def test_the_tracker_waits_for_an_update_after_the_fill_or_a_read_after_the_answer():
    """OrderTracker.position_behind, alone: an ACCOUNT_UPDATE from before the fill does not
    show it; one from its time, or a REST read asked after the answer, does."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    tracker = OrderTracker()
    flat = ExchangePosition(SYMBOL, D(0))
    tracker.on_streamed_position(flat, at - timedelta(seconds=5))
    order = filled_entry("tb-BTCUSDT-k1-en1", at)
    tracker.learned(order, at + timedelta(milliseconds=40))
    assert tracker.position_behind(SYMBOL)
    tracker.learned(order, at + timedelta(milliseconds=50))    # the same fill again
    tracker.on_streamed_position(flat, at - timedelta(seconds=1))      # late, older
    assert tracker.position_behind(SYMBOL)
    tracker.on_read_position(flat, at)                      # asked before the answer
    assert tracker.position_behind(SYMBOL)
    tracker.on_streamed_position(ExchangePosition(SYMBOL, D("0.010")), at)
    assert not tracker.position_behind(SYMBOL)
    later_fill = filled_entry("tb-BTCUSDT-k2-en1", at)
    tracker.learned(later_fill, at + timedelta(seconds=1))
    tracker.on_read_position(flat, at + timedelta(seconds=1))
    assert not tracker.position_behind(SYMBOL)


async def test_a_first_profit_taken_before_its_stream_events_keeps_the_smaller_size(tmp_path):
    """A part of a close: the one-TP plan's first profit at market, answered FILLED, its
    events late: the record's smaller size stands, nothing "added by hand". (Held before
    the fix too: the market exit reads the position back, trader/market_exit.py; a read
    asked after the answer, which also ends `position_behind`: no read more.)"""
    world = await world_with_a_long(tmp_path)
    held = world.engine.positions[SYMBOL].quantity
    late: list[SimEvent] = []
    reaches = world.paper.place

    async def place(request):  # type: ignore[no-untyped-def]
        if request.role is not OrderRole.PARTIAL_TP:
            return await reaches(request)
        order, events = world.paper.sim.place(request, world.clock.now())
        late.extend(events)
        return order

    world.paper.place = place               # type: ignore[method-assign]
    await world.step(profit_mark(world))
    world.paper.place = reaches             # type: ignore[method-assign]
    assert late, "the first profit was taken"
    left = world.paper.sim.position(SYMBOL).quantity
    assert 0 < left < held
    snapshots = world.engine.view.rest_snapshots
    await later(world, 2)
    await later(world, 2)
    world.paper.publish(late)
    await later(world, 2)
    assert world.engine.view.rest_snapshots == snapshots
    position = world.engine.positions[SYMBOL]
    assert (position.quantity, position.adopted) == (left, False)
    assert world.alerts("POSITION_ADDED") == [] and world.alerts("CLOSE") == []
    assert world.alerts("RECONCILE_MISMATCH") == []
    assert sorted(q for _, q in legs_on_the_exchange(world)) == [left, left]
