"""SAVE_STATE_FAILURE is one alert per streak of failed writes, its repeats within the
throttle (5 min) dropped and counted in the next one (trader/save_alerts.py); a new streak
soon after SAVE_STATE_RECOVERED is told when that message's window ends.

Found by review5 (exp_disk_full.py, TRADEBOT_DB on a full tmpfs): two CRITICAL
SAVE_STATE_FAILURE messages within 2 s ("6 failures in a row", then "11"): the write health
flags the 1st, 3rd and 10th failures, a full disk fails every write of a tick, and each
alert had a key of its own.
"""

from datetime import timedelta

from storage import SaveStateFailure
from tests.engine_world import World, make_world
from tests.test_emergency import open_long
from trader.alerts import AlertName


def fail_writes(world: World, count: int) -> None:
    """`count` writes refused by the read-only database."""
    for n in range(count):
        try:
            world.store.put("probe", n, world.clock.now())
        except SaveStateFailure:
            continue
        raise AssertionError("the database took a write while read-only")


def said(world: World) -> list[str]:
    return [a.text for a in world.engine.alerter.take_unsaved()
            if a.name == AlertName.SAVE_STATE_FAILURE]


async def tick_in(world: World, seconds: float) -> None:
    world.clock.set(world.clock.now() + timedelta(seconds=seconds))
    await world.engine.tick()


async def test_one_streak_of_failures_is_one_alert_until_the_throttle_ends(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    world.store.db.execute("PRAGMA query_only = ON")      # the disk is full
    health = world.store.health
    fail_writes(world, 1)
    await tick_in(world, 1)
    fail_writes(world, 5)                                 # the 3rd flagged
    await tick_in(world, 1)
    fail_writes(world, 10)                                # the 10th flagged
    await tick_in(world, 1)
    assert health.in_a_row >= 10
    first = said(world)
    assert len(first) == 1, first
    fail_writes(world, 100 - health.in_a_row)             # the 100th, 6 minutes later
    await tick_in(world, 360)
    [again] = said(world)
    assert "failures in a row" in again and "more like it" in again, again


async def test_a_new_streak_soon_after_recovery_is_told_when_the_window_ends(tmp_path):
    """Writes failing again soon after SAVE_STATE_RECOVERED are told when the 5 min window
    of that message ends, with the count (was: at once, a new streak with a key of its own;
    review6: a disk failing and working every tick then sent a CRITICAL per tick,
    tests/test_save_alerts_hold_across_flaps.py). A new streak after a quiet window is
    still told at once (there too)."""
    world = await make_world(tmp_path)
    await open_long(world)
    world.store.db.execute("PRAGMA query_only = ON")
    fail_writes(world, 1)
    await tick_in(world, 1)
    assert said(world)
    world.store.db.execute("PRAGMA query_only = OFF")
    await tick_in(world, 1)
    await tick_in(world, 1)
    assert world.alerts("SAVE_STATE_RECOVERED")
    world.store.db.execute("PRAGMA query_only = ON")
    fail_writes(world, 1)
    await tick_in(world, 1)
    assert not said(world), "inside the window of the recovery"
    assert world.engine.guard_state.save_failure, "entries blocked at once all the same"
    await tick_in(world, 300)
    [again] = said(world)
    assert "more like it" in again, again
