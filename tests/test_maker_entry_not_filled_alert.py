"""A maker-first entry whose quotes end with nothing filled (TRADEBOT_MAKER_FALLBACK=cancel
at the timeout) is over long after the /long's reply or the strategy's signal: one short
INFO alert, ENTRY_NOT_FILLED as a market entry known unfilled later says it, tells the
operator that nothing is open. One that filled in part says nothing of the kind: the
position is open, FILL told it."""

from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, World, make_world
from tests.test_maker_engine import MAKER, fill_part, later, live_quotes, quoting_long
from trader.commands import CommandKind
from trader.domain import Order, OrderRequest, OrderType
from trader.exchange.base import ExchangeError
from trader.position import PositionState

CANCEL = {**MAKER, "TRADEBOT_MAKER_FALLBACK": "cancel"}


def not_filled(world: World) -> list[tuple[str, str]]:
    return [(a.severity, a.text) for a in world.store.recent_alerts(200)
            if a.name == "ENTRY_NOT_FILLED"]


async def test_a_strategy_maker_entry_given_up_unfilled_says_so_once(tmp_path):
    world = await make_world(tmp_path, **CANCEL)
    await quoting_long(world)
    assert not_filled(world) == []                 # still quoting: nothing to say yet
    await later(world, 31)
    assert SYMBOL not in world.engine.positions
    [(severity, text)] = not_filled(world)
    assert severity == "INFO"
    assert SYMBOL in text and "nothing is open" in text and "not filled" in text
    for _ in range(3):
        await later(world, 2)
    assert len(not_filled(world)) == 1


async def test_a_long_command_maker_entry_given_up_unfilled_says_so(tmp_path):
    world = await make_world(tmp_path, **CANCEL)
    await world.warm_up()
    result = await world.command(CommandKind.LONG, symbol=SYMBOL)
    assert result.ok, result.lines
    assert world.engine.positions[SYMBOL].state is PositionState.ENTERING
    assert len(await live_quotes(world)) == 1
    await later(world, 31)
    assert SYMBOL not in world.engine.positions
    [(_, text)] = not_filled(world)
    assert "nothing is open" in text


async def test_a_maker_entry_that_filled_in_part_raises_no_entry_not_filled(tmp_path):
    world = await make_world(tmp_path, **CANCEL)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * Decimal("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    await later(world, 26)
    world.clock.set(world.clock.now() + timedelta(seconds=2))
    await world.engine.tick()
    assert world.engine.positions[SYMBOL].quantity == part
    assert not_filled(world) == []


async def test_a_market_rest_refused_at_the_timeout_says_why_nothing_is_open(tmp_path):
    """TRADEBOT_MAKER_FALLBACK=market: the quotes did not fill and the exchange refused the
    rest at market (-2019, margin): the alert says that too."""
    world = await make_world(tmp_path, **MAKER)
    await quoting_long(world)
    original = world.paper.place

    async def refuse_market(request: OrderRequest) -> Order:
        if request.type is OrderType.MARKET:
            raise ExchangeError(-2019, "Margin is insufficient.")
        return await original(request)

    world.paper.place = refuse_market  # type: ignore[method-assign]
    await later(world, 31)
    assert SYMBOL not in world.engine.positions
    [(_, text)] = not_filled(world)
    assert "nothing is open" in text and "the market rest was refused" in text
    assert "Margin is insufficient" in text or "-2019" in text, text
