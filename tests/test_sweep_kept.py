"""The position keeper's sweep of orders that outlived their reason keeps its last "nothing
to cancel" only for the very same tracker snapshot and the very same legs of the very same
position (trader/orphan_sweep.py `_swept`): an order of ours that shows up live under a
kept answer, or a leg that changed, is swept as it would be without it."""

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, World, make_world
from tests.test_engine import open_long
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.order_tracker import OrderTracker


@pytest.fixture
def sweep_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sweeps that looked at the live orders (each call of `ours_live`)."""
    calls: list[str] = []
    read = OrderTracker.ours_live

    def counted(self, symbol):  # type: ignore[no-untyped-def]
        calls.append(symbol)
        return read(self, symbol)
    monkeypatch.setattr(OrderTracker, "ours_live", counted)
    return calls


async def settled_long(tmp_path) -> World:  # type: ignore[no-untyped-def]
    world = await make_world(tmp_path)
    await open_long(world, sl_pct="0.02", tp_pct="0.04")
    for _ in range(2):
        await world.step(world.last_close)
    return world


async def test_a_clean_symbol_is_looked_at_once(tmp_path, sweep_reads: list[str]) -> None:
    world = await settled_long(tmp_path)
    sweep_reads.clear()
    for _ in range(2):
        await world.step(world.last_close)
    await world.step(world.last_close + 10)     # the best price moves: the legs do not
    assert sweep_reads == [], "the same orders and legs: the kept answer"


async def test_a_leftover_of_ours_under_a_kept_answer_is_still_cancelled(
        tmp_path, sweep_reads: list[str]) -> None:
    """A take-profit of an earlier position of ours shows up live while the kept answer
    says "nothing": the tracker's orders changed, so the sweep looks and cancels it."""
    world = await settled_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    leftover = f"tb-{SYMBOL}-k0old-tp1"
    await world.paper.place(OrderRequest(
        SYMBOL, Side.SELL, OrderType.TAKE_PROFIT_MARKET, Decimal("0.001"), leftover,
        OrderRole.TAKE_PROFIT, trigger_price=position.take_profit.trigger_price,
        reduce_only=True))
    sweep_reads.clear()
    await world.step(world.last_close)
    assert sweep_reads, "the orders changed: looked at"
    assert leftover not in {o.client_id for o in await world.open_orders()}
    assert world.engine.positions[SYMBOL].state is position.state
    assert {o.client_id for o in await world.open_orders()} == {
        leg.order.client_id for leg in world.engine.positions[SYMBOL].legs if leg.order}


async def test_a_leg_that_changed_under_the_same_orders_is_looked_at(
        tmp_path, sweep_reads: list[str]) -> None:
    """The same tracker snapshot, but a record whose take-profit leg no longer holds its
    order (another leg object): that order is no longer wanted, and is swept."""
    world = await settled_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    await world.step(world.last_close)
    sweep_reads.clear()
    assert await world.engine.sweep_orphans(SYMBOL, position) == []
    assert sweep_reads == [], "kept: the very same legs and orders"
    take_profit = position.take_profit
    assert take_profit.order is not None
    without = position.with_leg(replace(take_profit, order=None))
    lines = await world.engine.sweep_orphans(SYMBOL, without)
    assert sweep_reads == [SYMBOL]
    assert len(lines) == 1 and take_profit.order.client_id in lines[0]
