"""A command that waited in the engine's queue longer than the bot waits for it (60 s, then
"Still running; /status shows the outcome") is not run if it would add risk: /long, /short,
/wake, /resume, /unlock. The operator was told nothing happened yet and the market has
moved; "a command that waited while the agent was down is not executed" (README, Operating
from Telegram). Closing and sleeping still run: late, they are still what was asked.

Found from outside: `tradebot run` with the fake Binance down at start, /long confirmed,
the exchange back 130 s later: the agent opened the LONG then, at another price, and the
phone had only "Still running"."""

from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, make_world
from trader.commands import CommandKind


@pytest.fixture
async def world(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    return world


def every_command_waits_too_long(world) -> None:  # type: ignore[no-untyped-def]
    """From now on, every queued command has waited longer than the limit when it runs
    (the limit below any wait, instead of a test that sleeps 60 s)."""
    world.controller.queue_wait_limit = -1.0


async def test_a_long_that_waited_past_the_limit_is_not_run_and_says_why(world):
    every_command_waits_too_long(world)
    result = await world.command(CommandKind.LONG, symbol=SYMBOL)
    assert not result.ok
    assert "not run" in result.lines[0] and "send /long again" in result.lines[0], result.lines
    assert SYMBOL not in world.engine.positions
    assert not world.paper.sim.open_orders(SYMBOL) and world.paper.sim.position(SYMBOL).quantity == 0


async def test_a_close_that_waited_still_runs(world):
    assert (await world.command(CommandKind.LONG, symbol=SYMBOL)).ok
    every_command_waits_too_long(world)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    assert world.paper.sim.position(SYMBOL).quantity == Decimal(0)


async def test_a_long_on_time_runs(world):
    result = await world.command(CommandKind.LONG, symbol=SYMBOL)
    assert result.ok, result.lines
