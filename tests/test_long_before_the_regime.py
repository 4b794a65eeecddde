"""/long and /short shortly after a start: the entry is planned from the volatility regime,
which needs 22 closed candles (trader/strategy/regime.py: ATR 21 + 1). The phone asked for
the confirmation and then answered "failed ... not enough candles for the volatility regime"
(found by a reviewer); an entry the agent already knows it cannot plan is refused before the
question, as every other known refusal is."""

from tests.engine_world import SYMBOL, make_world
from trader.commands import CommandKind
from trader.control import already_decided


async def test_a_long_before_the_regime_can_be_read_is_refused_before_the_question(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up(5)
    [line] = already_decided(world.engine, CommandKind.LONG, SYMBOL)
    assert line.startswith(f"{SYMBOL}: no LONG entry: the volatility regime needs 22 closed "
                           "candles, the agent has 5"), line
    assert world.sent == 0


async def test_once_it_can_be_read_the_long_is_asked(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up(30)
    assert already_decided(world.engine, CommandKind.SHORT, SYMBOL) == []


async def test_before_the_first_tick_the_press_decides(tmp_path):
    """A live feed's first poll brings the history: a /long sent before it is asked."""
    world = await make_world(tmp_path)
    assert world.engine.ticks == 0
    assert already_decided(world.engine, CommandKind.LONG, SYMBOL) == []
