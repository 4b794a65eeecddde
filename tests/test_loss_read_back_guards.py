"""A close recorded with its result unknown (its fills unreadable, or recorded from the
stream inside an IP ban: trader/closing.py) counts toward the loss streak once the close
read-back completes it (trader/close_readback.py), as a close with a known result counts at
its time (trader/cooldowns.py `count_read_back`): once, a win as a win. The real engine on the
paper exchange; the fills read fails as Binance's does when it answers 503."""

from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, World, long_signal, make_world, restart
from tests.fakes.binance_server import FakeBinance
from tests.test_close_readback import fills_unreadable, stopped_out_unread
from tests.test_first_command_after_boot import booted, market_up_to_now
from tests.test_liquidation_read_back_after_ban import closed_during_a_ban_unheard
from tests.test_stop_fill_during_ban import STREAMS, alerts, long_open
from trader.close_readback import POLL_EVERY
from trader.evolve import evolve
from trader.guard_book import load_state
from trader.guard_state import GuardConfig
from trader.position import Position

CONFIG = GuardConfig(cooldown_minutes=5, loss_streak_len=3, loss_streak_mult=3)


def streak_of(world: World, losses: int) -> None:
    """The symbol's loss streak as `losses` earlier losses in a row left it."""
    book = world.engine.guards
    book.config = CONFIG
    book.state = evolve(book.state, loss_streak={SYMBOL: losses})


async def read_back(world: World) -> Position:
    del world.paper.fills                       # the exchange answers again
    world.clock.advance(POLL_EVERY)
    [final] = await world.engine.close_readback.sync()
    return final


async def target_hit_unread(world: World) -> Position:
    """A long closed at its take-profit while neither the stream nor a fills read reports
    the fill."""
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    target = world.engine.positions[SYMBOL].take_profit.trigger_price
    world.paper.stream_live = False
    world.paper.drain_events = list             # type: ignore[method-assign]
    world.paper.fills = fills_unreadable        # type: ignore[method-assign]
    await world.step(target + 50, high=target + 100)
    assert SYMBOL not in world.engine.positions
    [record] = world.store.closed_positions()
    assert record.exit_price is None
    return record


async def test_a_stop_loss_read_back_as_a_loss_counts_toward_the_loss_streak(tmp_path):
    world = await make_world(tmp_path)
    streak_of(world, 2)
    record = await stopped_out_unread(world)
    assert world.engine.guards.state.loss_streak[SYMBOL] == 2, \
        "an unknown result is neither a loss nor a win: the streak waits for it"
    final = await read_back(world)
    assert final.realized_pnl - final.fees < 0
    state = world.engine.guards.state
    assert state.loss_streak[SYMBOL] == 3
    # the third loss in a row: the cooldown from the close is 3 x 5 minutes, as it would
    # have been had the loss been known at the close
    assert record.closed_at is not None
    assert state.cooldowns[SYMBOL] == record.closed_at + timedelta(minutes=15)
    assert load_state(world.store.get("guards")).loss_streak[SYMBOL] == 3, "saved with it"


async def test_the_count_survives_a_restart(tmp_path):
    world = await make_world(tmp_path)
    streak_of(world, 1)
    await stopped_out_unread(world)
    await read_back(world)
    world.store.close()
    again = restart(world)
    again.engine.guards.load()
    assert again.engine.guards.state.loss_streak[SYMBOL] == 2


async def test_a_read_back_win_resets_the_streak_and_is_no_loss(tmp_path):
    world = await make_world(tmp_path)
    streak_of(world, 2)
    record = await target_hit_unread(world)
    assert world.engine.guards.state.loss_streak[SYMBOL] == 2
    final = await read_back(world)
    assert final.realized_pnl - final.fees > 0
    state = world.engine.guards.state
    assert state.loss_streak[SYMBOL] == 0
    assert record.closed_at is not None
    assert state.cooldowns[SYMBOL] == record.closed_at + timedelta(minutes=5)


async def test_a_close_known_at_once_is_counted_once(tmp_path):
    """Negative: a stop whose fills were read at the close counts then; the read-back, run
    afterwards, has nothing to complete and counts nothing again."""
    world = await make_world(tmp_path)
    streak_of(world, 1)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop = world.engine.positions[SYMBOL].stop.trigger_price
    await world.step(stop - 50, low=stop - 100)
    [record] = world.store.closed_positions()
    assert record.exit_price is not None
    assert world.engine.guards.state.loss_streak[SYMBOL] == 2
    world.clock.advance(POLL_EVERY)
    assert await world.engine.close_readback.sync() == []
    assert world.engine.guards.state.loss_streak[SYMBOL] == 2


async def test_a_read_back_counts_once_over_several_rounds(tmp_path):
    world = await make_world(tmp_path)
    streak_of(world, 0)
    await stopped_out_unread(world)
    await read_back(world)
    world.clock.advance(POLL_EVERY)
    assert await world.engine.close_readback.sync() == []
    assert world.engine.guards.state.loss_streak[SYMBOL] == 1


async def test_a_stop_filled_unheard_during_an_ip_ban_counts_once_read_back(tmp_path):
    """The user's case: the stop fills inside a 418 ban and the stream's fill is lost; the
    close is recorded from the stream with its result unknown (trader/closing.py
    `_told_by_stream`) and read back after the ban as a loss: the third in a row."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=STREAMS) as agent:
            engine = agent.engine
            engine.guards.config = CONFIG
            engine.guards.state = evolve(engine.guards.state, loss_streak={SYMBOL: 2})
            entry = await long_open(agent)
            await closed_during_a_ban_unheard(
                agent, fake, lambda: fake.move_price(SYMBOL, entry * Decimal("0.985")))
            assert [t for t in alerts(engine, "CLOSE") if "PnL unknown" in t]
            [record] = engine.store.closed_positions()
            assert record.exit_price is not None and record.realized_pnl - record.fees < 0
            state = engine.guards.state
            assert state.loss_streak[SYMBOL] == 3
            assert record.closed_at is not None
            assert state.cooldowns[SYMBOL] == record.closed_at + timedelta(minutes=15)


async def test_a_read_back_rolled_back_and_read_again_counts_once(tmp_path):
    """Inside a command's unit of work a committed read-back may be rolled back: the record
    reads unknown on the disk again while the guards in memory already counted it."""
    world = await make_world(tmp_path)
    streak_of(world, 0)
    record = await stopped_out_unread(world)
    await read_back(world)
    world.store.save_position(record)           # as the rollback left the disk
    world.clock.advance(POLL_EVERY)
    assert len(await world.engine.close_readback.sync()) == 1
    assert world.engine.guards.state.loss_streak[SYMBOL] == 1
    assert load_state(world.store.get("guards")).loss_streak[SYMBOL] == 1
