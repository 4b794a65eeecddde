"""The pinned state under Telegram's flood control (429, `parameters.retry_after`, "the number
of seconds left to wait before the request can be repeated",
https://core.telegram.org/bots/api#responseparameters): the keeper waits what Telegram asks
(a try before then is refused again and prolongs the limit), the /shutdown's answer says
when its sleep is not pinned yet, and the flush at exit neither waits for a try due after
its deadline nor adds anything when the pin is already confirmed.

The real python-telegram-bot against the fake Bot API and the intent keeper, on the paper
exchange (tests/test_operator_intent.py)."""

import time

from tests.fakes.telegram_server import FakeTelegram
from tests.test_operator_intent import (
    BOUND,
    eventually,
    pinned_text,
    start_agent,
)
from trader.commands import Command, CommandKind
from trader.going_down import going_down_alert, interrupted_lines, unpinned_lines
from trader.guard_state import GuardState

pytest_plugins = ["tests.test_operator_intent"]     # its world and telegram fixtures


def get_chats(telegram: FakeTelegram) -> int:
    return telegram.calls.count("getChat")


async def test_the_pin_update_waits_the_retry_after_telegram_asked_for(world, telegram):
    agent = await start_agent(world, telegram)      # retries every 0.05-0.2 s otherwise
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        telegram.flood_for(2.0, method="getChat")
        before = get_chats(telegram)
        await world.command(CommandKind.SHUTDOWN)
        await eventually(lambda: "asleep=yes" in pinned_text(telegram), bound=BOUND)
        # one refused try, then the one after Telegram's wait: no try in between
        assert get_chats(telegram) - before == 2, telegram.calls[-10:]
    finally:
        await agent.stop()


async def test_the_shutdown_answer_says_its_sleep_is_not_pinned_yet(world, telegram):
    agent = await start_agent(world, telegram)
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        telegram.flood_for(30.0, method="getChat")
        await world.command(CommandKind.PAUSE)        # its pin refused: the flood is known
        await eventually(lambda: bool(agent.keeper.unpinned()))
        result = await world.command(CommandKind.SHUTDOWN)
        assert result.ok
        assert result.lines[-1] == ("not pinned yet (Telegram's flood control: retry in 30 s):"
                                    " a restart on a wiped disk before it is would trade; the "
                                    "agent keeps trying"), result.lines
        started = time.monotonic()
        assert not await agent.keeper.flush(5.0)      # the next try is due after 5 s
        assert time.monotonic() - started < 1.0
    finally:
        await agent.stop()


async def test_a_pin_confirmed_at_once_answers_and_flushes_as_before(world, telegram):
    agent = await start_agent(world, telegram)
    try:
        await agent.keeper.recover(wait=BOUND)
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
        result = await world.command(CommandKind.SHUTDOWN)
        assert not any("pinned" in line for line in result.lines), result.lines
        await eventually(lambda: "asleep=yes" in pinned_text(telegram))
        started = time.monotonic()
        assert await agent.keeper.flush(20.0)
        assert time.monotonic() - started < 0.5
        assert agent.keeper.unpinned() == ""
    finally:
        await agent.stop()


async def test_the_shutdown_alert_names_a_shutdown_cut_short_and_a_sleep_not_pinned(world):
    cut = Command(CommandKind.SHUTDOWN, "tg:1:2", world.clock.now(), flatten=True)
    world.engine.guards.set(GuardState(asleep=True, flattening=True))
    assert interrupted_lines(world.engine, cut) == [
        "Your /shutdown (flatten) was cut short by this stop before its answer: the sleep is "
        "saved; the next start finishes the flatten (closes what is still open)."]
    assert unpinned_lines(("asleep", "Telegram's flood control: retry in 20 s")) == [
        "The sleep is not pinned (Telegram's flood control: retry in 20 s): a restart on a "
        "wiped disk will trade; send /shutdown again."]
    assert interrupted_lines(world.engine, None) == [] and unpinned_lines(None) == []
    assert "cut short" not in going_down_alert(world.engine).text     # nothing else changes
