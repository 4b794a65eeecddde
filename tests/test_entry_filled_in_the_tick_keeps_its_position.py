"""An entry that fills in the middle of a tick (a maker entry's market rest at the timeout,
a lost-answer market entry found filled) is observed with a view read after it, never with
the one the tick took before: that one shows the symbol flat (or at the maker part only).

Found from outside (h-review10): the quotes never fill, the rest goes at market, and in that
same tick the phone gets `FILL ... SL 99,000, TP 102,000`, then `LONG closed (MANUAL); exit
price and PnL unknown`; the stop and take-profit are cancelled, a cooldown starts, and the
next tick adopts "a LONG 0.227 the agent did not open" with the 1 % / 1.5 % adoption legs
(RECONCILE_MISMATCH, CRITICAL). With TRADEBOT_ADOPT_POSITIONS=false the position stayed on
the exchange with no stop at all. Also in `TRADEBOT_ENTRY_MODE=maker tradebot backtest
--symbols XRPUSDT` (2021-11-17 10:55)."""

import sqlite3
from decimal import Decimal
from pathlib import Path

from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.test_cli import run_cli
from tests.test_maker_engine import (
    MAKER,
    assert_protected_for,
    fill_part,
    later,
    live_quotes,
    quoting_long,
)
from trader.domain import (
    CloseReason,
    ExchangePosition,
    Order,
    OrderRequest,
    OrderRole,
    OrderType,
)
from trader.exchange.base import ExchangeError, ExchangeEvent, UnknownOutcome
from trader.position import Position, PositionState

D = Decimal
PLANNED_STOP, PLANNED_TARGET = D("99000"), D("102000")     # long_signal: 1 % / 2 % of 100,000


async def quotes_outrun_then_market(world: World) -> Position:
    """A long quoted at the bid; nothing trades through it for 32 s, then the time is up
    and the rest is bought at market in that tick (at the planned price: all of it; a bid
    that ran away would leave less of the risk budget, tests/test_maker_chase_budget.py)."""
    position, _ = await quoting_long(world)
    for _ in range(5):
        await later(world, 4)
    assert world.engine.positions[SYMBOL].state is PositionState.ENTERING
    await later(world, 12)                 # the fallback's tick
    return position


async def legs_on_the_exchange(world: World) -> dict[OrderType, list[Order]]:
    legs: dict[OrderType, list[Order]] = {}
    for order in await world.open_orders():
        if order.type.conditional:
            legs.setdefault(order.type, []).append(order)
    return legs


def told(world: World) -> list[str]:
    """What the phone heard that says the position closed or is somebody else's."""
    return world.alerts("CLOSE") + world.alerts("RECONCILE_MISMATCH")


async def assert_kept_as_planned(world: World, planned: Position) -> None:
    held = world.engine.positions[SYMBOL]
    assert (held.key, held.adopted, held.quantity) == (planned.key, False, planned.quantity)
    assert (held.stop.trigger_price, held.take_profit.trigger_price) == (PLANNED_STOP,
                                                                           PLANNED_TARGET)
    legs = await legs_on_the_exchange(world)
    stops, targets = legs.get(OrderType.STOP_MARKET, []), legs.get(
        OrderType.TAKE_PROFIT_MARKET, [])
    assert [(o.trigger_price, o.quantity) for o in stops] == [(PLANNED_STOP, planned.quantity)]
    assert [(o.trigger_price, o.quantity) for o in targets] == [(PLANNED_TARGET,
                                                                  planned.quantity)]
    assert world.store.closed_positions() == []
    assert told(world) == [], told(world)


