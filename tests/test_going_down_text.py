"""The SHUTDOWN alert names a close cut short by the stop signal: the phone kept "⏳ Closing
BTCUSDT…" and then read only "going down, positions protected by exchange-side orders (1
open)", nothing of the close (found by a reviewer, SIGTERM 2 s after a /close against a
hanging exchange); the restart does take the close up again."""

from tests.engine_world import SYMBOL
from tests.test_move_stop_command import world_with_a_long
from trader.app import going_down_text
from trader.evolve import evolve
from trader.position import PositionState


async def test_a_close_under_way_at_the_stop_is_said(tmp_path):
    world = await world_with_a_long(tmp_path)
    engine = world.engine
    assert going_down_text(engine) == ("going down, positions protected by exchange-side "
                                       "orders (1 open)")
    engine.positions[SYMBOL] = evolve(engine.positions[SYMBOL], state=PositionState.CLOSING)
    assert going_down_text(engine) == (
        f"going down, positions protected by exchange-side orders (1 open); the close of "
        f"{SYMBOL} was under way: the next start finds out whether its market order filled "
        "and closes what is left")
