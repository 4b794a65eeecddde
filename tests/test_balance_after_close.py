"""A close the agent finds over REST brings no account event: the balance is read again on
the next tick all the same, so the next entry plans with the margin the close released and
the profit or loss it realized (not the balance from before the close)."""

from datetime import datetime, timedelta

from tests.engine_world import SYMBOL, World, long_signal, make_world
from trader.domain import Balance


def balance_reads(world: World) -> list[datetime]:
    """When the engine reads the balance from now on (filled as it happens)."""
    reads: list[datetime] = []
    balance = world.paper.balance

    async def counted() -> Balance:
        reads.append(world.clock.now())
        return await balance()
    world.paper.balance = counted               # type: ignore[method-assign]
    return reads


async def test_the_tick_after_a_close_seen_over_rest_reads_the_balance(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop = world.engine.positions[SYMBOL].stop.trigger_price
    world.paper.stream_live = False             # no ACCOUNT_UPDATE will tell
    world.paper.drain_events = list             # type: ignore[method-assign]
    await world.step(stop - 50, low=stop - 100)
    assert SYMBOL not in world.engine.positions
    reads = balance_reads(world)
    world.clock.set(world.clock.now() + timedelta(seconds=2))    # well inside 10 s
    await world.engine.tick()
    assert reads, "the balance from before the close was kept"


async def test_without_a_close_the_balance_is_not_read_again_within_its_interval(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.paper.stream_live = False
    world.paper.drain_events = list             # type: ignore[method-assign]
    reads = balance_reads(world)
    world.clock.set(world.clock.now() + timedelta(seconds=2))
    await world.engine.tick()
    assert reads == []
