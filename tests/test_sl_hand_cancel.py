"""A stop-loss cancelled outside the agent (by hand in the Binance app), once the exchange
confirms it (ORDER_TRADE_UPDATE X=CANCELED, for a conditional order ALGO_UPDATE with algo
status CANCELED:
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Algo-Order-Update),
is replaced at once AND said: SL_MISSING naming the symbol, the client id and what is being
done, then PROTECTION_RESTORED once the replacement is acknowledged. A take-profit cancelled
by hand is replaced at once too, logged at WARNING, with no alert. The agent's own cancels
(a trailing-stop move, /close) raise nothing.

Through the pure core (trader/protection.py), the real engine on the paper exchange
(tests/engine_world.py), and the real agent with python-binance against the fake Binance.
"""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, make_world
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.log_capture import logged
from tests.positions import protected as protected_position
from tests.test_binance_protection import running_agent
from tests.test_engine import open_long as open_long_at
from trader import protection
from trader.alerts import Alert, AlertName, Severity
from trader.commands import Command, CommandKind
from trader.control import Controller
from trader.domain import OrderRole, OrderStatus, OrderType
from trader.engine import Engine
from trader.events import LegGone, LegPlaced, PlaceLeg, Policy
from trader.lifecycle import step
from trader.position import PositionState

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def open_long(world):
    """A long with a 2 % stop and a 4 % target (room for the moves these tests make)."""
    return await open_long_at(world, "0.02", "0.04")


def alert_names(world) -> list[str]:
    return [a.name for a in world.store.recent_alerts(200)]


# --- the pure core ------------------------------------------------------------------------

def test_a_confirmed_cancel_of_the_live_stop_alerts_sl_missing_and_places_a_new_one() -> None:
    position = protected_position()
    stop_id = position.stop.order.client_id
    result = step(position, LegGone(OrderRole.STOP_LOSS, stop_id, True, status="CANCELED"),
                  NOW, Policy())
    [alert] = [a for a in result.actions if isinstance(a, Alert)]
    assert alert.name is AlertName.SL_MISSING and alert.level is Severity.CRITICAL
    assert position.symbol in alert.text and stop_id in alert.text
    assert "cancelled outside the agent" in alert.text and "replacing" in alert.text
    [placement] = [a for a in result.actions if isinstance(a, PlaceLeg)]
    assert placement.role is OrderRole.STOP_LOSS
    restored = step(result.position, LegPlaced(OrderRole.STOP_LOSS, placement.client_id,
                                               placement.trigger_price, placement.quantity),
                    NOW, Policy())
    assert [a.name for a in restored.actions if isinstance(a, Alert)] == [
        AlertName.PROTECTION_RESTORED]
    assert restored.position.state is PositionState.PROTECTED


def test_a_confirmed_cancel_of_the_take_profit_is_replaced_without_an_alert() -> None:
    position = protected_position()
    tp_id = position.take_profit.order.client_id
    result = step(position, LegGone(OrderRole.TAKE_PROFIT, tp_id, True, status="CANCELED"),
                  NOW, Policy())
    assert not [a for a in result.actions if isinstance(a, Alert)]
    assert [a.role for a in result.actions if isinstance(a, PlaceLeg)] == [OrderRole.TAKE_PROFIT]


def test_the_cancel_of_a_stop_the_agent_replaced_itself_raises_nothing() -> None:
    """New-first: the old stop's CANCELED arrives after the new one took its place."""
    position = protected_position()
    old_id = position.stop.order.client_id
    moved, new_id = position.placing(position.stop)
    moved = protection.placed(moved, OrderRole.STOP_LOSS, new_id, position.stop.trigger_price,
                              position.quantity)[0]
    result = step(moved, LegGone(OrderRole.STOP_LOSS, old_id, True, status="CANCELED"), NOW,
                  Policy())
    assert result.actions == [] and result.position.stop.order.client_id == new_id


# --- the real engine on the paper exchange --------------------------------------------------

