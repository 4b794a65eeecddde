"""/wake while a /pause is on: the answer was "awake: trading resumes", and entries stayed
paused (wake ends the sleep of /shutdown, not a pause). The answer says the pause is still
on, until when, and how to end it; a `tradebot wake` from a shell is told the same in the
words it can use (it has no /resume: Telegram's)."""

from datetime import timedelta

from bot.format import format_result
from tests.engine_world import SYMBOL, make_world
from trader.commands import CommandKind


async def test_wake_says_entries_stay_paused_until_resume(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.PAUSE)
    await world.command(CommandKind.SHUTDOWN)
    woke = await world.command(CommandKind.WAKE)
    text = "\n".join(woke.lines)
    assert world.engine.guard_state.paused           # still paused: wake does not resume
    assert "trading resumes" not in text, text
    assert "entries stay paused until /resume" in text, text
    assert "send /resume to trade again" in text, text


async def test_wake_names_a_timed_pause_and_a_symbol_pause(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.PAUSE, duration=timedelta(hours=2))
    await world.command(CommandKind.PAUSE, symbol=SYMBOL)
    woke = await world.command(CommandKind.WAKE)
    text = "\n".join(woke.lines)
    until = world.engine.guard_state.paused_until
    assert until is not None and f"entries stay paused until {until:%H:%M} UTC" in text, text
    assert f"{SYMBOL}: entries stay paused until /resume {SYMBOL}" in text, text


async def test_wake_from_a_shell_says_resume_is_a_telegram_command(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.PAUSE)
    woke = await world.command(CommandKind.WAKE, source="cli")
    assert "send /resume in Telegram to trade again" in "\n".join(woke.lines), woke.lines


async def test_wake_without_a_pause_says_trading_resumes(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.SHUTDOWN)
    woke = await world.command(CommandKind.WAKE)
    assert woke.lines[-1].startswith("awake: trading resumes"), woke.lines


async def test_a_second_wake_reads_as_nothing_to_do_not_done(tmp_path):
    """"✅ Wake: done" above "already awake: nothing to wake" (found by a reviewer)."""
    world = await make_world(tmp_path)
    await world.command(CommandKind.SHUTDOWN)
    first = format_result(CommandKind.WAKE, await world.command(CommandKind.WAKE))
    again = format_result(CommandKind.WAKE, await world.command(CommandKind.WAKE))
    assert first.startswith("✅ <b>Wake: done</b>"), first
    assert again.startswith("ℹ️ <b>Wake: nothing to do</b>\nalready awake"), again
