"""An ACCOUNT_UPDATE older than one already applied (a replay, a duplicate delivered late
across a reconnect) must not overwrite the position the newer one told.

Binance (https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams, "Message Ordering Guarantee"): "For the same user on a single Websocket
connection, messages of the same event type (e.g., ACCOUNT_UPDATE, ORDER_TRADE_UPDATE) are
strictly ordered by both T (transaction time from Matching Engine) and E"; so an
ACCOUNT_UPDATE with an earlier T than the last one applied is stale, whatever it says.

Found from outside: the real engine, python-binance and the user-data socket against the
fake Binance; an adopted LONG 0.1 protected; the exchange pushes the position as it is
(T now), then an update from a minute earlier saying flat. The agent took the stale one:
it recorded the LONG closed (MANUAL), cancelled the stop and the target, and left the real
0.1 on the exchange naked and forgotten. A stale smaller size shrank the stop to it.
Event shapes: tests/fakes/binance_wire.py (Event-Balance-and-Position-Update,
Event-Order-Update)."""

import time
from decimal import Decimal

import pytest

from tests.fakes import binance_wire as wire
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import running_agent
from trader.domain import Balance, ExchangePosition, Order, OrderStatus, OrderType, Side
from trader.engine import Engine
from trader.position import PositionState

SYMBOL = "BTCUSDT"
PRICE = Decimal("50000")
MARKER = "web_marker_1"     # an order of somebody else's, on a symbol we do not trade


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


def account_update(quantity: str, moment_ms: int) -> dict:
    position = ExchangePosition(SYMBOL, Decimal(quantity), Decimal("50005.5"))
    return wire.account_update([position], Balance(Decimal("10000"), Decimal("0"), Decimal("10000")), "ORDER",
                               moment_ms)


def marker(moment_ms: int) -> dict:
    """An ORDER_TRADE_UPDATE NEW of another symbol: once the tracker knows it, everything
    sent before it on the socket was fed to the engine."""
    order = Order(symbol="ETHUSDT", client_id=MARKER, side=Side.BUY, type=OrderType.LIMIT,
                  status=OrderStatus.NEW, quantity=Decimal("1"), price=Decimal("2000"))
    return wire.order_trade_update(order, None, 991, moment_ms)


async def fed_then_ticked(engine: Engine, ticks: int = 2) -> None:
    """Wait until the marker was fed, then for `ticks` more ticks (each acts on what it fed)."""
    assert await eventually(lambda: engine.tracker.get(MARKER) is not None, 5.0)
    seen = engine.ticks
    assert await eventually(lambda: engine.ticks >= seen + ticks, 5.0)


@pytest.mark.parametrize("stale_quantity", ["0", "0.040"], ids=["flat", "smaller"])
async def test_an_older_account_update_does_not_overwrite_a_newer_one(fake, tmp_path,
                                                                     stale_quantity):
    async with running_agent(fake, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        now = int(time.time() * 1000)
        await fake.hub.send_user([account_update("0.100", now),
                                  account_update(stale_quantity, now - 60_000), marker(now)])
        await fed_then_ticked(engine)
        position = engine.positions.get(SYMBOL)
        assert position is not None and position.state is PositionState.PROTECTED
        assert position.quantity == Decimal("0.1")
        stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert [(o.client_id, o.quantity) for o in stops] == [(stop_id, Decimal("0.100"))]
        assert not [a for a in engine.store.recent_alerts(50) if a.name == "CLOSE"]
        assert engine.tracker.position(SYMBOL).quantity == Decimal("0.100")


async def test_a_newer_account_update_is_still_applied(fake, tmp_path):
    """The guard drops only older ones: a close by hand that the exchange pushes after an
    update with the same T (several in one millisecond) is taken, and the legs go."""
    async with running_agent(fake, tmp_path, streams=True) as engine:
        now = int(time.time() * 1000)
        await fake.hub.send_user([account_update("0.100", now)])
        await fake.close_position_by_hand(SYMBOL)
        assert await eventually(lambda: SYMBOL not in engine.positions, 5.0)
        assert await eventually(lambda: not fake.sim.open_orders(SYMBOL), 5.0)


async def test_an_update_older_than_the_position_read_over_rest_is_ignored(fake, tmp_path):
    """No ACCOUNT_UPDATE came since the boot read the position (GET /fapi/v3/positionRisk,
    whose rows carry "updateTime": .../trade/rest-api/Position-Information-V3): one with an
    earlier T is older than what the read said, and is dropped the same way."""
    async with running_agent(fake, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        now = int(time.time() * 1000)
        await fake.hub.send_user([account_update("0", now - 60_000), marker(now)])
        await fed_then_ticked(engine)
        position = engine.positions.get(SYMBOL)
        assert position is not None and position.state is PositionState.PROTECTED
        stops = [o.client_id for o in fake.sim.open_orders(SYMBOL)
                 if o.type is OrderType.STOP_MARKET]
        assert stops == [stop_id]
