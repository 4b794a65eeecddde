"""SAVE_STATE_FAILURE and SAVE_STATE_RECOVERED are one voice: a disk that fails and works by
turns (a nearly full disk takes a small write and refuses a larger one; another process
takes the lock now and then) is a message or two per 5 minutes, and the last one said is the
state now once the window ends.

Found by review6 (test_rv6_flapping_disk_save_alerts.py): a write failing and the next
succeeding every 2 s tick sent 30 CRITICAL SAVE_STATE_FAILURE in a minute ("could not save
probe: attempt to write a readonly database. New entries blocked; ..."): the alert's key
was per streak of failures and every flap began a new streak, while SAVE_STATE_RECOVERED,
one key, was throttled after its first, so the phone kept reading "entries blocked".
"""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.engine_world import World, make_world
from tests.test_emergency import open_long
from tests.test_save_failure_said_once_per_streak import fail_writes, tick_in
from trader.save_alerts import Said, SaveAlerts

T0 = datetime(2026, 12, 2, tzinfo=UTC)


async def flap(world: World, ticks: int) -> None:
    """One write refused, the next taken, then a 2 s tick: `ticks` times."""
    for _ in range(ticks):
        world.store.db.execute("PRAGMA query_only = ON")
        fail_writes(world, 1)
        world.store.db.execute("PRAGMA query_only = OFF")
        world.store.put("probe-ok", 1, world.clock.now())
        await tick_in(world, 2)


def last_said(world: World) -> str:
    return [a.name for a in world.store.recent_alerts(200)     # (oldest first)
            if a.name in ("SAVE_STATE_FAILURE", "SAVE_STATE_RECOVERED")][-1]


async def test_a_flapping_disk_is_not_a_pair_of_alerts_every_tick(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    await flap(world, 30)                                 # one minute of 2 s ticks
    failures = world.alerts("SAVE_STATE_FAILURE")
    recovered = world.alerts("SAVE_STATE_RECOVERED")
    assert len(failures) == 1 and len(recovered) == 1, (failures, recovered)
    assert last_said(world) == "SAVE_STATE_RECOVERED", "writes work: the phone says so"


async def test_ten_minutes_of_flapping_are_a_pair_per_window_with_counts(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    await flap(world, 300)                                # ten minutes
    failures = world.alerts("SAVE_STATE_FAILURE")
    assert 2 <= len(failures) <= 3, failures
    assert "more like it since" in failures[1] and "worked again" in failures[1], failures[1]
    assert len(world.alerts("SAVE_STATE_RECOVERED")) == len(failures)
    assert last_said(world) == "SAVE_STATE_RECOVERED"
    assert not world.engine.guard_state.save_failure, "the last write worked: entries allowed"


async def test_a_failure_that_stays_after_a_recent_recovery_is_said_when_the_window_ends(
        tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    await flap(world, 1)                                  # FAILURE, RECOVERED
    world.store.db.execute("PRAGMA query_only = ON")      # now the disk stays full
    fail_writes(world, 1)
    await tick_in(world, 2)
    assert len(world.engine.alerter.take_unsaved()) == 0, "held inside the window"
    assert world.engine.guard_state.save_failure, "entries blocked at once all the same"
    for _ in range(150):
        await tick_in(world, 2)
    said = [a.text for a in world.engine.alerter.take_unsaved()
            if a.name == "SAVE_STATE_FAILURE"]
    assert len(said) == 1 and "more like it" in said[0], said


async def test_negative_a_single_failure_after_a_long_healthy_time_is_said_at_once(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    await flap(world, 1)
    await tick_in(world, 3600)                            # an hour of healthy writes
    world.store.db.execute("PRAGMA query_only = ON")
    fail_writes(world, 1)
    world.store.db.execute("PRAGMA query_only = OFF")
    await tick_in(world, 2)
    await tick_in(world, 2)          # (a write's success is counted when its tick commits)
    assert len(world.alerts("SAVE_STATE_FAILURE")) == 2
    assert len(world.alerts("SAVE_STATE_RECOVERED")) == 2


async def test_negative_recovery_after_a_real_outage_is_said_at_once(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    world.store.db.execute("PRAGMA query_only = ON")
    fail_writes(world, 1)
    for _ in range(90):                                   # three minutes down
        await tick_in(world, 2)
    assert [a for a in world.engine.alerter.take_unsaved()
            if a.name == "SAVE_STATE_FAILURE"]
    world.store.db.execute("PRAGMA query_only = OFF")
    await tick_in(world, 2)
    await tick_in(world, 2)
    [recovered] = world.alerts("SAVE_STATE_RECOVERED")
    assert "work again" in recovered and "failed writes since" in recovered, recovered
    assert last_said(world) == "SAVE_STATE_RECOVERED"


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_once_writes_settle_the_last_thing_said_is_their_state(flaps):
    """Any run of checks (a failure flagged or not; failing at the check or not), then the
    state held for a whole window: the last message said is that state."""
    alerts = SaveAlerts(timedelta(minutes=5))
    now, last, was_failing = T0, None, False
    for flagged, failing in flaps:
        now += timedelta(seconds=2)
        # the first failure of a streak is always flagged (storage/health.py)
        flagged = flagged or (failing and not was_failing)
        was_failing = failing
        for what in alerts.step(now, flagged, failing):
            alerts.said_now(what, now, 0, 0)
            last = what
    settled = flaps[-1][1] if flaps else False
    for _ in range(2):
        now += timedelta(minutes=5, seconds=2)
        for what in alerts.step(now, False, settled):
            alerts.said_now(what, now, 0, 0)
            last = what
    if last is not None:
        assert last is (Said.FAILURE if settled else Said.RECOVERED)
