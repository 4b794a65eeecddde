"""A restart on a wiped disk (the host this is built for wipes it on every restart) keeps a
position's time in trade: its own position, found again by client id, counts from when it
was entered (its entry fill, else its key's candle), not from the restart. Before, a position
held 35 minutes of a 40-minute limit was held another 40 after the restart (found by
h-review10).

Spec: README "TRADEBOT_TIME_IN_TRADE_MINUTES ... a position is closed at market after this
long"; docs/ARCHITECTURE.md "crash-restart consistency"."""

from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.test_wiped_disk_keeps_the_exit_plan import wiped
from trader.domain import CloseReason, Side


async def quiet(world: World, candles: int) -> None:
    for _ in range(candles):
        await world.step(world.last_close, high=world.last_close + 20,
                         low=world.last_close - 20)


async def entered(tmp_path) -> World:
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES="40")
    await world.warm_up()
    world.strategy.next = long_signal("0.01", "0.03")
    await world.step()
    assert SYMBOL in world.engine.positions
    return world


async def test_a_wiped_disk_restart_keeps_the_time_in_trade_limit(tmp_path):
    world = await entered(tmp_path)
    opened = world.engine.positions[SYMBOL].opened_at
    await quiet(world, 7)                                   # 35 min of 40
    assert SYMBOL in world.engine.positions

    again = await wiped(world, tmp_path)
    adopted = again.engine.positions[SYMBOL]
    assert adopted.key == world.engine.positions[SYMBOL].key    # its own, by client id
    assert adopted.opened_at <= opened + timedelta(minutes=5)   # not the restart's time
    await quiet(again, 2)                                   # 45 min after the entry
    assert SYMBOL not in again.engine.positions
    assert again.store.closed_positions()[-1].close_reason is CloseReason.TIME_EXIT


async def test_a_position_opened_by_hand_counts_from_its_adoption(tmp_path):
    """Negative: a position opened by hand has no entry of ours to date it; its time in
    trade counts from when the agent took it over, also after a wiped-disk restart (its
    adoption's key names that time), never from the restart."""
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES="40")
    await world.warm_up()
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.010"),
                                                     world.clock.now()))
    await quiet(world, 1)
    adopted = world.engine.positions[SYMBOL]
    assert adopted.adopted
    await quiet(world, 6)                                   # 30 min more before the restart
    again = await wiped(world, tmp_path)
    found = again.engine.positions[SYMBOL]
    assert found.key == adopted.key
    assert found.opened_at == adopted.opened_at.replace(microsecond=0)
    await quiet(again, 2)                                   # 45 min after the adoption
    assert SYMBOL not in again.engine.positions


async def test_a_hand_position_first_seen_at_boot_counts_from_then(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES="40")
    await world.warm_up()
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.010"),
                                                     world.clock.now()))
    again = await wiped(world, tmp_path)
    assert again.engine.positions[SYMBOL].opened_at == again.clock.now()
