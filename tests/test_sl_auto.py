"""/sl SYMBOL auto hands the stop-loss back to the agent's own rules after a /sl PRICE: the
stop goes back where the regime rule keeps it (the planned distance from the entry, scaled
by the regime the legs follow now), no looser than breakeven once the move to breakeven was
made, and the regime rule moves it again at the next change. Before, the only way back was
to work out that level by hand and /sl it (and the rule still left it alone: it was the
operator's). Answered at once when the stop is already the agent's, when there is no plan
to return to (an adopted position not yet anchored), or when the agent's level would
trigger at once."""

from dataclasses import replace
from decimal import Decimal

import pytest

from bot.parsing import UsageError, parse_command
from tests.engine_world import SYMBOL, World
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_answers_at_once import answer
from tests.test_bot_engine import (  # noqa: F401 - fixtures
    confirm,
    flat,
    flat_bot,
    telegram,
)
from tests.test_bot_support import OWNER
from tests.test_rules_regime import MARK, RULES, calm_long, long_position, violent_candle
from tests.test_sl_kept_by_the_regime_rule import moved_by_the_operator
from trader.commands import CommandKind
from trader.control_stop import agent_stop_level, check_stop
from trader.events import Policy, StopMoveRequested
from trader.lifecycle import step
from trader.regime_adjust import follow
from trader.strategy.regime import Regime

D = Decimal


def test_the_agents_level_is_the_regime_rules_for_the_regime_applied_now() -> None:
    """Planned 49,000 in NORMAL (1,000 below the 50,000 entry); the legs follow HIGH (x1.3):
    the agent's level is 48,700, whatever the operator set."""
    position = moved_by_the_operator(long_position(), D("47000"))
    assert agent_stop_level(position, RULES, Policy()) == D("49000")
    high = follow(position, Regime.HIGH, MARK, RULES)
    assert high.stop.trigger_price == D("47000")          # the operator's: left alone
    assert agent_stop_level(high, RULES, Policy()) == D("48700")


def test_the_agents_level_is_no_looser_than_breakeven_once_moved_there() -> None:
    position = moved_by_the_operator(long_position(breakeven_done=True), D("47000"))
    level = agent_stop_level(position, RULES, Policy())
    assert level is not None and level > position.entry_price       # breakeven, fees in


def test_no_plan_to_return_to_without_an_anchor() -> None:
    assert agent_stop_level(replace(long_position(), regime=None), RULES, Policy()) is None


def test_handed_back_the_regime_rule_follows_the_stop_again() -> None:
    """The auto move clears the operator's level: the next regime change moves the stop
    (the negative: a /sl PRICE to the same level keeps it where it is)."""
    position = moved_by_the_operator(long_position(), D("47000"))
    auto = step(position, StopMoveRequested(D("49000"), by_operator=False),
                position.opened_at, Policy()).position
    assert auto.operator_stop is None and auto.stop.trigger_price == D("49000")
    by_hand = step(position, StopMoveRequested(D("49000")), position.opened_at,
                   Policy()).position
    assert by_hand.operator_stop == D("49000")


async def test_sl_auto_puts_the_stop_back_and_the_regime_moves_it_again(tmp_path):
    """Real engine on the paper exchange: a calm long, /sl 4 % below the entry, then /sl
    auto: the stop on the exchange is back at the planned level (new first), and violent
    candles then widen it with the regime, as for a stop never touched."""
    world = await calm_long(tmp_path)
    planned = world.engine.positions[SYMBOL]
    entry, planned_stop = planned.entry_price, planned.stop.trigger_price
    loose = world.paper.rules(SYMBOL).round_price(entry * D("0.96"), up=False)
    assert (await world.command(CommandKind.SL, symbol=SYMBOL, price=loose)).ok
    check = check_stop(world.engine, SYMBOL, None)
    assert not check.answer and check.level == planned_stop, check
    result = await world.command(CommandKind.SL, symbol=SYMBOL, auto=True)
    assert result.ok, result.lines
    assert "back to the agent's level" in result.lines[0]
    handed = world.engine.positions[SYMBOL]
    assert handed.operator_stop is None and handed.stop.trigger_price == planned_stop
    [stop] = [o for o in await world.open_orders() if o.role.value == "sl"]
    assert stop.trigger_price == planned_stop
    for _ in range(6):
        await violent_candle(world, entry)
    widened = world.engine.positions[SYMBOL].stop.trigger_price
    assert widened < planned_stop, "the regime rule follows the handed-back stop"


