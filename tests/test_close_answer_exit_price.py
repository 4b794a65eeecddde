"""/close's answer names the exit as what it is: after part of the position was closed
earlier (the first profit, TP1), the record's exit price is the average of every exit, and
"closed at 70,703.1" read as this close's fill, which was 70,670.3 (found by a reviewer)."""

from tests.engine_world import SYMBOL
from tests.test_move_stop_command import world_with_a_long
from trader.commands import CommandKind
from trader.evolve import evolve


async def final_line(tmp_path, partial_taken: bool) -> str:  # type: ignore[no-untyped-def]
    world = await world_with_a_long(tmp_path)
    world.engine.positions[SYMBOL] = evolve(world.engine.positions[SYMBOL],
                                            partial_taken=partial_taken)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    return result.lines[-1]


async def test_after_an_earlier_partial_exit_the_price_is_the_average_of_every_exit(tmp_path):
    line = await final_line(tmp_path, partial_taken=True)
    assert line.startswith(f"{SYMBOL}: closed; average exit "), line
    assert "over every exit (part was closed earlier)" in line, line


async def test_a_single_exit_is_its_price(tmp_path):
    line = await final_line(tmp_path, partial_taken=False)
    assert line.startswith(f"{SYMBOL}: closed at "), line


async def test_the_close_alert_says_so_too(tmp_path):
    """"LONG closed (TAKE_PROFIT) at 70,978.1" with the TP at 71,197.3: the average of the
    partial's 70,765.6 and the TP's 71,189.4 (found by a reviewer)."""
    world = await world_with_a_long(tmp_path)
    world.engine.positions[SYMBOL] = evolve(world.engine.positions[SYMBOL], partial_taken=True)
    await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    [alert] = world.alerts("CLOSE")
    assert "closed (COMMAND); average exit " in alert, alert
    assert "over every exit (part was closed earlier)" in alert
