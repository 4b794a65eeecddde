"""A command whose outcome is already decided is answered at once, without a confirmation:
/long while asleep asked "Open a LONG on BTCUSDT at market now? [Buy] [Cancel]" and only after
the tap said "asleep"; /unlock with nothing locked, /shutdown while asleep and flat asked too.
The phone lost a tap and the operator some trust. The check at the tap stays (the state may
change between the question and the tap): both are tested. Phone to paper exchange, through
the real python-telegram-bot and the fake Bot API."""

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, World, make_world
from tests.fakes.telegram_server import FakeTelegram, SentItem
from tests.test_bot_engine import (  # noqa: F401 - fixtures
    confirm,
    flat,
    flat_bot,
    running_bot,
    telegram,
)
from tests.test_bot_support import OWNER
from trader import breaker_rules, cooldowns, guards, operator_holds
from trader.alerts import AlertName
from trader.domain import Candle, Side
from trader.engine import Engine


def asleep(engine: Engine) -> None:
    engine.guard_state = operator_holds.sleep(engine.guard_state)


def paused(engine: Engine) -> None:
    engine.guard_state = operator_holds.pause(engine.guard_state)


def symbol_paused(engine: Engine) -> None:
    engine.guard_state = operator_holds.pause_symbol(engine.guard_state, SYMBOL)


def storage_failing(engine: Engine) -> None:
    engine.guard_state = guards.set_save_failure(engine.guard_state, True)


def crash_breaker(engine: Engine) -> None:
    now = engine.clock.now()
    last = engine.candles[SYMBOL][-1]
    crash = [Candle(SYMBOL, last.open_time, last.interval, Decimal(100000), Decimal(106000),
                    Decimal(100000), Decimal(100000), Decimal(10))] * 5     # a 6 % range
    engine.guards.apply(breaker_rules.check_crash, SYMBOL, crash, now, engine.guards.config)


def cooling_down(engine: Engine) -> None:
    engine.guard_state = cooldowns.start_cooldown(engine.guard_state, SYMBOL, engine.clock.now(),
                                               loss=True)


async def reply_to(telegram: FakeTelegram, text: str) -> str:  # noqa: F811
    """The answer to `text` (an alert a block raised may come first: not this)."""
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    item = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                   and item.method == "sendMessage"
                                   and (bool(item.buttons) or "entry:" in (item.plain or "")),
                                   since=since, timeout=10)
    assert not item.buttons, item.plain          # no confirmation asked
    return item.plain or ""


BLOCKS: dict[str, tuple[Callable[[Engine], None], str]] = {
    "asleep": (asleep, "asleep: send /wake to trade again"),
    "paused": (paused, "paused: /resume to trade again"),
    "symbol paused": (symbol_paused, f"{SYMBOL} paused: /resume {SYMBOL} to trade it again"),
    "save failure": (storage_failing, "state could not be saved: entries blocked until "
                                      "storage recovers"),
    "crash breaker": (crash_breaker, f"crash breaker on {SYMBOL} active until"),
    "cooldown": (cooling_down, f"{SYMBOL} cooling down until"),
}


@pytest.mark.parametrize("block", sorted(BLOCKS))
@pytest.mark.parametrize(("command", "label"), [("/long", "LONG"), ("/short", "SHORT")])
async def test_an_entry_the_guards_refuse_is_refused_at_once_without_a_question(
        flat, telegram, flat_bot, block, command, label):  # noqa: F811
    make, why = BLOCKS[block]
    make(flat.engine)
    answer = await reply_to(telegram, f"{command} {SYMBOL}")
    assert answer.startswith(f"{SYMBOL}: no {label} entry: {why}"), answer
    assert "\n" not in answer
    assert SYMBOL not in flat.engine.positions


async def test_an_entry_on_a_symbol_already_open_is_refused_at_once(
        flat, telegram, flat_bot):  # noqa: F811
    await confirm(telegram, f"/long {SYMBOL}", "Buy", "done")
    assert await reply_to(telegram, f"/short {SYMBOL}") \
        == f"{SYMBOL}: no SHORT entry: {SYMBOL} already has an open LONG; /close it first"
    assert await reply_to(telegram, f"/long {SYMBOL}") \
        == f"{SYMBOL}: no LONG entry: {SYMBOL} already has an open LONG; /close it first"
    assert flat.engine.positions[SYMBOL].side is Side.BUY


async def press_after(telegram: FakeTelegram, text: str, button_start: str,  # noqa: F811
                      meanwhile: Callable[[], None], until: str) -> SentItem:
    """Send `text`, see its question, let `meanwhile` change the agent, then tap."""
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    meanwhile()
    data = next(data for label, data in prompt.buttons if label.startswith(button_start))
    since = len(telegram.sent)
    telegram.press_button(OWNER, OWNER, prompt.message_id, data)
    return await telegram.wait_for(lambda item: item.method == "sendMessage"
                                   and until in (item.plain or ""), since=since, timeout=10)


