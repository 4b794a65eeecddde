"""What the operator reads when the market got there first: a /close tapped after the
position closed (its stop filled between the question and the tap) says it was already
closed and by what, not "no open position"; a /long while an entry is still being filled
says an entry is being filled, not "already has an open LONG"."""

from datetime import timedelta

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.test_engine import open_long
from tests.test_maker_engine import MAKER
from trader.commands import CommandKind
from trader.position import PositionState


async def test_a_close_tapped_after_the_stop_filled_says_it_was_already_closed(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    stop = position.stop.trigger_price
    await world.step(stop - 50, low=stop - 200)                # the stop fills
    assert SYMBOL not in world.engine.positions
    world.clock.advance(timedelta(seconds=20))                 # the operator taps "Close"
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok
    [line] = result.lines
    closed = world.store.closed_positions()[-1]
    assert line == (f"{SYMBOL}: already closed 20 s ago by its stop-loss at "
                    f"{closed.exit_price:,.1f}; nothing left to close"), line


async def test_a_close_with_nothing_closed_lately_still_says_no_open_position(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.lines == [f"{SYMBOL}: no open position"]


async def test_a_long_while_an_entry_is_being_filled_says_so(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    assert world.engine.positions[SYMBOL].state is PositionState.ENTERING
    result = await world.command(CommandKind.LONG, symbol=SYMBOL)
    assert not result.ok
    assert result.lines == [f"{SYMBOL}: no LONG entry: a LONG entry on {SYMBOL} is still being "
                            "filled (/status follows it)"]