async def test_sl_auto_on_a_stop_already_the_agents_is_answered_at_once(tmp_path):
    world = await calm_long(tmp_path)
    before = world.engine.positions[SYMBOL]
    check = check_stop(world.engine, SYMBOL, None)
    assert "already the agent's" in check.already
    result = await world.command(CommandKind.SL, symbol=SYMBOL, auto=True)
    assert result.ok and "already the agent's" in result.lines[0]
    assert world.engine.positions[SYMBOL].stop == before.stop


async def test_sl_auto_refused_when_the_agents_level_would_trigger_at_once(tmp_path):
    """A looser /sl held the long through a fall past its planned stop: handing it back
    would fire that stop at once (-2021): refused, the operator's stop stays."""
    world = await calm_long(tmp_path)
    planned = world.engine.positions[SYMBOL]
    entry, planned_stop = planned.entry_price, planned.stop.trigger_price
    loose = world.paper.rules(SYMBOL).round_price(entry * D("0.94"), up=False)
    assert (await world.command(CommandKind.SL, symbol=SYMBOL, price=loose)).ok
    fallen = planned_stop * D("0.99")
    await world.step(fallen, high=fallen, low=fallen, open_=fallen)
    assert world.engine.positions[SYMBOL].stop.trigger_price == loose
    result = await world.command(CommandKind.SL, symbol=SYMBOL, auto=True)
    assert not result.ok and "would trigger at once" in result.lines[0], result.lines
    assert world.engine.positions[SYMBOL].operator_stop == loose
    [stop] = [o for o in await world.open_orders() if o.role.value == "sl"]
    assert stop.trigger_price == loose


@pytest.mark.parametrize("word", ["auto", "AUTO", "Auto"])
def test_sl_auto_parses(word: str) -> None:
    request = parse_command("sl", [SYMBOL, word], [SYMBOL])
    assert request.kind is CommandKind.SL and request.auto and request.price is None


def test_sl_without_a_level_names_both_forms() -> None:
    with pytest.raises(UsageError, match="auto"):
        parse_command("sl", [SYMBOL], [SYMBOL])


async def test_sl_auto_from_the_phone_asks_with_the_agents_level_then_hands_it_back(
        flat: World, telegram: FakeTelegram, flat_bot) -> None:  # noqa: F811
    """Phone to paper exchange through the real python-telegram-bot and the fake Bot API:
    /long, /sl below the planned stop, then /sl auto: the question names the agent's level
    and its distance from the mark; the tap puts the stop back there."""
    await confirm(telegram, f"/long {SYMBOL}", "Buy", "done")
    planned = flat.engine.positions[SYMBOL].stop.trigger_price
    rules = flat.paper.rules(SYMBOL)
    loose = rules.round_price(planned * D("0.99"), up=False)
    await confirm(telegram, f"/sl {SYMBOL} {loose.normalize():f}", "Move", "on the exchange")
    assert flat.engine.positions[SYMBOL].operator_stop == loose
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, f"/sl {SYMBOL} auto")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    assert "back to the agent's rules: its own level at" in (prompt.plain or ""), prompt.plain
    assert "% below the mark" in (prompt.plain or "")
    await confirm(telegram, f"/sl {SYMBOL} AUTO", "Back to the agent's stop",
                  "back to the agent's level")
    handed = flat.engine.positions[SYMBOL]
    assert handed.stop.trigger_price == planned and handed.operator_stop is None


async def test_sl_auto_from_the_phone_on_the_agents_stop_answers_at_once(
        flat: World, telegram: FakeTelegram, flat_bot) -> None:  # noqa: F811
    await confirm(telegram, f"/long {SYMBOL}", "Buy", "done")
    said = await answer(telegram, f"/sl {SYMBOL} auto")
    assert said.startswith(f"{SYMBOL}: the stop-loss is already the agent's (at "), said
