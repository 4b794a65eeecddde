"""The in-position tick reads `protection.settled` once: the keeper (trader/position_keeper.py
`protect`) hands its reading to the quiet tick (trader/lifecycle_tick.py `quiet`) through
`Interpreter.quiet_tick`. Its reading must be of the very record the tick is applied to, also on
a tick whose observation changed the record (a stop that went missing); `quiet` without it
reads it itself."""

from dataclasses import replace

from tests.engine_world import long_signal, make_world
from tests.test_quiet_tick import POLICY, quiet_long, tick
from trader import protection
from trader.events import Tick
from trader.lifecycle_tick import quiet


def test_quiet_takes_the_callers_reading_and_reads_it_without_one() -> None:
    position = quiet_long()
    missing = position.with_leg(replace(position.stop, order=replace(
        position.stop.order, missing_cycles=1, missing_since=position.opened_at)))
    assert quiet(position, tick(), tick().now, POLICY, True) is position
    assert quiet(position, tick(), tick().now, POLICY, False) is None
    assert quiet(missing, tick(), tick().now, POLICY) is None       # its own reading
    assert quiet(missing, tick(), tick().now, POLICY, None) is None


async def test_the_keeper_hands_the_reading_of_the_ticked_record(tmp_path) -> None:
    """Steady ticks, then the stop missing from what the exchange shows (the observation
    makes the record unsettled on that very tick), then back. Fails when the keeper hands
    a reading taken before the observation's events (stale on the tick the stop goes)."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    interpreter = world.engine.interpreter
    applied = interpreter.quiet_tick
    readings: list[tuple[bool | None, bool]] = []

    def checked(position, event, settled=None):  # type: ignore[no-untyped-def]
        if type(event) is Tick:
            readings.append((settled, protection.settled(position)))
        return applied(position, event, settled)
    interpreter.quiet_tick = checked                          # type: ignore[method-assign]
    for _ in range(3):
        await world.step()
    position = world.engine.positions[world.candles[-1].symbol]
    show_again = world.hide_order(position.stop.order.client_id)
    for _ in range(3):
        await world.step()
    show_again()
    for _ in range(3):
        await world.step()
    assert readings
    assert all(given == actual for given, actual in readings), readings
    assert {actual for _, actual in readings} == {True, False}
