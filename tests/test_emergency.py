"""Lights-out safety on the paper exchange: manual intervention in the Binance app, sleep
mode across restarts, SAVE_STATE_FAILURE with protection going on, second instance."""

import asyncio
import json
from decimal import Decimal
from pathlib import Path

from tests.engine_world import SYMBOL, long_signal, make_world, restart
from trader.commands import CommandKind
from trader.domain import CloseReason, OrderRequest, OrderRole, OrderType, Side
from trader.startup import boot


async def open_long(world, sl_pct: str = "0.02", tp_pct: str = "0.04"):
    await world.warm_up()
    world.strategy.next = long_signal(sl_pct, tp_pct)
    await world.step()
    return world.engine.positions[SYMBOL]


async def run(world, kind: CommandKind, **fields):
    """Send a command the way the bot does and let the engine run it between ticks."""
    return await world.command(kind, **fields)


async def test_position_closed_by_hand_is_finalized_as_manual_with_siblings_cancelled(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    await world.step()
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.MANUAL
    assert await world.open_orders() == []
    assert any("MANUAL" in text for text in world.alerts("CLOSE"))


async def test_position_reduced_by_hand_keeps_being_tracked_and_protected(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    half = (position.quantity / 2).quantize(Decimal("0.001"))
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now(), quantity=half))
    await world.step()
    tracked = world.engine.positions[SYMBOL]
    assert tracked.quantity == position.quantity - half
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert stops and stops[0].quantity >= tracked.quantity


async def test_stop_moved_by_hand_is_respected_not_fought(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    now = world.clock.now()
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id, now))
    hand_price = position.stop.trigger_price + 300
    world.paper.publish(world.paper.sim.place(OrderRequest(
        SYMBOL, Side.SELL, OrderType.STOP_MARKET, position.quantity, "web_moved_by_hand",
        OrderRole.STOP_LOSS, trigger_price=hand_price, reduce_only=True), now)[1])
    sent_before = world.sent
    for _ in range(5):
        await world.step()
    assert world.sent == sent_before
    assert world.alerts("SL_MISSING") == []
    tracked = world.engine.positions[SYMBOL]
    assert tracked.stop.order.client_id == "web_moved_by_hand"
    assert tracked.stop.trigger_price == hand_price


async def test_shutdown_keeping_positions_sleeps_across_a_restart_and_wake_resumes(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES=0)
    position = await open_long(world)
    result = await run(world, CommandKind.SHUTDOWN, flatten=False)
    assert result.ok and any("1 position stays protected" in line for line in result.lines)
    assert world.alerts("EMERGENCY_DONE")

    restarted = restart(world)
    await boot(restarted.engine)
    assert restarted.engine.guard_state.asleep
    # Asleep: protection still repairs a hand-cancelled stop, and nothing else runs.
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    restarted.strategy.next = long_signal()
    for _ in range(4):
        await restarted.step()
    stops = [o for o in await world.paper.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1
    assert restarted.strategy.asked == 0
    woke = await run(restarted, CommandKind.WAKE)
    assert woke.ok and not restarted.engine.guard_state.asleep


async def test_shutdown_with_flatten_closes_everything_and_reports_it(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    result = await run(world, CommandKind.SHUTDOWN, flatten=True)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []
    assert world.store.closed_positions()[-1].close_reason is CloseReason.EMERGENCY
    assert any("closed at" in line for line in result.lines)
    assert world.engine.guard_state.asleep


async def test_close_command_twice_with_the_same_id_acts_once(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    first = await world.command(CommandKind.CLOSE, "tg:1:42", symbol=SYMBOL)
    second = await world.command(CommandKind.CLOSE, "tg:1:42", symbol=SYMBOL)
    assert first.ok and second.duplicate
    assert len(world.store.closed_positions()) == 1


async def test_save_state_failure_alerts_blocks_entries_and_keeps_protecting(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    world.store.db.execute("PRAGMA query_only = ON")   # the disk went read-only under us

    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    world.strategy.next = long_signal()
    for _ in range(4):
        await world.step()

    unsaved = [a for a in world.engine.alerter.take_unsaved() if a.name == "SAVE_STATE_FAILURE"]
    assert unsaved, "the first failure must alert at once"
    assert any("/shutdown" in a.text for a in unsaved)
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1, "protection keeps running without the database"
    assert world.engine.guard_state.save_failure
    assert not world.engine.entry_allowed(SYMBOL)
    backup = Path(f"{world.settings.db_path}.emergency.json")
    assert json.loads(backup.read_text())["positions"]

    world.store.db.execute("PRAGMA query_only = OFF")   # writable again
    await world.step()      # its unit's commit at the end is the first good write...
    await world.step()      # ...told by the next tick's health check
    assert not world.engine.guard_state.save_failure
    assert world.alerts("SAVE_STATE_RECOVERED")


async def test_orders_of_a_second_instance_stop_trading_with_a_critical_alert(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    await boot(world.engine)
    # Another process with the same prefix places an entry on this account.
    world.paper.publish(world.paper.sim.place(OrderRequest(
        SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "tb-BTCUSDT-zzzzzz-en1",
        OrderRole.ENTRY, price=Decimal("90000")), world.clock.now())[1])
    world.strategy.next = long_signal()
    await world.step()
    assert world.alerts("SECOND_INSTANCE")
    assert world.engine.guard_state.asleep
    assert SYMBOL not in world.engine.positions


async def test_cli_shutdown_is_executed_by_the_running_agent_as_its_own_command(tmp_path, capsys):
    from trader.control_cli import run_control_cli
    world = await make_world(tmp_path)
    await open_long(world)

    async def engine_loop() -> None:
        while True:
            await world.controller.process()
            await asyncio.sleep(0.05)

    from trader.clock import SystemClock
    from trader.presence import AgentPresence
    presence = AgentPresence(world.store, lambda: world.engine.ticks, world.engine.wakeup,
                             SystemClock(), replay=False)    # the agent's heartbeat
    presence.start()
    loop = asyncio.create_task(engine_loop())
    try:
        code = await asyncio.wait_for(run_control_cli(world.settings, "shutdown"), 20)
    finally:
        loop.cancel()
        await presence.stop()
    assert code == 0
    assert world.engine.guard_state.asleep
    assert "1 position stays protected" in capsys.readouterr().out
    assert (await world.paper.position(SYMBOL)).quantity != 0
