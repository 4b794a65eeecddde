"""/close while a maker-first entry is still quoting (TRADEBOT_ENTRY_MODE=maker): the
operator asked to be out of the symbol. The reply was "the LONG entry is not filled yet
(the order is followed by its id); nothing to close now", the quote stayed live, and the
fallback bought the full planned size at market 30 s later.

Now the close is journaled on the entering position first (a restart gives the quotes up
too), the quote is cancelled and read back (a fill that raced the cancel counts), what
filled is closed at market with no stop or take-profit placed for it, and the reply says
what was cancelled and what was closed. A MARKET entry whose answer was lost is not a
quote: nothing can be cancelled that cannot be seen, and its reply stays as it was."""

from decimal import Decimal

import pytest

from bot.format import format_result
from tests.engine_world import SYMBOL, World, make_world
from tests.positions import OPENED, make
from tests.test_close_of_an_entry_without_answer import lose_the_entry_answer
from tests.test_maker_engine import (
    MAKER,
    ProcessKilled,
    fill_part,
    later,
    live_quotes,
    placements,
    quoting_long,
    restarted,
)
from trader.alerts import Alert
from trader.commands import ALL_SYMBOLS, CommandKind
from trader.domain import CloseReason, Order, OrderRequest, OrderRole, OrderStatus
from trader.events import CloseRequested, EntryFilled, Flatten, FlattenResult, PlaceLeg, Policy
from trader.lifecycle import step
from trader.position import PositionState

D = Decimal


async def nothing_bought_later(world: World) -> None:
    """Past the maker timeout (30 s), the price trading through where the quote was: no
    quote is live, nothing is held, no order of ours is left."""
    for _ in range(4):
        await later(world, 12, price="99900")
    assert await live_quotes(world) == []
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []
    assert SYMBOL not in world.engine.positions


def requests(world: World) -> list[tuple[str, str]]:
    """Every placement and cancel the agent sends, in order (a spy on the wire)."""
    wire: list[tuple[str, str]] = []
    place, cancel = world.paper.place, world.paper.cancel

    async def placed(request: OrderRequest) -> Order:
        wire.append(("place", request.client_id))
        return await place(request)

    async def cancelled(symbol: str, client_id: str) -> Order | None:
        wire.append(("cancel", client_id))
        return await cancel(symbol, client_id)

    world.paper.place, world.paper.cancel = placed, cancelled  # type: ignore[method-assign]
    return wire


def legs_sent(sent: list[str]) -> list[str]:
    """The stop-loss and take-profit placements among the client ids sent."""
    return [c for c in sent if "-sl" in c or "-tp" in c]


async def test_close_while_a_quote_works_with_nothing_filled_cancels_it_and_buys_nothing(
        tmp_path):
    world = await make_world(tmp_path, **MAKER)         # fallback: market (the default)
    position, quote = await quoting_long(world)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    text = format_result(CommandKind.CLOSE, result)
    assert await live_quotes(world) == [], text          # cancelled by the command itself
    assert world.paper.sim.order(SYMBOL, quote.client_id).status is OrderStatus.CANCELED
    assert result.ok, text
    assert f"{SYMBOL}: the LONG maker entry is stopped: its quote " in text, text
    assert "was cancelled; nothing had filled, nothing is open" in text, text
    assert "not filled yet" not in text, text
    assert SYMBOL not in world.engine.positions
    await nothing_bought_later(world)
    # the reply said it: ENTRY_NOT_FILLED is kept for /alerts, not sent to the phone again
    assert all(a.name != "ENTRY_NOT_FILLED" for a in world.engine.alerter.pending())


async def test_close_after_a_part_filled_unseen_closes_that_part_with_no_legs(tmp_path):
    """The quote filled in part since the last tick (the agent has not seen it yet): the
    cancel's read-back finds it, and that part is closed at market at once: no stop or
    take-profit is placed for a position that is being closed."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    sent = placements(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    text = format_result(CommandKind.CLOSE, result)
    assert (await world.paper.position(SYMBOL)).quantity == 0, text
    assert await world.open_orders() == [], text
    assert legs_sent(sent) == [], sent
    assert result.ok, text
    assert (f"its quote {quote.client_id} was cancelled after {part.normalize()} of "
            f"{position.quantity.normalize()} filled; closing that part at market") in text, \
        text
    assert f"{SYMBOL}: closed at " in text and "PnL " in text, text
    closed = world.store.closed_positions()[-1]
    assert (closed.key, closed.close_reason, closed.traded_quantity) == (
        position.key, CloseReason.COMMAND, part)
    assert closed.exit_price is not None and closed.entry_price == quote.price
    await nothing_bought_later(world)


async def test_close_after_a_part_filled_and_was_protected_cancels_the_quote_before_closing(
        tmp_path):
    """Seen filled in part (legs placed for it), the rest still quoted: the quote is
    cancelled before the market close is sent (a fill of it can no longer follow the
    close), and the close leaves no quote, no stop, no take-profit, nothing bought after."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 2)
    await later(world, 2)
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert len(await live_quotes(world)) == 1
    wire = requests(world)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    text = format_result(CommandKind.CLOSE, result)
    assert result.ok, text
    first_close = next(i for i, (what, cid) in enumerate(wire) if "-fl" in cid)
    assert ("cancel", quote.client_id) in wire[:first_close], wire
    assert f"{SYMBOL}: the LONG maker entry is stopped: its quote {quote.client_id} was " \
        "cancelled before the close" in text, text
    assert await world.open_orders() == [], text
    assert (await world.paper.position(SYMBOL)).quantity == 0, text
    closed = world.store.closed_positions()[-1]
    assert (closed.close_reason, closed.traded_quantity) == (CloseReason.COMMAND, part)
    await nothing_bought_later(world)


