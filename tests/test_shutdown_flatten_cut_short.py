"""/shutdown -> "flatten" sleeps before it closes anything: the sleep is saved and pinned
(with the flatten marked unfinished) before the first request. A stop that cuts the flatten
short (SIGTERM's budget cancels the command where it waits on a slow exchange; a crash) must
not leave a restart trading; the next start, on the same disk or a wiped one, finishes the
flatten and says so.

The real engine on the paper exchange, the real python-telegram-bot against the fake Bot
API and the intent keeper between them (tests/test_operator_intent.py); the process-level
version: tests/test_shutdown_cut_short_by_sigterm.py."""

import asyncio
from decimal import Decimal
from pathlib import Path

from tests.engine_world import SYMBOL, World, long_signal, restart
from tests.fakes.telegram_server import FakeTelegram
from tests.test_operator_intent import (
    BOUND,
    eventually,
    pinned_text,
    start_agent,
    wiped_restart,
)
from trader.commands import CommandKind
from trader.control_sleep import FINISHING, interrupted_flatten
from trader.domain import Order, OrderRequest, OrderType
from trader.startup import boot

pytest_plugins = ["tests.test_operator_intent"]     # its world and telegram fixtures


def hold_market_orders(world: World) -> asyncio.Event:
    """The exchange never answers a MARKET order (nothing reaches it) until `answer_again`;
    the event is set when one was sent."""
    sent = asyncio.Event()
    place = world.paper.place

    async def hanging(request: OrderRequest) -> Order:
        if request.type is OrderType.MARKET:
            sent.set()
            await asyncio.Event().wait()
        return await place(request)
    world.paper.place = hanging      # type: ignore[method-assign]
    return sent


async def open_long(world: World) -> None:
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert world.engine.positions[SYMBOL].state.open


async def flatten_cut_short(world: World) -> None:
    """/shutdown -> flatten, cancelled while its market close waits (as the stop's budget
    cancels the command, trader/stop_budget.py)."""
    sent = hold_market_orders(world)
    command = asyncio.ensure_future(world.command(CommandKind.SHUTDOWN, flatten=True))
    await asyncio.wait_for(sent.wait(), BOUND)
    command.cancel()
    await asyncio.gather(command, return_exceptions=True)
    del world.paper.place            # the exchange answers again (the instance's override)


async def test_a_flatten_cut_short_leaves_the_sleep_pinned_and_a_wiped_restart_finishes_it(
        world, telegram: FakeTelegram, tmp_path: Path):
    await open_long(world)
    first = await start_agent(world, telegram)
    assert "RUNNING" in await first.keeper.recover(wait=BOUND)
    await flatten_cut_short(world)
    assert world.engine.guard_state.asleep and world.engine.guard_state.flattening
    await eventually(lambda: "asleep=yes" in pinned_text(telegram)
                     and "flatten=yes" in pinned_text(telegram))
    await first.stop()

    second_world = await wiped_restart(world, tmp_path, "wiped")
    second = await start_agent(second_world, telegram)
    try:
        await boot(second_world.engine)          # the position is picked up (and protected)
        state = await second.keeper.recover(wait=BOUND)
        assert "ASLEEP" in state and "flatten" in state, state
        command = interrupted_flatten(second_world.engine)
        assert command is not None
        result = await second_world.controller.run(command)
        assert result.ok, result.lines
        assert (await second_world.paper.position(SYMBOL)).quantity == 0
        assert second_world.engine.guard_state.asleep
        assert not second_world.engine.guard_state.flattening
        assert interrupted_flatten(second_world.engine) is None      # done once
        said = second_world.alerts("EMERGENCY_DONE")
        assert said and said[-1].startswith(FINISHING), said
        assert "no open positions" in said[-1]
        await eventually(lambda: "asleep=yes" in pinned_text(telegram)
                         and "flatten=yes" not in pinned_text(telegram))
        second_world.strategy.next = long_signal()
        await second_world.step()
        assert (await second_world.paper.position(SYMBOL)).quantity == 0   # asleep: no entry
    finally:
        await second.stop()


async def test_a_flatten_cut_short_is_finished_by_a_restart_on_the_same_disk(world):
    await open_long(world)
    await flatten_cut_short(world)
    assert world.engine.guard_state.asleep and world.engine.guard_state.flattening

    again = restart(world)
    await boot(again.engine)
    assert again.engine.guard_state.asleep
    command = interrupted_flatten(again.engine)
    assert command is not None
    result = await again.controller.run(command)
    said = again.alerts("EMERGENCY_DONE")[-1]
    assert said.startswith(FINISHING)
    assert not again.engine.guard_state.flattening
    # The close sent before the stop has no answer: it is not sent twice; the restart says
    # so, and sends it once it is known not to have landed (trader/executor.py).
    assert not result.ok and "sends it again by itself" in said, said
    for _ in range(3):
        await again.step()
    assert (await again.paper.position(SYMBOL)).quantity == 0
    assert again.engine.guard_state.asleep


async def test_a_flatten_that_completes_answers_as_before_and_leaves_nothing_to_finish(
        world, telegram: FakeTelegram):
    await open_long(world)
    agent = await start_agent(world, telegram)
    try:
        await agent.keeper.recover(wait=BOUND)
        result = await world.command(CommandKind.SHUTDOWN, flatten=True)
        assert result.ok
        assert result.lines[-1] == "asleep: no new entries; no open positions"
        assert not any("pinned" in line or line == FINISHING for line in result.lines)
        assert (await world.paper.position(SYMBOL)).quantity == Decimal(0)
        assert world.engine.guard_state.asleep and not world.engine.guard_state.flattening
        assert interrupted_flatten(world.engine) is None
        await eventually(lambda: "asleep=yes" in pinned_text(telegram))
        assert "flatten=yes" not in pinned_text(telegram)
    finally:
        await agent.stop()