async def test_the_market_rest_of_a_maker_entry_keeps_the_agents_own_position(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    planned = await quotes_outrun_then_market(world)
    assert (await world.paper.position(SYMBOL)).quantity == planned.quantity
    assert await live_quotes(world) == []
    await assert_kept_as_planned(world, planned)            # in the fallback's own tick
    for _ in range(3):
        await later(world, 2)
    await assert_kept_as_planned(world, planned)
    assert len(world.alerts("FILL")) == 1
    assert SYMBOL not in world.engine.guards.state.cooldowns


async def test_the_market_rest_has_its_stop_when_positions_are_not_adopted(tmp_path):
    """ADOPT_POSITIONS=false: the position the agent dropped was left with no stop at all."""
    world = await make_world(tmp_path, **MAKER, TRADEBOT_ADOPT_POSITIONS="false")
    planned = await quotes_outrun_then_market(world)
    for _ in range(3):
        await later(world, 2)
    await assert_kept_as_planned(world, planned)


async def test_a_failed_read_after_the_market_rest_leaves_the_observation_to_the_next_tick(
        tmp_path):
    """The read after the rest is refused (a 503): the tick ends there (the symbol's
    boundary), nothing is closed, and the next tick observes the position as planned."""
    world = await make_world(tmp_path, **MAKER)
    reads = world.paper.position
    refused: list[str] = []

    async def position(symbol: str) -> ExchangePosition:
        if not refused and (await reads(symbol)).quantity > 0:
            refused.append(symbol)
            raise ExchangeError(-1000, "An unknown error occurred", 503)
        return await reads(symbol)

    world.paper.position = position  # type: ignore[method-assign]
    planned = await quotes_outrun_then_market(world)
    assert refused == [SYMBOL]
    assert told(world) == [] and world.engine.positions[SYMBOL].key == planned.key
    await later(world, 2)
    await assert_kept_as_planned(world, planned)


async def test_a_partly_filled_quote_then_the_market_rest_is_held_at_the_full_size(tmp_path):
    """30 % filled as maker, the rest at market: the record and the legs are for the full
    size from the fallback's tick on, never back at the 30 %, and nobody is told the size
    grew "outside the agent"."""
    world = await make_world(tmp_path, **MAKER)
    planned, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(planned.quantity * D("0.3"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    await assert_protected_for(world, part)
    await later(world, 26)                 # 31 s: the rest at market, in this tick
    assert world.engine.positions[SYMBOL].quantity == planned.quantity
    for _ in range(2):
        await later(world, 2)
    await assert_protected_for(world, planned.quantity)
    assert told(world) == [], told(world)
    assert not [a for a in world.alerts("POSITION_CHANGED") if "outside" in a]


async def test_a_market_entry_whose_answer_was_lost_is_kept_once_found_filled(tmp_path):
    """Market mode: the entry executes but its answer is lost, and the stream's word of it
    is late: the next tick's view is flat, the order read by its id is filled (FILL, legs
    placed), and the observation reads the exchange again instead of calling it closed."""
    world = await make_world(tmp_path)
    await world.warm_up()
    late: list[ExchangeEvent] = []
    reaches_exchange = world.paper.place

    async def place(request: OrderRequest) -> Order:
        if request.role is not OrderRole.ENTRY:
            return await reaches_exchange(request)
        _, events = world.paper.sim.place(request, world.clock.now())
        late.extend(events)                # executed; the stream tells it later
        raise UnknownOutcome("read timeout")

    world.paper.place = place  # type: ignore[method-assign]
    world.strategy.next = long_signal()
    await world.step()
    planned = world.engine.positions[SYMBOL]
    assert planned.state is PositionState.ENTERING
    await later(world, 2)                  # found filled by its id; the stream still silent
    await assert_kept_as_planned(world, planned)
    world.paper.publish(late)
    for _ in range(2):
        await later(world, 2)
    await assert_kept_as_planned(world, planned)


async def test_a_position_closed_by_hand_while_its_quote_is_cancelled_is_still_closed(
        tmp_path):
    """Negative: the view read after the step shows what is true, flat included. A partly
    filled maker entry given up at the timeout (TRADEBOT_MAKER_FALLBACK=cancel), closed by
    hand in the Binance app while the agent cancels its quote: it is closed (MANUAL), its
    legs cancelled, and nothing is adopted."""
    world = await make_world(tmp_path, **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    planned, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(planned.quantity * D("0.3"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    await assert_protected_for(world, part)
    cancels = world.paper.cancel

    async def cancel(symbol: str, client_id: str) -> Order | None:
        answer = await cancels(symbol, client_id)
        if client_id == quote.client_id:
            world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
        return answer

    world.paper.cancel = cancel  # type: ignore[method-assign]
    await later(world, 26)                 # 31 s: given up; closed by hand meanwhile
    await later(world, 2)
    assert SYMBOL not in world.engine.positions
    closed = world.store.closed_positions()
    assert [(p.key, p.close_reason) for p in closed] == [(planned.key, CloseReason.MANUAL)]
    assert len(world.alerts("CLOSE")) == 1 and world.alerts("RECONCILE_MISMATCH") == []
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await legs_on_the_exchange(world) == {}


def test_the_maker_backtest_neither_closes_nor_adopts_its_own_position(tmp_path: Path):
    """`TRADEBOT_ENTRY_MODE=maker tradebot backtest --symbols XRPUSDT` on the day the
    bundled data had a market rest at 2021-11-17 10:55: no close with its PnL unknown,
    no "the agent did not open"."""
    result = run_cli(tmp_path, "backtest", "--no-progress", "--symbols", "XRPUSDT",
                     "--from", "2021-11-17", "--to", "2021-11-17", "--out", str(tmp_path),
                     "--run-id", "maker", TRADEBOT_ENTRY_MODE="maker")
    assert result.returncode == 0, result.stderr[-2000:]
    database = tmp_path / "maker" / "databases" / "XRPUSDT" / "backtest.db"
    with sqlite3.connect(database) as db:
        alerts = db.execute("SELECT name, text FROM alerts").fetchall()
    assert [name for name, _ in alerts].count("FILL") > 1
    wrong = [(name, text) for name, text in alerts
             if name == "RECONCILE_MISMATCH" or "PnL unknown" in text]
    assert wrong == []
