"""/close of a maker entry whose quote is not known cancelled: the market close waits for
the quote to be known gone (trader/close_hold.py), else a fill of the quote after the close
is a position no record holds and no stop protects. Found by h-review14 (rv14 #1: the
close went out while the quote's cancel was unanswered and the quote read back live).
"""

from decimal import Decimal as D

from tests.engine_world import SYMBOL, make_world
from tests.test_maker_engine import MAKER, fill_part, later, live_quotes, quoting_long
from trader.close_hold import QUOTE_CANCEL_WAIT
from trader.commands import CommandKind
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.exchange.base import UnknownOutcome
from trader.position import PositionState

LOST = "timeout: the DELETE got no answer (it never arrived)"


async def partly_filled_and_protected(world):
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 2)
    await later(world, 2)
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    return position, quote, part


def first_cancel_lost_then_the_rest_trades(world, quote_id, rest):
    """The quote's first cancel gets no answer (it never arrived: the quote reads back
    live); `rest` of it trades just before the second cancel lands."""
    cancel = world.paper.cancel
    calls = {"n": 0}

    async def cancelled(symbol, client_id):
        if client_id == quote_id:
            calls["n"] += 1
            if calls["n"] == 1:
                raise UnknownOutcome(LOST)
            if calls["n"] == 2:
                fill_part(world, quote_id, rest)
        return await cancel(symbol, client_id)
    world.paper.cancel = cancelled  # type: ignore[method-assign]


async def test_a_quote_filling_after_an_unanswered_cancel_is_closed_too(tmp_path):
    world = await make_world(tmp_path, **MAKER, TRADEBOT_ADOPT_POSITIONS="false")
    _, quote, part = await partly_filled_and_protected(world)
    first_cancel_lost_then_the_rest_trades(world, quote.client_id, D("0.100"))

    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert (await world.paper.position(SYMBOL)).quantity == part     # held: the quote rests
    assert "not known cancelled yet" in result.lines[0], result.lines
    assert not any("was cancelled" in line for line in result.lines), result.lines
    assert "protected by its stop-loss" in result.lines[-1], result.lines
    for _ in range(4):
        await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []
    assert SYMBOL not in world.engine.positions


async def test_an_entering_quote_filling_after_an_unanswered_cancel_is_closed_too(tmp_path):
    """Still ENTERING (its part filled unseen): the part is not closed while the quote
    rests, and the reply does not say the quote was cancelled."""
    world = await make_world(tmp_path, **MAKER, TRADEBOT_ADOPT_POSITIONS="false")
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    first_cancel_lost_then_the_rest_trades(world, quote.client_id, D("0.100"))

    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert (await world.paper.position(SYMBOL)).quantity == part
    assert "not known cancelled yet" in result.lines[0], result.lines
    assert "with no stop-loss meanwhile" in result.lines[0], result.lines
    for _ in range(4):
        await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []


async def test_no_market_close_is_placed_while_the_quote_is_live(tmp_path):
    """On the wire: no -fl order leaves while the quote is on the exchange (rv14's
    test_no_close_while_the_quote_is_still_live)."""
    world = await make_world(tmp_path, **MAKER)
    position, quote, part = await partly_filled_and_protected(world)
    place, cancel = world.paper.place, world.paper.cancel
    closes_with_quote_live: list[str] = []
    lost = {"left": 1}

    async def placed(request):
        order = await place(request)
        if "-fl" in request.client_id and await live_quotes(world):
            closes_with_quote_live.append(request.client_id)
            if len(closes_with_quote_live) == 1:     # the rest trades through our bid
                fill_part(world, quote.client_id, position.quantity - part)
        return order

    async def unanswered(symbol, client_id):
        if client_id == quote.client_id and lost["left"]:
            lost["left"] -= 1
            raise UnknownOutcome(LOST)
        return await cancel(symbol, client_id)
    world.paper.place, world.paper.cancel = placed, unanswered  # type: ignore[method-assign]

    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    for _ in range(3):
        await later(world, 2)
    assert closes_with_quote_live == [], result.lines
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []


async def test_a_cancel_answered_at_once_closes_in_the_same_command(tmp_path):
    """Negative: the quote's cancel answered, the close goes out in the /close itself,
    as before, and the reply says the quote was cancelled before the close."""
    world = await make_world(tmp_path, **MAKER)
    await partly_filled_and_protected(world)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert "was cancelled before the close" in result.lines[0], result.lines
    assert await world.open_orders() == []


async def test_a_cancel_never_answered_closes_anyway_after_the_wait_and_says_so(tmp_path):
    """Bounded: every cancel of the quote lost (it stays live), the close is held with the
    stop on the exchange, then sent after QUOTE_CANCEL_WAIT with a CRITICAL alert."""
    world = await make_world(tmp_path, **MAKER)
    _, quote, part = await partly_filled_and_protected(world)
    cancel = world.paper.cancel

    async def never(symbol, client_id):
        if client_id == quote.client_id:
            raise UnknownOutcome(LOST)
        return await cancel(symbol, client_id)
    world.paper.cancel = never  # type: ignore[method-assign]

    await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    waited = 0
    while waited + 2 < QUOTE_CANCEL_WAIT.total_seconds():
        await later(world, 2)
        waited += 2
        assert (await world.paper.position(SYMBOL)).quantity == part
        assert [o for o in await world.open_orders() if o.type.conditional]  # its stop
    await later(world, 4)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    said = world.alerts("PROTECTION")
    assert any("still not known cancelled" in text for text in said), said


async def test_a_quote_filling_after_the_close_sent_anyway_is_closed_at_market(tmp_path):
    """The safety net (trader/late_entry_fill.py): past the wait the close went out with
    the quote still live; the quote then trades. That fill, whose record is closed, is
    adopted whatever TRADEBOT_ADOPT_POSITIONS says and closed at market, CRITICAL."""
    world = await make_world(tmp_path, **MAKER, TRADEBOT_ADOPT_POSITIONS="false")
    _, quote, part = await partly_filled_and_protected(world)
    cancel = world.paper.cancel
    answering = {"yet": False}

    async def not_yet(symbol, client_id):
        if client_id == quote.client_id and not answering["yet"]:
            raise UnknownOutcome(LOST)
        return await cancel(symbol, client_id)
    world.paper.cancel = not_yet  # type: ignore[method-assign]

    await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    for _ in range(int(QUOTE_CANCEL_WAIT.total_seconds() / 2) + 3):
        await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert SYMBOL not in world.engine.positions
    assert [q.client_id for q in await live_quotes(world)] == [quote.client_id]
    fill_part(world, quote.client_id, D("0.100"))          # the quote trades after the close
    answering["yet"] = True
    for _ in range(4):
        await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []
    said = world.alerts("POSITION_UNPROTECTED")
    assert any("filled after its close" in text for text in said), said


async def test_a_position_opened_by_hand_after_a_close_is_still_left_alone(tmp_path):
    """Negative: with adoption off, a position that is no late fill of our quote (opened
    by hand after the close) is left alone, as before."""
    world = await make_world(tmp_path, **MAKER, TRADEBOT_ADOPT_POSITIONS="false")
    await partly_filled_and_protected(world)
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    await world.paper.place(OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, D("0.05"),
                                         client_id="by-hand-1", role=OrderRole.ENTRY))
    for _ in range(3):
        await later(world, 2)
    assert (await world.paper.position(SYMBOL)).quantity == D("0.05")
    assert SYMBOL not in world.engine.positions
    assert world.alerts("POSITION_UNPROTECTED") == []
