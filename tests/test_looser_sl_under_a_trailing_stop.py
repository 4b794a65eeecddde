"""A /sl further from the mark than the current stop, while the trailing stop is on: the
trail only tightens, so the next tick moves the stop straight back to the trail. The answer
says so (the level it goes back to, and why), so the operator is not surprised by the next
stop move; without a trail that would move it, the answer is as before."""

from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.test_exit_plan_engine import open_long
from trader.commands import CommandKind
from trader.display import price

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


async def test_the_question_says_the_trail_takes_a_looser_sl_back_and_where_to(tmp_path):
    """Said before the tap, so the operator confirms what will happen (the answer says it
    again)."""
    from tests.fakes.telegram_server import FakeTelegram
    from tests.test_bot_engine import running_bot
    from tests.test_bot_support import OWNER

    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    await open_long(world, tp_pct="0.03")
    await world.step(D("101200"))                          # +1.2 %: the trail is on
    back_to = world.engine.positions[SYMBOL].stop.trigger_price
    async with FakeTelegram() as telegram, running_bot(world, telegram):
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, f"/sl {SYMBOL} 100000")
        prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
        assert (f"The trailing stop is on (0.5% behind the best price 101,200): the next "
                f"tick moves the stop back to {back_to:,.0f}; it only tightens.") \
            in prompt.plain, prompt.plain
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, f"/sl {SYMBOL} {back_to + 50}")   # tighter
        prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
        assert "trailing" not in prompt.plain, prompt.plain


async def test_a_looser_sl_while_the_move_to_breakeven_is_due_says_where_it_goes(tmp_path):
    """After the partial take-profit the stop is due at breakeven (for the rest); a looser
    /sl then is moved to breakeven at the next tick. The question says so, and the next
    tick does what it said."""
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    await open_long(world, tp_pct="0.03")
    await world.step(D("100400"))                          # +0.4 %: the partial
    position = world.engine.positions[SYMBOL]
    # aimed at breakeven; done once the next tick sees that stop live
    assert position.partial_taken and not position.breakeven_done
    breakeven = position.stop.trigger_price
    assert breakeven > position.entry_price
    looser = breakeven - 300
    shown = price(breakeven, world.paper.rules(SYMBOL).tick_size)
    check = world.controller.check_stop(SYMBOL, looser)
    assert check.warning == (f"the move to breakeven is due: the next tick moves the stop to "
                             f"{shown}; it only tightens"), check
    assert (await world.command(CommandKind.SL, symbol=SYMBOL, price=looser)).ok
    await world.step(D("100400"))
    assert world.engine.positions[SYMBOL].stop.trigger_price == breakeven