async def test_a_restart_after_the_close_was_kept_cancels_the_quote_and_closes(tmp_path):
    """A part filled and seen: the process dies as the quote's cancel is sent; the new one
    finds the close kept (CLOSING), gives the quote up and closes what is held."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 2)
    await later(world, 2)

    async def die(symbol: str, client_id: str):  # type: ignore[no-untyped-def]
        raise ProcessKilled

    world.engine.executor.cancel_and_verify = die  # type: ignore[method-assign]
    with pytest.raises(ProcessKilled):
        await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert (await world.paper.position(SYMBOL)).quantity == part
    again = await restarted(world)
    await later(again, 2)
    await later(again, 2)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    closed = again.store.closed_positions()[-1]
    assert (closed.close_reason, closed.traded_quantity) == (CloseReason.COMMAND, part)
    await nothing_bought_later(again)


async def test_close_all_stops_a_quoting_entry_too(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    await quoting_long(world)
    result = await world.command(CommandKind.CLOSE, symbol=ALL_SYMBOLS)
    text = format_result(CommandKind.CLOSE, result)
    assert result.ok, text
    assert await live_quotes(world) == [], text
    assert "nothing had filled, nothing is open" in text, text
    await nothing_bought_later(world)


async def dies_before_the_quote_is_cancelled(tmp_path, kind: CommandKind,
                                             **args: object) -> World:
    """A maker long quoting; the command `kind` is taken and the process dies as it sends
    the quote's cancel: the quote is still live."""
    world = await make_world(tmp_path, **MAKER)
    _, quote = await quoting_long(world)

    async def die(symbol: str, client_id: str):  # type: ignore[no-untyped-def]
        raise ProcessKilled

    world.engine.executor.cancel_and_verify = die  # type: ignore[method-assign]
    with pytest.raises(ProcessKilled):
        await world.command(kind, **args)
    assert [q.client_id for q in await live_quotes(world)] == [quote.client_id]
    return world


async def test_a_restart_before_the_quote_is_cancelled_still_gives_it_up(tmp_path):
    """The close is journaled before the cancel is sent: the process dies between the two,
    and the new one cancels the quote and buys nothing, at the maker timeout neither."""
    world = await dies_before_the_quote_is_cancelled(tmp_path, CommandKind.CLOSE,
                                                     symbol=SYMBOL)
    again = await restarted(world)
    await later(again, 2)
    assert await live_quotes(again) == []
    await nothing_bought_later(again)


async def test_close_of_a_market_entry_whose_answer_is_lost_still_waits_for_it(tmp_path):
    """Negative: a MARKET entry whose answer was lost is no quote to cancel (it cannot be
    seen): the reply stays "not filled yet ... followed by its id", and no close is
    journaled on the entering record."""
    world = await make_world(tmp_path)
    await world.warm_up()
    lost = lose_the_entry_answer(world, lands=False)      # it never reached Binance
    await world.command(CommandKind.LONG, symbol=SYMBOL)
    lost["probes"] = False       # asked by id: unknown, and it may still land for a while
    assert world.engine.positions[SYMBOL].state is PositionState.ENTERING
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.lines == [f"{SYMBOL}: the LONG entry is not filled yet (the order is "
                            "followed by its id); nothing to close now: /status shows it"]
    assert not result.ok
    entering = world.engine.positions[SYMBOL]
    assert entering.state is PositionState.ENTERING and entering.closing_reason is None


# --- the state machine's part (pure) -------------------------------------------------------

def test_a_close_asked_while_entering_is_kept_then_what_filled_is_closed_with_no_legs():
    """ENTERING + CloseRequested: the close is kept on the record, nothing is sent; the
    entry's fill then takes it to CLOSING with one market close of what filled, and no
    stop or take-profit is planned for it; the close leaving nothing plans none either."""
    entering = make(state=PositionState.ENTERING, quantity="0", live_legs=False,
                    initial_quantity=D("0.2"))
    asked = step(entering, CloseRequested(CloseReason.COMMAND), OPENED, Policy())
    assert (asked.position.state, asked.position.closing_reason, asked.actions) == (
        PositionState.ENTERING, CloseReason.COMMAND, [])
    filled = step(asked.position, EntryFilled(D("0.08"), D("50000")), OPENED, Policy())
    assert filled.position.state is PositionState.CLOSING
    assert [type(a) for a in filled.actions if not isinstance(a, Alert)] == [Flatten]
    [close] = [a for a in filled.actions if isinstance(a, Flatten)]
    assert (close.quantity, close.reason) == (D("0.08"), CloseReason.COMMAND)
    done = step(filled.position, FlattenResult(D("0")), OPENED, Policy())
    assert not any(isinstance(a, PlaceLeg) for a in done.actions)


def test_an_entry_filled_with_no_close_asked_is_still_protected():
    """Negative: the same fill with no close asked opens the position and plans its legs."""
    entering = make(state=PositionState.ENTERING, quantity="0", live_legs=False,
                    initial_quantity=D("0.2"))
    filled = step(entering, EntryFilled(D("0.08"), D("50000")), OPENED, Policy())
    assert filled.position.state is PositionState.ATTACHING
    assert sorted(a.role for a in filled.actions if isinstance(a, PlaceLeg)) == sorted(
        [OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT])
    assert not any(isinstance(a, Flatten) for a in filled.actions)
