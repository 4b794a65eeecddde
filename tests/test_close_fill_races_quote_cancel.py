"""h-review14, against 2c38fc9 / 9d79605: /close while a maker quote works, and the quote
fills in full while its cancel is on its way (the cancel then answers "unknown order"
-2011 / reads the order back FILLED). Whatever the race, the operator asked to be out:
the position must end flat, with no order of ours left, nothing bought afterwards.

Two variants: the quote entering (nothing filled before), and a position filled in part
and protected whose rest is still quoted (quotes_first).
"""

from decimal import Decimal as D

from tests.engine_world import SYMBOL, make_world
from tests.test_close_while_the_maker_entry_quotes import nothing_bought_later
from tests.test_maker_engine import MAKER, fill_part, later, live_quotes, quoting_long
from trader.commands import CommandKind


def fill_on_cancel(world, client_id, quantity):
    """The quote's rest trades away just before the cancel reaches the exchange."""
    original = world.engine.executor.cancel_and_verify

    async def racing(symbol, asked):
        if asked == client_id:
            fill_part(world, client_id, quantity)
        return await original(symbol, asked)
    world.engine.executor.cancel_and_verify = racing  # type: ignore[method-assign]


async def test_close_while_entering_and_the_quote_fills_during_the_cancel(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    fill_on_cancel(world, quote.client_id, position.quantity)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert (await world.paper.position(SYMBOL)).quantity == 0, result.lines
    assert await world.open_orders() == [], result.lines
    await nothing_bought_later(world)


async def test_close_of_a_part_filled_and_the_rest_fills_during_the_cancel(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 2)                            # seen: protected for the part
    assert await live_quotes(world)
    fill_on_cancel(world, quote.client_id, position.quantity - part)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == 0, result.lines
    assert await world.open_orders() == [], result.lines
    await nothing_bought_later(world)
