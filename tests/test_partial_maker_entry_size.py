"""The size of a maker-first entry that filled only in part is the size it HELD, not the size
it planned: /status while it is open, and once it is closed /trades (size and net % of the
entry notional), the backtest's trades.csv (`trades_with_funding`, what trader/backtest.py
writes) and the close alert. Through the real engine on the paper exchange
(tests/engine_world.py): a quote part-fills, the rest is given up at the timeout
(TRADEBOT_MAKER_FALLBACK=cancel), then the operator closes. And the opposite case: the rest
fills later, the trade shows the full size."""

from dataclasses import replace
from decimal import Decimal

from tests.engine_world import SYMBOL, World, make_world
from tests.test_maker_engine import MAKER, fill_part, later, live_quotes, quoting_long
from trader.commands import CommandKind
from trader.domain import OrderStatus, Side
from trader.position import PositionState
from trader.trade_history import recent_trades, trades_with_funding

D = Decimal


async def part_filled_then_given_up(world: World) -> tuple[Decimal, Decimal]:
    """A quote fills 40 % of the plan, the rest is cancelled at the timeout; (planned, held)."""
    position, quote = await quoting_long(world)
    planned = position.quantity
    held = world.paper.rules(SYMBOL).round_qty(planned * D("0.4"))
    fill_part(world, quote.client_id, held)
    await later(world, 5)
    await later(world, 26)                        # 31 s: the time is up, the rest given up
    for _ in range(3):
        await later(world, 2)
    assert world.paper.sim.order(SYMBOL, quote.client_id).status is OrderStatus.CANCELED
    assert await live_quotes(world) == []
    assert (await world.paper.position(SYMBOL)).quantity == held < planned
    return planned, held


async def close_by_command(world: World) -> None:
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    for _ in range(3):
        await later(world, 2)
    assert SYMBOL not in world.engine.positions
    assert (await world.paper.position(SYMBOL)).quantity == 0


async def test_status_of_an_open_position_after_a_given_up_partial_entry_shows_what_it_holds(
        tmp_path):
    world = await make_world(tmp_path, **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    _, held = await part_filled_then_given_up(world)
    status = (await world.command(CommandKind.STATUS)).status
    assert status is not None
    [view] = status.positions
    assert view.quantity == held
    [listed] = (await world.command(CommandKind.POSITIONS)).positions
    assert listed.quantity == held and listed.stop_attached and listed.take_profit_attached


async def test_a_closed_trade_after_a_given_up_partial_entry_shows_the_size_it_held(tmp_path):
    world = await make_world(tmp_path, **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    planned, held = await part_filled_then_given_up(world)
    await close_by_command(world)
    [closed] = world.store.closed_positions()
    assert closed.initial_quantity == planned     # what the entry asked for stays on record

    [trade] = (await world.command(CommandKind.TRADES)).trades
    assert trade.quantity == held
    assert trade.net_fraction == trade.net / (closed.entry_price * held)   # % of what it held

    # the backtest's trades.csv: the records trader/backtest.py writes (one column each)
    [record] = trades_with_funding([closed], world.store.funding_payments())
    assert record.quantity == held
    fills = world.paper.sim.fills(SYMBOL)
    assert record.fees == sum((f.fee for f in fills), D(0))
    assert record.gross_pnl == sum((f.realized_pnl for f in fills), D(0))
    exits = [f for f in fills if f.side is Side.SELL]
    assert sum((f.quantity for f in exits), D(0)) == held

    # the close alert: the PnL of what was held (fees and PnL from the fills), no other size
    [alert] = world.alerts("CLOSE")
    assert str(planned) not in alert


async def test_a_partial_entry_whose_rest_fills_later_shows_the_full_size(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    planned = position.quantity
    part = world.paper.rules(SYMBOL).round_qty(planned * D("0.3"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    assert world.engine.positions[SYMBOL].quantity == part
    await later(world, 26)                        # the rest at market (the default fallback)
    for _ in range(3):
        await later(world, 2)
    opened = world.engine.positions[SYMBOL]
    assert opened.quantity == planned and opened.state is PositionState.PROTECTED
    [view] = (await world.command(CommandKind.POSITIONS)).positions
    assert view.quantity == planned

    await close_by_command(world)
    [trade] = (await world.command(CommandKind.TRADES)).trades
    assert trade.quantity == planned
    [closed] = world.store.closed_positions()
    assert trade.net_fraction == trade.net / (closed.entry_price * planned)
    [record] = trades_with_funding([closed], world.store.funding_payments())
    assert record.quantity == planned


async def test_a_trade_recorded_before_its_size_was_kept_still_shows_its_planned_size(tmp_path):
    """Records closed before `traded_quantity` existed load with 0: /trades and trades.csv
    keep showing what they showed (the entry's planned size)."""
    world = await make_world(tmp_path, **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    planned, _ = await part_filled_then_given_up(world)
    await close_by_command(world)
    [closed] = world.store.closed_positions()
    older = replace(closed, traded_quantity=D(0))
    [trade] = recent_trades([older], [], 5, world.paper.rules)
    [record] = trades_with_funding([older], [])
    assert trade.quantity == record.quantity == planned
