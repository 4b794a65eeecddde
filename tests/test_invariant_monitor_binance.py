"""The live invariant monitor on the real engine loop against the fake Binance, through the
real python-binance client: planted violations are alerted once, with their evidence, and
cleared after the fix; the monitor itself never touches an order.

- a second stop placed by hand (the operator's app: a client id not ours) on a protected
  position: INVARIANT_EXTRA_STOP naming both stops, INVARIANT_CLEARED once it is cancelled;
- orders of ours left on a flat symbol (the position closed by hand while Binance refuses
  the cancels): INVARIANT_FLAT_ORDERS naming them, INVARIANT_CLEARED once the engine's sweep
  can cancel them again.
"""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.engine import Engine
from trader.invariant_checks import InvariantKind
from trader.position import PositionState

BOUND = 15.0          # seconds: a bound on a condition, not a wait (an idle machine: ~1 s)
FAST = {"tick": 0.2, "invariant_check_ticks": 3}
HAND_STOP = "web_hand_stop_1"


def alerts(engine: Engine, name: str) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(500) if a.name == name]


async def later_checks(engine: Engine, count: int) -> bool:
    monitor = engine.housekeeping.invariants
    target = monitor.checks + count
    return await eventually(lambda: monitor.checks >= target, BOUND)


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


@pytest.mark.parametrize("streams", [True, False])
async def test_a_second_stop_placed_by_hand_is_alerted_once_with_evidence_then_cleared(
        fake, tmp_path, streams):
    async with running_agent(fake, tmp_path, streams=streams, **FAST) as engine:
        monitor = engine.housekeeping.invariants
        ours = engine.positions[SYMBOL].stop.order.client_id
        fake.clear_request_log()            # the boot's own reads are not the monitor's
        reads_before = monitor.rest_reads
        async with started_exchange(fake) as operator_app:
            await operator_app.place(OrderRequest(
                SYMBOL, Side.SELL, OrderType.STOP_MARKET, Decimal("0.100"), HAND_STOP,
                OrderRole.STOP_LOSS, trigger_price=Decimal("48000"), reduce_only=True))

        assert await eventually(lambda: alerts(engine, "INVARIANT_EXTRA_STOP"), BOUND)
        [text] = alerts(engine, "INVARIANT_EXTRA_STOP")
        assert f"{ours} (" in text and f"{HAND_STOP} (0.1 at 48000)" in text
        assert "LONG 0.1 has 2 live stop-losses" in text
        assert await later_checks(engine, 3)
        assert len(alerts(engine, "INVARIANT_EXTRA_STOP")) == 1, "one alert per episode"
        assert [v.kind for v in monitor.violations] == [InvariantKind.EXTRA_STOP]

        await fake.cancel_order_by_hand(SYMBOL, HAND_STOP)
        assert await eventually(lambda: alerts(engine, "INVARIANT_CLEARED"), BOUND)
        [cleared] = alerts(engine, "INVARIANT_CLEARED")
        assert "a single stop-loss is live on the position again" in cleared
        assert monitor.violations == [] and len(alerts(engine, "INVARIANT_EXTRA_STOP")) == 1
        assert await later_checks(engine, 2)
        assert len(alerts(engine, "INVARIANT_CLEARED")) == 1

        # A detector only: the agent's own stop and target were never touched.
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.PROTECTED and position.stop.order.client_id == ours
        assert not [a for a in engine.store.recent_alerts(500)
                    if a.name.startswith("INVARIANT_") and a.name not in (
                        "INVARIANT_EXTRA_STOP", "INVARIANT_CLEARED")]
        # Its cost: with the stream, nothing; polling, one fills read per check.
        reads = monitor.rest_reads - reads_before
        assert len(fake.requests("GET /fapi/v1/userTrades")) == reads
        if streams:
            assert monitor.rest_reads == 0
        else:
            assert 0 < monitor.rest_reads <= monitor.checks


async def test_orders_of_ours_left_on_a_flat_symbol_are_alerted_once_then_cleared(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}, flat_orders="keep") as fake:
        async with running_agent(fake, tmp_path, streams=True, **FAST) as engine:
            monitor = engine.housekeeping.invariants
            legs = sorted(leg.order.client_id for leg in engine.positions[SYMBOL].legs)
            fake.inject_fault("DELETE /fapi/v1/algoOrder", code=-1008, http_status=503,
                              msg="Server is currently overloaded with other requests.",
                              times=100_000)
            await fake.close_position_by_hand(SYMBOL)

            assert await eventually(lambda: alerts(engine, "INVARIANT_FLAT_ORDERS"), BOUND)
            [text] = alerts(engine, "INVARIANT_FLAT_ORDERS")
            assert all(f"{client_id} (" in text for client_id in legs), text
            assert await later_checks(engine, 3)
            assert len(alerts(engine, "INVARIANT_FLAT_ORDERS")) == 1
            [violation] = monitor.violations
            assert sorted(violation.client_ids) == legs
            assert sorted(o.client_id for o in fake.sim.open_orders(SYMBOL)) == legs

            fake.clear_faults()      # Binance takes cancels again: the engine's sweep tidies
            assert await eventually(lambda: alerts(engine, "INVARIANT_CLEARED"), BOUND)
            assert fake.sim.open_orders(SYMBOL) == [] and monitor.violations == []
            assert "no order of the agent's is left open on the flat symbol" in alerts(
                engine, "INVARIANT_CLEARED")[0]
            assert len(alerts(engine, "INVARIANT_FLAT_ORDERS")) == 1
