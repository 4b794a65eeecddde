"""A wiped disk after the stop was cancelled by hand: the restarted agent picks its own
position up again and protects it with a stop whose client id was never sent before.

Binance refuses a duplicate client id among open orders only (-4116 "ClientOrderId is
duplicated."), so a cancelled sl1 sent again as sl1 is accepted: one client id, two orders,
and a later query by that id may answer the cancelled one. Found by the chaos test without
the Algo Order API (TRADEBOT_CHAOS_ALGO_API=off TRADEBOT_CHAOS_SEED=3
TRADEBOT_CHAOS_FLAT_ORDERS=expire TRADEBOT_CHAOS_TRIGGER_EVENTS=expired-first: a stop
cancelled by hand, the agent killed within the sentinel's debounce, restarted on an empty
database); the Algo API path has the same rule."""

from collections import Counter
from decimal import Decimal

import pytest

from tests.chaos import faults
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_engine import PRICE, SYMBOL, start_engine, stop_engine
from trader.domain import ClientId, OrderRole, Side
from trader.startup import boot


@pytest.mark.parametrize("algo_api", [True, False])
async def test_a_stop_cancelled_by_hand_before_a_wipe_is_never_sent_again_under_its_id(
        tmp_path, algo_api):
    async with FakeBinance(prices={SYMBOL: PRICE}, algo_api=algo_api) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.SELL, Decimal("0.050"))
        first = await start_engine(fake, tmp_path / "a")
        try:
            await boot(first)                     # adopted and protected: sl1, tp1
            key = first.positions[SYMBOL].key
        finally:
            await stop_engine(first)
        cancelled = str(ClientId(SYMBOL, key, OrderRole.STOP_LOSS, 1))
        assert faults.our_stops(fake, SYMBOL) == [cancelled]
        await fake.cancel_order_by_hand(SYMBOL, cancelled)   # then the disk is wiped

        second = await start_engine(fake, tmp_path / "b")
        try:
            await boot(second)
            for _ in range(3):
                await second.tick()
        finally:
            await stop_engine(second)
        twice = [cid for cid, n in Counter(fake.accepted_orders).items() if n > 1]
        assert twice == [], f"sent again under an id used before: {twice}"
        assert len(faults.our_stops(fake, SYMBOL)) == 1
