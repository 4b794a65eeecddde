"""The chaos harness's faults on a Binance without the Algo Order API
(TRADEBOT_CHAOS_ALGO_API=off, `FakeBinance(algo_api=False)`): they aim at the paths that
server has. A fault on an algo path there would never meet a request (those paths answer
404 before any fault), so the fault would be counted as injected while nothing happened."""

import random
from decimal import Decimal

import pytest

from tests.chaos import faults
from tests.fakes.binance_harness import SYMBOL, market, started_exchange, stop_loss
from tests.fakes.binance_server import FakeBinance
from trader.domain import OrderStatus, Side
from trader.exchange.base import UnknownOutcome

ON_PATHS = ("read-503-burst", "read-429", "read-418", "any-429", "malformed-answer")


@pytest.mark.parametrize("algo_api", [True, False])
async def test_every_fault_on_a_path_aims_at_a_path_the_server_has(algo_api):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, algo_api=algo_api) as fake:
        aimed: set[str] = set()
        for seed in range(60):
            for kind in ON_PATHS:
                await faults.inject(fake, kind, random.Random(seed), SYMBOL)
                aimed |= {f"{f.method or ''} {f.path}".strip() for f in fake.faults}
                aimed |= {f"{method} {path}" for method, path in fake._reshapes}
                fake.clear_faults()
        algo = {endpoint for endpoint in aimed
                if endpoint.partition(" ")[2] in faults.ALGO_PATHS}
        assert bool(algo) is algo_api, sorted(algo)
        assert "GET /fapi/v1/openOrders" in aimed


async def test_an_unknown_stop_without_the_algo_api_meets_the_classic_stop_not_the_entry():
    """The stop is placed, the client sees a 503; the market entry before it is untouched."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, algo_api=False) as fake:
        async with started_exchange(fake) as exchange:
            await faults.inject(fake, "unknown-stop", random.Random(1), SYMBOL)
            entry = await exchange.place(market(Side.BUY, "0.010"))
            assert entry.status is OrderStatus.FILLED
            with pytest.raises(UnknownOutcome):
                await exchange.place(stop_loss(Side.SELL, "49000"))
        assert faults.our_stops(fake, SYMBOL), "the stop exists although the client saw a 503"
        assert all(f.times == 0 for f in fake.faults)


@pytest.mark.parametrize("algo_api", [True, False])
async def test_malformed_events_name_algo_updates_only_where_the_algo_api_is(algo_api):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, algo_api=algo_api) as fake:
        sent: list[str] = []

        async def capture(texts: list[str], listen_key: str | None) -> None:
            sent.extend(texts)

        fake.hub.send_user_text = capture          # type: ignore[method-assign]
        await faults.inject(fake, "malformed-event", random.Random(1), SYMBOL)
        assert sent and any('"ORDER_TRADE_UPDATE"' in text for text in sent)
        assert any('"ALGO_UPDATE"' in text for text in sent) is algo_api
