"""Commands with nothing to do say so, and do nothing: /wake while awake answered "awake:
trading resumes after a 30 min cooldown" and blocked every entry for 30 minutes (the
emergency cooldown belongs to waking from a /shutdown); /resume while asleep answered
"entries resumed" while the sleep still refused every entry; /resume with nothing paused and
/pause while already paused claimed a change that did not happen."""

from tests.engine_world import SYMBOL, make_world
from trader.commands import CommandKind


async def test_wake_while_awake_says_so_and_blocks_no_entry(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES="30")
    woke = await world.command(CommandKind.WAKE)
    assert woke.ok and woke.lines == ["already awake: nothing to wake; trading runs"], woke.lines
    assert world.engine.guard_state.entries_blocked_until is None
    assert world.engine.entry_refusal(SYMBOL) == ""


async def test_wake_while_awake_and_paused_names_the_pause_and_what_ends_it(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES="30")
    await world.command(CommandKind.PAUSE)
    woke = await world.command(CommandKind.WAKE)
    assert woke.lines == ["already awake: nothing to wake", "entries stay paused until /resume",
                          "send /resume to trade again"], woke.lines
    assert world.engine.guard_state.entries_blocked_until is None


async def test_resume_while_asleep_says_entries_still_wait_for_wake(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.PAUSE)
    await world.command(CommandKind.SHUTDOWN)
    resumed = await world.command(CommandKind.RESUME)
    assert resumed.lines == ["entries resumed",
                             "still asleep: no new entries until /wake"], resumed.lines
    one = await world.command(CommandKind.RESUME, symbol=SYMBOL)
    assert "still asleep: no new entries until /wake" in one.lines, one.lines


async def test_resume_with_nothing_paused_says_nothing_was_paused(tmp_path):
    world = await make_world(tmp_path)
    resumed = await world.command(CommandKind.RESUME)
    assert resumed.ok and resumed.lines == ["entries were not paused"], resumed.lines
    one = await world.command(CommandKind.RESUME, symbol=SYMBOL)
    assert one.lines == [f"{SYMBOL}: entries were not paused"], one.lines


async def test_pause_while_paused_the_same_way_says_it_already_is(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.PAUSE)
    again = await world.command(CommandKind.PAUSE)
    assert again.ok and again.lines == [
        "entries already paused until /resume; exits and protection keep running"], again.lines
    await world.command(CommandKind.PAUSE, symbol=SYMBOL)
    one = await world.command(CommandKind.PAUSE, symbol=SYMBOL)
    assert one.lines == [f"{SYMBOL}: entries already paused until /resume {SYMBOL}; exits "
                         "and protection keep running"], one.lines