@pytest.mark.parametrize("stream", [True, False], ids=["stream", "polling"])
async def test_a_stop_cancelled_by_hand_alerts_sl_missing_then_protection_restored(
        tmp_path, stream):
    """With the stream the CANCELED comes as an event; polling, the stop is missing from the
    open orders and a query by client id says CANCELED: either way confirmed, both alerts."""
    world = await make_world(tmp_path)
    position = await open_long(world)
    stop_id = position.stop.order.client_id
    world.paper.stream_live = stream
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, stop_id, world.clock.now()))
    await world.step()

    [missing] = world.alerts("SL_MISSING")
    assert SYMBOL in missing and stop_id in missing
    assert "cancelled outside the agent" in missing and "replacing" in missing
    [restored] = world.alerts("PROTECTION_RESTORED")
    assert "protected again" in restored
    names = alert_names(world)
    assert names.index("SL_MISSING") < names.index("PROTECTION_RESTORED")
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert [o.client_id[-3:] for o in stops] == ["sl2"]
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED


async def test_a_take_profit_cancelled_by_hand_is_replaced_and_logged_not_alerted(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    tp_id = position.take_profit.order.client_id
    alerts_before = alert_names(world)
    with logged("WARNING") as lines:
        world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, tp_id, world.clock.now()))
        await world.step()
    assert alert_names(world) == alerts_before            # nothing sent to the phone
    assert any("take-profit" in line and tp_id in line and "outside the agent" in line
               for line in lines), lines
    targets = [o for o in await world.open_orders() if o.type is OrderType.TAKE_PROFIT_MARKET]
    assert [o.client_id[-3:] for o in targets] == ["tp2"]
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED


async def test_the_agents_own_trailing_moves_and_close_raise_no_sl_missing(tmp_path):
    """A trailing stop moves new-first: each old stop is cancelled by the agent (CANCELED on
    the exchange) and /close cancels the legs it leaves: none of it is an outside cancel."""
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    position = await open_long_at(world, sl_pct="0.01", tp_pct="0.05")
    first_stop = position.stop.order.client_id
    for close in ("101200", "101500", "101800"):
        await world.step(Decimal(close))
    moved = world.engine.positions[SYMBOL]
    assert moved.trailing_active and moved.stop.order.client_id != first_stop
    assert world.paper.sim.order(SYMBOL, first_stop).status is OrderStatus.CANCELED
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    assert SYMBOL not in world.engine.positions
    names = alert_names(world)
    assert "SL_MISSING" not in names and "PROTECTION_RESTORED" not in names, names


# --- the real agent, python-binance against the fake Binance ---------------------------------

@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as server:
        yield server


def stored_alerts(engine: Engine, name: str) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(200) if a.name == name]


async def test_end_to_end_a_stop_cancelled_in_the_app_is_alerted_and_the_all_clear_follows(
        fake, tmp_path):
    async with running_agent(fake, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await fake.cancel_order_by_hand(SYMBOL, stop_id)       # ALGO_UPDATE CANCELED
        assert await eventually(lambda: bool(stored_alerts(engine, "PROTECTION_RESTORED")), 5.0)
        [missing] = stored_alerts(engine, "SL_MISSING")
        assert stop_id in missing and "cancelled outside the agent" in missing
        stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert [o.client_id[-3:] for o in stops] == ["sl2"]


async def test_end_to_end_the_agents_own_close_cancels_its_legs_without_an_alert(fake,
                                                                               tmp_path):
    """/close: the market close, then the legs it leaves end (ALGO_UPDATE EXPIRED as the
    position closes, or CANCELED by the agent's own clean-up): no SL_MISSING."""
    async with running_agent(fake, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        command = Command(CommandKind.CLOSE, "test:close", engine.clock.now(), symbol=SYMBOL)
        controller = Controller(engine)
        pending = asyncio.ensure_future(controller.execute(command))
        while not pending.done():
            await asyncio.sleep(0)
            await controller.process()
        assert pending.result().ok, pending.result().lines
        assert await eventually(lambda: SYMBOL not in engine.positions, 5.0)
        assert fake.sim.order(SYMBOL, stop_id).status in (OrderStatus.CANCELED,
                                                          OrderStatus.EXPIRED)
        for _ in range(3):
            await engine.tick()
        assert not stored_alerts(engine, "SL_MISSING")
