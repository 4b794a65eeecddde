"""A step's alerts are queued once its exchange actions are done: queuing one is a database
commit (an fsync on the live agent's rollback journal), and none may stand between an entry
fill, or a stop cancelled by hand, and the stop-loss placement that protects the position.
Seen in the SQL the engine runs; the alerts still go out, in order, and even when the
placement fails."""

from tests.engine_world import SYMBOL, long_signal, make_world
from trader.domain import OrderRole


def first_write(statements: list[str], table: str, containing: str = "") -> int:
    return next(i for i, sql in enumerate(statements)
                if sql.startswith(f"INSERT INTO {table}") and containing in sql)


async def test_the_stop_loss_is_sent_before_the_fill_alert_is_queued(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    seen: list[str] = []
    world.store.db.conn.set_trace_callback(seen.append)
    await world.step()
    world.store.db.conn.set_trace_callback(None)
    stop_sent = first_write(seen, "[intents]", "-sl1")
    assert stop_sent < first_write(seen, "alerts", "'FILL'")
    assert world.alerts("FILL")


async def test_a_stop_cancelled_by_hand_is_replaced_before_sl_missing_is_queued(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop_id = world.engine.positions[SYMBOL].stop.order.client_id
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, stop_id, world.clock.now()))
    seen: list[str] = []
    world.store.db.conn.set_trace_callback(seen.append)
    await world.step()
    world.store.db.conn.set_trace_callback(None)
    assert first_write(seen, "[intents]", "-sl2") < first_write(seen, "alerts", "'SL_MISSING'")
    assert world.alerts("SL_MISSING") and world.alerts("PROTECTION_RESTORED")


async def test_the_alerts_go_out_even_when_the_placement_fails(tmp_path) -> None:
    """A placement that raises (a bug, a broken exchange adapter) ends the symbol's tick;
    what the steps before it had to say is still said."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    place = world.engine.executor.exchange.place

    async def stop_placement_breaks(request):  # type: ignore[no-untyped-def]
        if request.role is OrderRole.STOP_LOSS:
            raise RuntimeError("adapter bug")
        return await place(request)

    world.engine.executor.exchange.place = stop_placement_breaks
    await world.step()
    assert world.alerts("FILL")