async def test_an_entry_asked_then_refused_by_a_sleep_in_between_is_refused_at_the_tap(
        flat: World, telegram, flat_bot):  # noqa: F811
    refused = await press_after(telegram, f"/long {SYMBOL}", "Buy",
                                lambda: asleep(flat.engine), "failed")
    assert f"{SYMBOL}: no LONG entry: asleep: send /wake to trade again" in refused.plain
    assert SYMBOL not in flat.engine.positions
    assert (await flat.paper.position(SYMBOL)).quantity == 0


def is_alert(item: SentItem) -> bool:
    """An alert ("ℹ️ FILL · BTCUSDT" on its first line), not a command's answer: one raised
    by an earlier action (the /long's fill) may be delivered after the next command."""
    words = (item.plain or "").split("\n", 1)[0].split(" ")
    return len(words) > 2 and words[1] in ALERT_NAMES and words[2] == "·"


ALERT_NAMES = {name.value for name in AlertName}


async def answer(telegram: FakeTelegram, text: str) -> str:  # noqa: F811
    """The first message after `text` that is not an alert, which must not ask anything."""
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    item = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                   and item.method == "sendMessage" and not is_alert(item),
                                   since=since, timeout=10)
    assert not item.buttons, item.plain
    return item.plain or ""


async def test_unlock_with_nothing_locked_answers_at_once(flat, telegram, flat_bot):  # noqa: F811
    assert await answer(telegram, f"/unlock {SYMBOL}") \
        == f"{SYMBOL}: nothing is locked (no cooldown, no breaker)\n{SYMBOL}: entries allowed"
    asleep(flat.engine)
    assert await answer(telegram, f"/unlock {SYMBOL}") \
        == (f"{SYMBOL}: nothing is locked (no cooldown, no breaker)\n{SYMBOL}: entries still "
            "blocked: asleep: send /wake to trade again")


async def test_unlock_asked_then_unlocked_in_between_says_nothing_was_locked_at_the_tap(
        flat: World, telegram, flat_bot):  # noqa: F811
    cooling_down(flat.engine)
    tapped = await press_after(telegram, f"/unlock {SYMBOL}", "Unlock",
                               lambda: flat.engine.guards.apply(breaker_rules.unlock, SYMBOL),
                               "nothing is locked")
    assert f"{SYMBOL}: entries allowed" in tapped.plain


async def test_shutdown_while_asleep_and_flat_answers_at_once(flat, telegram, flat_bot):  # noqa: F811
    asleep(flat.engine)
    assert await answer(telegram, "/shutdown") \
        == "Already asleep: no new entries; no open positions. /wake to trade again."


async def test_shutdown_while_asleep_with_a_position_still_offers_to_flatten(
        flat, telegram, flat_bot):  # noqa: F811
    await confirm(telegram, f"/long {SYMBOL}", "Buy", "done")
    asleep(flat.engine)
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, "/shutdown")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    assert any(label.startswith("Flatten") for label, _ in prompt.buttons)


@pytest.fixture
async def not_adopting(tmp_path) -> AsyncIterator[World]:
    """The real engine, warmed up, flat, leaving positions opened by hand alone."""
    world = await make_world(tmp_path, TRADEBOT_ADOPT_POSITIONS="false")
    await world.warm_up()
    yield world


async def test_sl_of_a_position_the_agent_does_not_manage_answers_at_once(
        not_adopting: World, telegram):  # noqa: F811
    world = not_adopting
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.01"),
                                                     world.engine.clock.now()))
    await world.step()                                  # seen on the exchange, left alone
    assert SYMBOL not in world.engine.positions
    async with running_bot(world, telegram):
        said = await answer(telegram, f"/sl {SYMBOL} 90000")
    assert said.startswith(f"{SYMBOL}: stop-loss not moved: the LONG on the exchange is not "
                           "managed by the agent"), said


async def test_sl_to_the_level_the_stop_is_at_answers_at_once(flat: World, telegram, flat_bot):  # noqa: F811
    await confirm(telegram, f"/long {SYMBOL}", "Buy", "done")
    stop = flat.engine.positions[SYMBOL].stop.trigger_price
    said = await answer(telegram, f"/sl {SYMBOL} {stop.normalize():f}")
    assert said.startswith(f"{SYMBOL}: the stop-loss is already at "), said


async def test_unlock_while_asleep_does_not_promise_an_entry_at_once(flat, telegram, flat_bot):  # noqa: F811
    """The question read "A new entry may follow at once" while the sleep refused entries."""
    cooling_down(flat.engine)
    asleep(flat.engine)
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, f"/unlock {SYMBOL}")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    assert "at once" not in prompt.plain, prompt.plain
    assert "the other guards still apply" in prompt.plain, prompt.plain
