"""/resume after a /wake that found a /pause on: the wake answer promises entries after the
pause "and a 30 min cooldown"; /resume then answered 'entries resumed' while the emergency
cooldown still refused every entry ('no LONG entry: emergency cooldown until 17:38 UTC'),
and /status shows no cooldown. Found by manual play: /pause 2h, /shutdown (keep), /wake,
/resume, /long. The /resume answer names the cooldown and its end."""

from datetime import timedelta

from tests.engine_world import make_world
from trader.commands import CommandKind
from trader.views import status_view


async def test_resume_during_the_wake_cooldown_says_entries_wait_for_it(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES="30")
    await world.command(CommandKind.PAUSE)
    await world.command(CommandKind.SHUTDOWN)
    await world.command(CommandKind.WAKE)
    resumed = await world.command(CommandKind.RESUME)
    until = world.engine.guard_state.entries_blocked_until
    assert until is not None and until > world.clock.now()
    assert resumed.ok
    assert f"new entries after the emergency cooldown, at {until:%H:%M} UTC" \
        in "\n".join(resumed.lines), resumed.lines


async def test_resume_without_a_cooldown_just_resumes(tmp_path):
    world = await make_world(tmp_path)
    await world.command(CommandKind.PAUSE)
    resumed = await world.command(CommandKind.RESUME)
    assert resumed.lines == ["entries resumed"], resumed.lines


async def test_wake_during_a_pause_says_entries_wait_for_the_pause_to_end_and_the_cooldown(
        tmp_path):
    """It read 'new entries wait for your /pause (and a 30 min cooldown)': as if the
    operator were to send /pause. It says the pause's end and the cooldown's."""
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES="30")
    await world.command(CommandKind.PAUSE)
    await world.command(CommandKind.SHUTDOWN)
    woke = await world.command(CommandKind.WAKE)
    until = world.engine.guard_state.entries_blocked_until
    assert until is not None
    assert ("awake: exits and protection run; new entries wait for the end of your /pause "
            f"and for a 30 min cooldown, until {until:%H:%M} UTC") in woke.lines, woke.lines


async def test_status_shows_the_wake_cooldown_while_it_refuses_entries(tmp_path):
    """/status read 'Breakers none' while /wake's emergency cooldown refused every entry:
    the operator saw nothing that explained why the agent did not trade."""
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES="30")
    await world.command(CommandKind.SHUTDOWN)
    await world.command(CommandKind.WAKE)
    until = world.engine.guard_state.entries_blocked_until
    assert until is not None and until > world.clock.now()
    assert f"entries wait after /wake until {until:%H:%M} UTC" \
        in status_view(world.engine).breakers
    world.clock.advance(timedelta(minutes=31))
    assert status_view(world.engine).breakers == []
