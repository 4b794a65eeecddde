"""/sl SYMBOL PRICE checked against what Binance accepts before anything is asked or sent:
a level past PRICE_FILTER's minPrice / maxPrice ("minimum / maximum price/stopPrice
allowed": https://developers.binance.com/docs/derivatives/usds-margined-futures/
common-definition, Filters) is refused with one plain line naming the limit, on the phone
before any confirmation and in the engine too (the rules may change meanwhile). A level
Binance takes, however far, is asked with its distance from the mark ("4.2 % below the
mark"), so an absurd stop (BTC at 1 on a LONG) reads as what it is before the tap."""

from dataclasses import replace
from decimal import Decimal

from bot.format import format_position
from tests.engine_world import SYMBOL
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_engine import confirm, running_bot
from tests.test_bot_support import OWNER
from tests.test_move_stop_command import stops, world_with_a_long
from trader.commands import CommandKind
from trader.control_stop import judge_stop
from trader.evolve import evolve
from trader.views import position_view

MIN_PRICE = Decimal("1000")


async def test_sl_below_the_symbols_min_price_is_refused_naming_the_limit(tmp_path):
    world = await world_with_a_long(tmp_path)
    world.paper.sim.set_rules(replace(world.paper.rules(SYMBOL), min_price=MIN_PRICE))
    before = await stops(world)
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=Decimal("100"))
    assert not result.ok
    assert result.lines == [f"{SYMBOL}: stop-loss not moved: 100 is below {SYMBOL}'s lowest "
                            "allowed price 1,000"]
    assert await stops(world) == before


async def test_sl_past_the_filter_is_refused_on_the_phone_before_any_confirmation(tmp_path):
    world = await world_with_a_long(tmp_path)
    world.paper.sim.set_rules(replace(world.paper.rules(SYMBOL), min_price=MIN_PRICE))
    before = await stops(world)
    async with FakeTelegram() as telegram, running_bot(world, telegram):
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, f"/sl {SYMBOL} 100")
        reply = await telegram.wait_for(lambda item: item.method == "sendMessage" and (
            bool(item.buttons) or "stop-loss" in (item.plain or "")), since=since)
        assert reply.plain == (f"{SYMBOL}: stop-loss not moved: 100 is below {SYMBOL}'s "
                               "lowest allowed price 1,000")
        assert not reply.buttons                     # nothing to confirm
    assert await stops(world) == before


async def test_the_sl_prompt_shows_how_far_the_level_is_from_the_mark(tmp_path):
    world = await world_with_a_long(tmp_path)
    mark = (await world.paper.position(SYMBOL)).mark_price
    level = world.paper.rules(SYMBOL).round_price(mark * Decimal("0.958"), up=False)
    away = (mark - level) / mark * 100
    async with FakeTelegram() as telegram, running_bot(world, telegram):
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, f"/sl {SYMBOL} {level}")
        prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
        assert f"({away:.1f} % below the mark)?" in prompt.plain, prompt.plain
        assert "Move the BTCUSDT stop-loss to" in prompt.plain
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, f"/sl {SYMBOL} 1")
        prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
        assert "(100.0 % below the mark)?" in prompt.plain, prompt.plain   # BTC at 1
        reply = await confirm(telegram, f"/sl {SYMBOL} {level}", "Move the stop",
                              "Stop-loss: done")
        assert f"{SYMBOL}: stop-loss moved to" in reply.plain, reply.plain


async def test_a_level_a_tick_from_the_mark_reads_as_near_not_as_zero(tmp_path):
    """One tick from the mark is 0.0002 % for BTC: "0.0 % below the mark" would read as a
    stop at the mark; the distance keeps two significant digits under 0.1 %."""
    world = await world_with_a_long(tmp_path)
    mark = (await world.paper.position(SYMBOL)).mark_price
    tick = world.paper.rules(SYMBOL).tick_size
    level = world.paper.rules(SYMBOL).round_price(mark - tick, up=False)
    distance = judge_stop(world.engine, SYMBOL, level, mark).distance
    away = (mark - level) / mark * 100
    assert distance == f"{float(away):.2g} % below the mark", distance   # 0.0001 %
    wide = world.paper.rules(SYMBOL).round_price(mark * Decimal("0.958"), up=False)
    assert judge_stop(world.engine, SYMBOL, wide, mark).distance == \
        f"{(mark - wide) / mark * 100:.1f} % below the mark"


async def test_a_level_past_the_liquidation_price_is_said_before_the_tap(tmp_path):
    """A typo (4900 for 49000) on a 5x long: Binance takes the stop, but the isolated
    position is liquidated (below 1/5 of the entry, sooner with the maintenance margin)
    before the price gets there; the question says so. A level short of that does not."""
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    mark = (await world.paper.position(SYMBOL)).mark_price
    assert position.leverage == 5
    bound = position.entry_price * Decimal("0.8")
    far = judge_stop(world.engine, SYMBOL, position.entry_price / 10, mark)
    assert not far.refusal
    assert "a 5x LONG is liquidated before the price falls to " in far.warning, far.warning
    assert "before this stop triggers" in far.warning
    near = judge_stop(world.engine, SYMBOL, bound * Decimal("1.01"), mark)
    assert "liquidated" not in near.warning


async def test_status_marks_a_stop_past_the_liquidation_price(tmp_path):
    """The tap went through: /status then showed "SL 4,000 (-91.88%) ✅ · PROTECTED" for a
    stop the liquidation comes before (found by a reviewer)."""
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    now = world.clock.now()
    assert "liquidation" not in format_position(position_view(world.engine, position, now))[1]
    level = position.entry_price / 10                 # on the exchange: the live stop's level
    far = evolve(position, stop=evolve(position.stop, trigger_price=level,
                                       order=evolve(position.stop.order, trigger_price=level)))
    assert "⚠️ past the liquidation price" in format_position(
        position_view(world.engine, far, now))[1]
