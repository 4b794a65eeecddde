"""A /sl further from the mark than the current stop, while the trailing stop is on: the
trail only tightens, so the next tick moves the stop straight back to the trail. The answer
says so (the level it goes back to, and why), so the operator is not surprised by the next
stop move; without a trail that would move it, the answer is as before."""

from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.test_exit_plan_engine import open_long
from trader.commands import CommandKind

D = Decimal


async def test_a_looser_sl_under_an_active_trail_says_the_trail_takes_it_back(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    await open_long(world, tp_pct="0.03")
    await world.step(D("101200"))                          # +1.2 %: the trail is on
    trailed = world.engine.positions[SYMBOL]
    assert trailed.trailing_active
    back_to = trailed.stop.trigger_price
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=D("100000"))
    assert result.ok, result.lines
    assert result.lines[-1] == (
        f"{SYMBOL}: the trailing stop is on (0.5% behind the best price 101,200): the next "
        f"tick moves the stop back to {back_to:,.0f}; it only tightens"), result.lines
    await world.step(D("101100"))
    assert world.engine.positions[SYMBOL].stop.trigger_price == back_to


async def test_a_looser_sl_before_the_trail_starts_says_nothing_of_it(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    position = await open_long(world, tp_pct="0.03")
    assert not position.trailing_active
    looser = position.stop.trigger_price - 500
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=looser)
    assert result.ok, result.lines
    assert not [line for line in result.lines if "trailing" in line], result.lines
