"""/shutdown while a maker-first entry is still quoting: "cancels entry orders" and sleeps
("no new entries"), yet the quoter placed its quote again on the next tick and the
fallback bought the full planned size at market 30 s later, asleep; the reply said "1
position stays protected" of an entry that held nothing.

Now the sleep is kept before any entry order is cancelled, a maker entry's quotes give up
asleep (after a restart too), and the reply says what became of the entry: nothing filled
and nothing is open, or the part that filled stays open, protected (closed with the
flatten)."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, make_world
from tests.test_close_while_the_maker_entry_quotes import (
    dies_before_the_quote_is_cancelled,
    nothing_bought_later,
)
from tests.test_maker_engine import (
    MAKER,
    assert_protected_for,
    fill_part,
    later,
    live_quotes,
    quoting_long,
    restarted,
)
from tests.test_maker_entry import roomy
from trader.commands import CommandKind
from trader.domain import Side
from trader.exchange.sim_rules import rules_for
from trader.maker_entry import GiveUp, MakerPolicy, QuoteState, decide

D = Decimal


@pytest.mark.parametrize("flatten", [False, True])
async def test_shutdown_while_a_quote_works_cancels_it_and_buys_nothing(tmp_path, flatten):
    world = await make_world(tmp_path, **MAKER)
    _, quote = await quoting_long(world)
    result = await world.command(CommandKind.SHUTDOWN, flatten=flatten)
    assert result.ok, result.lines
    assert await live_quotes(world) == [], result.lines
    assert f"{SYMBOL}: the LONG maker entry is stopped: its quote {quote.client_id} was " \
        "cancelled; nothing had filled, nothing is open" in result.lines
    assert result.lines[-1] == "asleep: no new entries; no open positions"
    await nothing_bought_later(world)


async def test_shutdown_keeping_positions_keeps_the_part_filled_protected_and_buys_no_more(
        tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    result = await world.command(CommandKind.SHUTDOWN, flatten=False)
    assert await live_quotes(world) == [], result.lines
    assert f"{SYMBOL}: the LONG maker entry is stopped: its quote {quote.client_id} was " \
        f"cancelled with {part.normalize()} of {position.quantity.normalize()} filled: that " \
        "position is open, protection places its stop" in result.lines, result.lines
    for _ in range(4):
        await later(world, 12, price="99900")
    assert await live_quotes(world) == []
    await assert_protected_for(world, part)


async def test_shutdown_with_flatten_closes_the_part_filled(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    result = await world.command(CommandKind.SHUTDOWN, flatten=True)
    assert result.ok, result.lines
    assert (await world.paper.position(SYMBOL)).quantity == 0, result.lines
    assert result.lines[-1] == "asleep: no new entries; no open positions"
    await nothing_bought_later(world)


async def test_a_restart_before_the_shutdowns_cancel_sleeps_and_gives_the_quote_up(tmp_path):
    """The sleep is kept before the cancel is sent: the process dies between the two, and
    the new one, asleep, cancels the quote and buys nothing, at the maker timeout neither."""
    world = await dies_before_the_quote_is_cancelled(tmp_path, CommandKind.SHUTDOWN,
                                                     flatten=False)
    again = await restarted(world)
    assert again.engine.guard_state.asleep
    await later(again, 2)
    assert await live_quotes(again) == []
    await nothing_bought_later(again)


def test_asleep_a_maker_entry_gives_up_instead_of_quoting_or_falling_back():
    """Pure (trader/maker_entry.py `decide`): asleep, a quote at the touch, one the touch
    left and one past the timeout are all given up; awake, they hold, re-quote, fall back."""
    rules = rules_for(SYMBOL)
    policy = MakerPolicy(requotes=3, timeout=timedelta(seconds=30))
    for seconds, touch in ((5, "99999"), (5, "100010"), (31, "99999")):
        kept = QuoteState(side=Side.BUY, planned=D("0.250"), filled=D("0.100"),
                          quote_price=D("99999"), unknown=False, quotes_sent=1,
                          elapsed=timedelta(seconds=seconds), risk=roomy(Side.BUY),
                          mark=D(touch))
        assert isinstance(decide(replace(kept, held="the agent sleeps (/shutdown)"), D(touch),
                                 rules, policy), GiveUp)
        assert not isinstance(decide(kept, D(touch), rules, policy), GiveUp)
