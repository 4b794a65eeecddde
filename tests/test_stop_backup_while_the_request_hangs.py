"""A stop placement for a position nothing else covers that is still unanswered after
TRADEBOT_STOP_BACKUP_AFTER_SECONDS (1.5 s; 0.5 s here, for speed) is an unknown outcome for the backup rule
(trader/stop_backup.py): the backup stop goes out then, not when the client gives up (its
10 s timeout: benchmarks/protection_timing.py (d), "timeout, never landed", p50 10.38 s
without a stop). The first request goes on in the background; its late answer is taken by
the probe like a lost answer that turned up: one stop stays, never a third.

The real agent (python-binance) against the fake Binance, whose fault injection holds the
stop's request (POST /fapi/v1/algoOrder, New Algo Order: https://developers.binance.com/
docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order) before answering:
executed at once and answered late, executed late (a slow matching engine), or never
executed and the connection dropped."""

import asyncio
import time

import pytest

from tests.fakes.binance_harness import eventually, live_ids
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, running_agent
from tests.test_stop_answer_lost_with_nothing_covering import one_stop_settled
from trader.domain import OrderType

SYMBOL = "BTCUSDT"
ALGO_ORDER = "POST /fapi/v1/algoOrder"
HELD = 2.0            # seconds the fake holds the stop's request
BOUND = 0.5           # TRADEBOT_STOP_BACKUP_AFTER_SECONDS here (the least allowed; 1.5 s live)
HOLDS = {             # how the held request ends: the fake Binance's fault
    "executed, answered late": {"execute": True},
    "executed late": {"execute": False},
    "never executed, dropped": {"execute": False, "drop_connection": True},
}


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server



def posts(fake: FakeBinance, kind: OrderType) -> int:
    return len([r for r in fake.requests(ALGO_ORDER) if r.params.get("type") == kind.value])


@pytest.mark.parametrize("held", list(HOLDS))
async def test_a_hanging_stop_request_gets_a_backup_and_settles_to_one_stop(fake, tmp_path,
                                                                           held):
    async with running_agent(fake, tmp_path, streams=True,
                             stop_backup_after_seconds=BOUND) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        before = posts(fake, OrderType.STOP_MARKET)
        fake.inject_fault(ALGO_ORDER, delay=HELD, only={"type": "STOP_MARKET"},
                          **HOLDS[held])
        await fake.cancel_order_by_hand(SYMBOL, stop_id)
        cancelled = time.monotonic()
        assert await eventually(lambda: posts(fake, OrderType.STOP_MARKET) - before == 2,
                                HELD - 0.5), "no backup while the first request hangs"
        assert time.monotonic() - cancelled < HELD - 0.5
        assert await eventually(lambda: bool(live_ids(fake, OrderType.STOP_MARKET)), 1.0)
        first_known = held != "never executed, dropped"   # else probed for recvWindow + 10 s
        assert await eventually(lambda: one_stop_settled(fake, engine, first_known), HELD + 1), \
            (engine.positions[SYMBOL].stop, live_ids(fake, OrderType.STOP_MARKET))
        # Past the first request's end (its late answer, or the dropped connection) and a
        # tick: nothing may follow.
        await asyncio.sleep(max(0.0, cancelled + HELD + 0.6 - time.monotonic()))
        assert one_stop_settled(fake, engine, first_known)
        assert posts(fake, OrderType.STOP_MARKET) - before == 2, "never a third"


async def test_a_stop_request_answered_within_the_bound_sends_no_backup(fake, tmp_path):
    """Half a second, as a busy Binance may take: within the default 1.5 s, waited for."""
    async with running_agent(fake, tmp_path, streams=True) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        before = posts(fake, OrderType.STOP_MARKET)
        fake.inject_fault(ALGO_ORDER, delay=0.5, only={"type": "STOP_MARKET"})
        await fake.cancel_order_by_hand(SYMBOL, stop_id)
        assert await eventually(lambda: one_stop_settled(fake, engine, True), 3.0)
        assert posts(fake, OrderType.STOP_MARKET) - before == 1


async def test_a_hanging_take_profit_request_is_never_doubled(fake, tmp_path):
    async with running_agent(fake, tmp_path, streams=True,
                             stop_backup_after_seconds=BOUND) as engine:
        target_id = engine.positions[SYMBOL].take_profit.order.client_id
        before = posts(fake, OrderType.TAKE_PROFIT_MARKET)
        fake.inject_fault(ALGO_ORDER, delay=HELD, only={"type": "TAKE_PROFIT_MARKET"},
                          execute=False)
        await fake.cancel_order_by_hand(SYMBOL, target_id)
        assert await eventually(lambda: bool(live_ids(fake, OrderType.TAKE_PROFIT_MARKET)),
                                HELD + 2)
        assert await eventually(lambda: engine.positions[SYMBOL].take_profit.pending is None,
                                2.0)
        assert posts(fake, OrderType.TAKE_PROFIT_MARKET) - before == 1
        assert len(live_ids(fake, OrderType.TAKE_PROFIT_MARKET)) == 1
