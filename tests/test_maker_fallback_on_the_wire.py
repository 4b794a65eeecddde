"""A maker entry's market rest on the wire: the real python-binance client against the fake
Binance, polling and with the user-data stream. The quote never fills, the time is up, the
rest goes at market, and the agent keeps the position it just bought: its own record, its
planned stop and take-profit on Binance, no "closed (MANUAL)", nothing adopted (with
TRADEBOT_ADOPT_POSITIONS=false it had been left on Binance without a stop). The tick's view
predates that order; the observation reads the exchange again (trader/position_keeper.py
`_resolve_entry`)."""

import asyncio
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import SYMBOL, booted_engine, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.positions import make
from trader.domain import OrderType
from trader.position import PositionState

D = Decimal


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: D("50000")}) as server:
        yield server


@pytest.mark.parametrize("streams", [False, True], ids=["polling", "user-data stream"])
async def test_the_market_rest_of_a_maker_entry_is_held_with_its_planned_legs(fake, tmp_path,
                                                                             streams):
    settings = settings_for(fake, db_path=tmp_path / "tradebot.db", entry_mode="maker",
                            maker_timeout_seconds=1, maker_requotes=0,
                            adopt_positions=False)
    async with booted_engine(settings, streams=streams) as engine:
        planned = make(state=PositionState.ENTERING, quantity="0.010", entry="50000",
                       stop="49500", tp="51000", live_legs=False, seq={},
                       opened_at=engine.clock.now(), key="mk1")
        assert await engine.entries.send(planned) is not None    # a quote at the bid
        await engine.tick()                                      # it rests, unfilled
        await asyncio.sleep(1.2)                                 # the time is up
        for _ in range(4):
            await engine.tick()
            await asyncio.sleep(0.2)
        alerts = [(a.name, a.text) for a in engine.store.recent_alerts(50)]
        assert fake.sim.position(SYMBOL).quantity == D("0.010")
        held = engine.positions[SYMBOL]
        assert (held.key, held.adopted, held.quantity) == ("mk1", False, D("0.010")), alerts
        legs = sorted((o.type.value, o.trigger_price, o.quantity)
                      for o in fake.sim.open_orders(SYMBOL) if o.type.conditional)
        assert legs == [(OrderType.STOP_MARKET.value, D("49500"), D("0.010")),
                        (OrderType.TAKE_PROFIT_MARKET.value, D("51000"), D("0.010"))], alerts
        assert [name for name, _ in alerts if name in ("CLOSE", "RECONCILE_MISMATCH")] == []
        assert engine.store.closed_positions() == []
