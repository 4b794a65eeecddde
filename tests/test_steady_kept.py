"""The position keeper keeps the last "settled and steady" answer (trader/position_keeper.py
`protect`) only for the very same record, exchange position and tracker snapshot: a tick
after any of them changed (a stop cancelled or partly filled on the exchange, the record
stepped) observes in full, as it would without the kept answer."""

from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, World, make_world
from tests.test_engine import open_long
from trader import position_keeper
from trader.domain import OrderType
from trader.position import PositionState


@pytest.fixture
def steady_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ticks that read the position in full: each call of `observe.steady` or of
    `observe.observe` (a record not settled goes straight to it), by name."""
    calls: list[str] = []
    for name in ("steady", "observe"):
        read = getattr(position_keeper, name)

        def counted(position, view, name=name, read=read):  # type: ignore[no-untyped-def]
            calls.append(name)
            return read(position, view)
        monkeypatch.setattr(position_keeper, name, counted)
    return calls


async def quiet_ticks(world: World, count: int) -> None:
    """Candles closing at the last close: the mark, so the best price, does not move."""
    for _ in range(count):
        await world.step(world.last_close)



async def settled_long(tmp_path):  # type: ignore[no-untyped-def]
    """A long with its stop and take-profit, after two quiet ticks: the record settles (its
    first tick anchors it)."""
    world = await make_world(tmp_path)
    await open_long(world, sl_pct="0.02", tp_pct="0.04")
    await quiet_ticks(world, 2)
    return world

async def test_an_unchanged_position_and_exchange_are_read_steady_once(
        tmp_path, steady_reads: list[str]) -> None:
    world = await settled_long(tmp_path)
    steady_reads.clear()
    kept = world.engine.positions[SYMBOL]
    await quiet_ticks(world, 3)
    assert world.engine.positions[SYMBOL] is kept, "the record did not change"
    assert steady_reads == [], "the same record, position and orders: the kept answer"


async def test_a_stop_cancelled_under_a_kept_answer_is_still_replaced(
        tmp_path, steady_reads: list[str]) -> None:
    """The record is the very one the kept answer is for; the tracker's orders are not."""
    world = await settled_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    assert position.stop.order is not None
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    steady_reads.clear()
    await quiet_ticks(world, 1)
    assert steady_reads, "the orders changed: read in full"
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1 and stops[0].client_id.endswith("sl2")
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert world.alerts("SL_MISSING")


async def test_a_stop_filled_in_part_under_a_kept_answer_resizes_the_legs(
        tmp_path, steady_reads: list[str]) -> None:
    """The exchange's position changed (a partial stop fill): observed, the legs resized."""
    world = await settled_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    part = world.fill_stop_in_part(position)
    steady_reads.clear()
    await quiet_ticks(world, 2)
    assert steady_reads
    resized = world.engine.positions[SYMBOL]
    assert resized.quantity == position.quantity - part
    assert resized.quantity < position.quantity and resized.quantity > Decimal(0)


async def test_a_best_price_moved_by_a_quiet_tick_keeps_the_answer(
        tmp_path, steady_reads: list[str]) -> None:
    """A quiet tick's record differs by its best price alone, which steady does not read."""
    world = await settled_long(tmp_path)
    steady_reads.clear()
    best = world.engine.positions[SYMBOL].best_price
    for _ in range(3):
        await world.step(world.last_close + 10)
    moved = world.engine.positions[SYMBOL]
    assert moved.best_price is not None and best is not None and moved.best_price > best
    assert steady_reads == []


async def test_a_record_the_full_step_changed_is_read_again(
        tmp_path, steady_reads: list[str]) -> None:
    """Volatility dying down moves the legs (a full step, orders sent, a new record): the
    next tick reads the new record and the new orders in full."""
    world = await settled_long(tmp_path)
    legs = world.engine.positions[SYMBOL].legs
    for _ in range(6):          # candles of no range until the regime moves the legs
        sent = world.sent
        close = world.last_close
        await world.step(close, high=close, low=close)
        if world.sent > sent:
            break
    assert world.engine.positions[SYMBOL].legs != legs
    steady_reads.clear()
    await world.step(world.last_close)
    assert steady_reads == ["steady"]
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
